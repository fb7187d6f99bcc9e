"""Native dead-code removal, compaction and hashing of encoded programs.

The same analysis as azc.passes.dce, on the search's hot path: liveness over
Setup -> (Predict -> Learn)* as a fixed point, the live records compacted in
order, the number of live random ops and instructions written to the program
descriptor, and two 64-bit hashes of the live code (the structural memo's key).

A live set is `words` 64-bit words per kind (scalars, then vectors, then
matrices): address a of kind k is bit a % 64 of word k * words + a // 64.
`mask_words` gives the words a memory needs; a module is generated for one
number of words (one word, the common case, is the same code as ever).
Per-op facts (operand kinds, partial writes, random ops) come from a table
of one `OpBits` byte per op generated from azc.ops.OPS.  Text only.
"""

from __future__ import annotations

from azc.backend.contracts import CODE_RECORD, NONE_KIND, PROG_WIDTH, OpBits, RecordField
from azc.backend.emitters import rng_functions
from azc.backend.irtext import s64
from azc.ir import MemoryConfig
from azc.ops import OPS
from azc.passes.dce import HARNESS, S1

WORD_BITS = 64  # addresses per liveness word

HASH_SEEDS = (0x243F6A8885A308D3, 0x13198A2E03707344)

_KIND_MASK = (1 << 2) - 1  # the width of an OpBits kind field
# The marks pass flags each record (scratch, one byte per record): live, and live random.
FLAG_LIVE, FLAG_RANDOM = 1, 2
assert NONE_KIND == _KIND_MASK


def mask_words(memory: MemoryConfig) -> int:
    """64-bit liveness words per kind for a memory: ceil(largest kind / 64), at least 1."""
    largest = max(memory.scalars, memory.vectors, memory.matrices)
    return max(1, -(-largest // WORD_BITS))


def _op_table() -> str:
    """@azc_optab: one `OpBits` byte per op."""
    vals = [OpBits.of(op.ins, op.out, op.partial_write, op.random) for op in OPS]
    assert all(0 <= v < 256 for v in vals)
    body = ", ".join(f"i8 {v - 256 if v >= 128 else v}" for v in vals)
    return f"@azc_optab = internal constant [{len(OPS)} x i8] [{body}]\n"


def _word_constants(words: int, locations: frozenset | set, fill: int) -> list[int]:
    """The words of a live set: every bit `fill` (0 or 1) except the locations' bits."""
    out = [-1 if fill else 0] * (3 * words)
    for kind, addr in locations:
        i, bit = kind * words + addr // WORD_BITS, 1 << addr % WORD_BITS
        out[i] = s64((out[i] & ((1 << 64) - 1)) ^ bit)
    return out


def _locate(p: str, kind: str, addr: str, words: int) -> str:
    """IR lines: %<p>.ptr points at the live-set word of (kind, addr) in %live and
    %<p>.bit is the address's bit in it."""
    if words == 1:
        return (f"  %{p}.bit = shl i64 1, {addr}\n"
                f"  %{p}.ptr = getelementptr inbounds i64, ptr %live, i64 {kind}")
    return "\n".join([
        f"  %{p}.w = lshr i64 {addr}, 6",
        f"  %{p}.b = and i64 {addr}, 63",
        f"  %{p}.bit = shl i64 1, %{p}.b",
        f"  %{p}.kw = mul i64 {kind}, {words}",
        f"  %{p}.i = add i64 %{p}.kw, %{p}.w",
        f"  %{p}.ptr = getelementptr inbounds i64, ptr %live, i64 %{p}.i"])


def dce_module(name: str = "azc_dce", words: int = 1) -> str:
    """Dead-code removal, compaction and hashing of encoded programs, natively.

    The same analysis as azc.passes.dce (least fixed point of liveness over
    Setup -> (Predict -> Learn)*, s1 read after every Predict, s0 and v0
    written by the harness before every Predict and Learn, element setters
    reading their output), on memories of at most `words` * 64 addresses per
    kind (`mask_words`).

    @<name>(progs_in, n, code_in, code_out, progs_out, hashes): for each
    program descriptor (code pointer, length) x 3, write the live records,
    in order, at the same offset in code_out; progs_out gets the new
    descriptors, the number of live random ops (field 6) and of live
    instructions (field 7); hashes gets two 64-bit hashes of the live code.
    """
    assert words >= 1
    n = 3 * words
    vt = f"<{n} x i64>"  # a live set as a vector
    at = f"[{n} x i64]"  # and in memory
    harness = ", ".join(f"i64 {w}" for w in _word_constants(words, HARNESS, 1))
    s1_kind, s1_addr = S1
    s1_word, s1_bit = s1_kind * words + s1_addr // WORD_BITS, 1 << s1_addr % WORD_BITS
    kmask, partial = _KIND_MASK, 1 << OpBits.PARTIAL
    rec = CODE_RECORD
    return _op_table() + rng_functions() + f"""
define internal void @{name}_backward(ptr %code, i64 %n, ptr %live, ptr %flags)
    alwaysinline nounwind {{
entry:
  br label %head
head:
  %i = phi i64 [ %n, %entry ], [ %im, %next ]
  %more = icmp sgt i64 %i, 0
  br i1 %more, label %body, label %exit
body:
  %im = sub i64 %i, 1
  %roff = mul i64 %im, {rec}
  %rec = getelementptr inbounds i8, ptr %code, i64 %roff
  %op16 = load i16, ptr %rec, align 2
  %op = zext i16 %op16 to i64
  %tp = getelementptr inbounds [{len(OPS)} x i8], ptr @azc_optab, i64 0, i64 %op
  %t8 = load i8, ptr %tp
  %t = zext i8 %t8 to i64
  %ok = lshr i64 %t, {OpBits.OUT_KIND}
  %okind = and i64 %ok, {kmask}
  %isnop = icmp eq i64 %okind, {NONE_KIND}
  br i1 %isnop, label %dead, label %chk
chk:
  %outp = getelementptr inbounds i8, ptr %rec, i64 {RecordField.OUT}
  %out16 = load i16, ptr %outp, align 2
  %out = zext i16 %out16 to i64
{_locate("o", "%okind", "%out", words)}
  %lw = load i64, ptr %o.ptr
  %hit = and i64 %lw, %o.bit
  %islive = icmp ne i64 %hit, 0
  br i1 %islive, label %alive, label %dead
alive:
  %fnull = icmp eq ptr %flags, null
  br i1 %fnull, label %kill, label %mark
mark:
  ; the flag of a live record: FLAG_LIVE, and FLAG_RANDOM for a random op (the table's bit)
  %fp = getelementptr inbounds i8, ptr %flags, i64 %im
  %rnd = lshr i64 %t, {OpBits.RANDOM}
  %rnd1 = and i64 %rnd, 1
  %rnds = mul i64 %rnd1, {FLAG_RANDOM}
  %fv = or i64 %rnds, {FLAG_LIVE}
  %fv8 = trunc i64 %fv to i8
  store i8 %fv8, ptr %fp
  br label %kill
kill:
  %partial = and i64 %t, {partial}
  %full = icmp eq i64 %partial, 0
  %nw = xor i64 %o.bit, -1
  %killed = and i64 %lw, %nw
  %lw2 = select i1 %full, i64 %killed, i64 %lw
  store i64 %lw2, ptr %o.ptr
  %k0s = lshr i64 %t, {OpBits.IN1_KIND}
  %k0 = and i64 %k0s, {kmask}
  %has0 = icmp ne i64 %k0, {NONE_KIND}
  br i1 %has0, label %read0, label %r0done
read0:
  %in1p = getelementptr inbounds i8, ptr %rec, i64 {RecordField.IN1}
  %in116 = load i16, ptr %in1p, align 2
  %in1 = zext i16 %in116 to i64
{_locate("a", "%k0", "%in1", words)}
  %l0 = load i64, ptr %a.ptr
  %l0b = or i64 %l0, %a.bit
  store i64 %l0b, ptr %a.ptr
  br label %r0done
r0done:
  %k1s = lshr i64 %t, {OpBits.IN2_KIND}
  %k1 = and i64 %k1s, {kmask}
  %has1 = icmp ne i64 %k1, {NONE_KIND}
  br i1 %has1, label %read1, label %next
read1:
  %in2p = getelementptr inbounds i8, ptr %rec, i64 {RecordField.IN2}
  %in216 = load i16, ptr %in2p, align 2
  %in2 = zext i16 %in216 to i64
{_locate("b", "%k1", "%in2", words)}
  %l1 = load i64, ptr %b.ptr
  %l1b = or i64 %l1, %b.bit
  store i64 %l1b, ptr %b.ptr
  br label %next
dead:
  br label %next
next:
  br label %head
exit:
  ret void
}}

; live sets: {at} (scalar, vector, matrix masks of {words} word(s) each)
define internal void @{name}_copy3(ptr %dst, ptr %src) alwaysinline nounwind {{
entry:
  %a = load {vt}, ptr %src, align 8
  store {vt} %a, ptr %dst, align 8
  ret void
}}

; live_in' = live_in minus s0 and v0 (written by the harness)
define internal void @{name}_harness(ptr %dst, ptr %src) alwaysinline nounwind {{
entry:
  %a = load {vt}, ptr %src, align 8
  %b = and {vt} %a, <{harness}>
  store {vt} %b, ptr %dst, align 8
  ret void
}}

define internal void @{name}_or(ptr %dst, ptr %src) alwaysinline nounwind {{
entry:
  %a = load {vt}, ptr %src, align 8
  %b = load {vt}, ptr %dst, align 8
  %c = or {vt} %a, %b
  store {vt} %c, ptr %dst, align 8
  ret void
}}

define internal i1 @{name}_same(ptr %x, ptr %y) alwaysinline nounwind {{
entry:
  %a = load {vt}, ptr %x, align 8
  %b = load {vt}, ptr %y, align 8
  %c = icmp eq {vt} %a, %b
  %d = bitcast <{n} x i1> %c to i{n}
  %e = icmp eq i{n} %d, -1
  ret i1 %e
}}

; out_P = {{s1}} | live_in'(L) | live_in'(P)
define internal void @{name}_outp(ptr %dst, ptr %pin, ptr %lin) alwaysinline nounwind {{
entry:
  call void @{name}_harness(ptr %dst, ptr %pin)
  %t = alloca {at}, align 8
  call void @{name}_harness(ptr %t, ptr %lin)
  call void @{name}_or(ptr %dst, ptr %t)
  %sp = getelementptr inbounds i64, ptr %dst, i64 {s1_word}
  %s = load i64, ptr %sp, align 8
  %s1 = or i64 %s, {s64(s1_bit)}
  store i64 %s1, ptr %sp, align 8
  ret void
}}

define internal i64 @{name}_compact(ptr %src, i64 %n, ptr %flags, ptr %dst, ptr %h,
                                    ptr %nrand) alwaysinline nounwind {{
entry:
  br label %head
head:
  %i = phi i64 [ 0, %entry ], [ %i1, %next ]
  %k = phi i64 [ 0, %entry ], [ %k2, %next ]
  %more = icmp slt i64 %i, %n
  br i1 %more, label %body, label %exit
body:
  %fp = getelementptr inbounds i8, ptr %flags, i64 %i
  %f = load i8, ptr %fp
  %on = icmp ne i8 %f, 0
  br i1 %on, label %copy, label %next
copy:
  %so = mul i64 %i, {rec}
  %s = getelementptr inbounds i8, ptr %src, i64 %so
  %do = mul i64 %k, {rec}
  %d = getelementptr inbounds i8, ptr %dst, i64 %do
  %rec0 = load <4 x i64>, ptr %s, align 1
  %op = extractelement <4 x i64> %rec0, i64 0
  %opl = and i64 %op, 65535
  %rbit = and i8 %f, {FLAG_RANDOM}
  %isr = icmp ne i8 %rbit, 0
  ; a random op with the default slot (in1 = 0) keeps drawing as at position i
  %in1f = lshr i64 %op, {8 * RecordField.IN1}
  %in1v = and i64 %in1f, 65535
  %dflt = icmp eq i64 %in1v, 0
  %bind = and i1 %isr, %dflt
  %ip1 = add i64 %i, 1
  %ipsh = shl i64 %ip1, {8 * RecordField.IN1}
  %opb = or i64 %op, %ipsh
  %op2 = select i1 %bind, i64 %opb, i64 %op
  %rec = insertelement <4 x i64> %rec0, i64 %op2, i64 0
  store <4 x i64> %rec, ptr %d, align 1
  %nr = load i64, ptr %nrand
  %nr1 = add i64 %nr, 1
  %nr2 = select i1 %isr, i64 %nr1, i64 %nr
  store i64 %nr2, ptr %nrand
  call void @{name}_mix(ptr %h, <4 x i64> %rec)
  %kk = add i64 %k, 1
  br label %next
next:
  %k2 = phi i64 [ %k, %body ], [ %kk, %copy ]
  %i1 = add i64 %i, 1
  br label %head
exit:
  ret i64 %k
}}

define internal void @{name}_mix(ptr %h, <4 x i64> %rec) alwaysinline nounwind {{
entry:
  %hp1 = getelementptr inbounds i64, ptr %h, i64 1
  %a = load i64, ptr %h
  %b = load i64, ptr %hp1
  %w0 = extractelement <4 x i64> %rec, i64 0
  %w1 = extractelement <4 x i64> %rec, i64 1
  %w2 = extractelement <4 x i64> %rec, i64 2
  %w3 = extractelement <4 x i64> %rec, i64 3
  %a0 = xor i64 %a, %w0
  %a1 = call i64 @azc_mix(i64 %a0)
  %a2 = xor i64 %a1, %w1
  %a3 = call i64 @azc_mix(i64 %a2)
  %a4 = xor i64 %a3, %w2
  %a5 = call i64 @azc_mix(i64 %a4)
  %a6 = xor i64 %a5, %w3
  %a7 = call i64 @azc_mix(i64 %a6)
  %b0 = add i64 %b, %w0
  %b1 = call i64 @azc_mix(i64 %b0)
  %b2 = add i64 %b1, %w1
  %b3 = call i64 @azc_mix(i64 %b2)
  %b4 = add i64 %b3, %w2
  %b5 = call i64 @azc_mix(i64 %b4)
  %b6 = add i64 %b5, %w3
  %b7 = call i64 @azc_mix(i64 %b6)
  store i64 %a7, ptr %h
  store i64 %b7, ptr %hp1
  ret void
}}

define void @{name}(ptr %progs_in, i64 %nprogs, ptr %code_in, ptr %code_out, ptr %progs_out,
                    ptr %hashes, ptr %flags) nounwind {{
entry:
  %pin = alloca {at}, align 8
  %lin = alloca {at}, align 8
  %npin = alloca {at}, align 8
  %nlin = alloca {at}, align 8
  %outp = alloca {at}, align 8
  %outl = alloca {at}, align 8
  %h = alloca [2 x i64], align 8
  %nrand = alloca i64, align 8
  %outs = alloca {at}, align 8
  br label %phead
phead:
  %p = phi i64 [ 0, %entry ], [ %pnext, %pdone ]
  %pmore = icmp slt i64 %p, %nprogs
  br i1 %pmore, label %pbody, label %exit
pbody:
  %base = mul i64 %p, {PROG_WIDTH}
  %din = getelementptr inbounds i64, ptr %progs_in, i64 %base
  %dout = getelementptr inbounds i64, ptr %progs_out, i64 %base
{_component_loads()}
  store {vt} zeroinitializer, ptr %pin, align 8
  store {vt} zeroinitializer, ptr %lin, align 8
  br label %fix
fix:
  call void @{name}_outp(ptr %outp, ptr %pin, ptr %lin)
  call void @{name}_copy3(ptr %npin, ptr %outp)
  call void @{name}_backward(ptr %cp, i64 %np, ptr %npin, ptr null)
  call void @{name}_harness(ptr %outl, ptr %npin)
  call void @{name}_copy3(ptr %nlin, ptr %outl)
  call void @{name}_backward(ptr %cl, i64 %nl, ptr %nlin, ptr null)
  %s1 = call i1 @{name}_same(ptr %npin, ptr %pin)
  %s2 = call i1 @{name}_same(ptr %nlin, ptr %lin)
  %stable = and i1 %s1, %s2
  call void @{name}_copy3(ptr %pin, ptr %npin)
  call void @{name}_copy3(ptr %lin, ptr %nlin)
  br i1 %stable, label %marks, label %fix
marks:
  ; flags: scratch of at least the longest component
  call void @llvm.memset.p0.i64(ptr %flags, i8 0, i64 %nmax, i1 false)
  %hp1 = getelementptr inbounds i64, ptr %h, i64 1
  store i64 {s64(HASH_SEEDS[0])}, ptr %h
  store i64 {s64(HASH_SEEDS[1])}, ptr %hp1
  store i64 0, ptr %nrand
  ; Setup
  call void @{name}_harness(ptr %outs, ptr %pin)
  call void @{name}_backward(ptr %cs, i64 %ns, ptr %outs, ptr %flags)
  %ds = call ptr @{name}_dst(ptr %cs, ptr %code_in, ptr %code_out)
  %ks = call i64 @{name}_compact(ptr %cs, i64 %ns, ptr %flags, ptr %ds, ptr %h, ptr %nrand)
  call void @{name}_sep(ptr %h, i64 %ks)
  call void @llvm.memset.p0.i64(ptr %flags, i8 0, i64 %nmax, i1 false)
  ; Predict
  call void @{name}_outp(ptr %outp, ptr %pin, ptr %lin)
  call void @{name}_backward(ptr %cp, i64 %np, ptr %outp, ptr %flags)
  %dp = call ptr @{name}_dst(ptr %cp, ptr %code_in, ptr %code_out)
  %kp = call i64 @{name}_compact(ptr %cp, i64 %np, ptr %flags, ptr %dp, ptr %h, ptr %nrand)
  call void @{name}_sep(ptr %h, i64 %kp)
  call void @llvm.memset.p0.i64(ptr %flags, i8 0, i64 %nmax, i1 false)
  ; Learn
  call void @{name}_harness(ptr %outl, ptr %pin)
  call void @{name}_backward(ptr %cl, i64 %nl, ptr %outl, ptr %flags)
  %dl = call ptr @{name}_dst(ptr %cl, ptr %code_in, ptr %code_out)
  %kl = call i64 @{name}_compact(ptr %cl, i64 %nl, ptr %flags, ptr %dl, ptr %h, ptr %nrand)
  call void @{name}_sep(ptr %h, i64 %kl)
{_descriptor_stores()}
  %hout = getelementptr inbounds i64, ptr %hashes, i64 %p
  %hout2 = getelementptr inbounds i64, ptr %hout, i64 %p
  %ha = load i64, ptr %h
  %hb = load i64, ptr %hp1
  store i64 %ha, ptr %hout2
  %hout3 = getelementptr inbounds i64, ptr %hout2, i64 1
  store i64 %hb, ptr %hout3
  br label %pdone
pdone:
  %pnext = add i64 %p, 1
  br label %phead
exit:
  ret void
}}

define internal ptr @{name}_dst(ptr %c, ptr %in, ptr %out) alwaysinline nounwind {{
entry:
  %ci = ptrtoint ptr %c to i64
  %ii = ptrtoint ptr %in to i64
  %off = sub i64 %ci, %ii
  %d = getelementptr inbounds i8, ptr %out, i64 %off
  ret ptr %d
}}

define internal void @{name}_sep(ptr %h, i64 %k) alwaysinline nounwind {{
entry:
  %v = insertelement <4 x i64> <i64 -1, i64 -1, i64 -1, i64 -1>, i64 %k, i64 0
  call void @{name}_mix(ptr %h, <4 x i64> %v)
  ret void
}}

declare void @llvm.memset.p0.i64(ptr, i8, i64, i1)
declare i64 @llvm.smax.i64(i64, i64)
declare double @log(double) nounwind
declare double @cos(double) nounwind
declare double @llvm.sqrt.f64(double)
"""


def _component_loads() -> str:
    lines = []
    for i, c in enumerate("spl"):
        lines += [f"  %c{c}.pp = getelementptr inbounds i64, ptr %din, i64 {2 * i}",
                  f"  %c{c}.i = load i64, ptr %c{c}.pp",
                  f"  %c{c} = inttoptr i64 %c{c}.i to ptr",
                  f"  %n{c}.pp = getelementptr inbounds i64, ptr %din, i64 {2 * i + 1}",
                  f"  %n{c} = load i64, ptr %n{c}.pp"]
    lines += ["  %nm1 = call i64 @llvm.smax.i64(i64 %ns, i64 %np)",
              "  %nmax = call i64 @llvm.smax.i64(i64 %nm1, i64 %nl)"]
    return "\n".join(lines)


def _descriptor_stores() -> str:
    lines = []
    for i, (c, k) in enumerate(zip("spl", ("%ks", "%kp", "%kl"))):
        lines += [f"  %o{c}.pp = getelementptr inbounds i64, ptr %dout, i64 {2 * i}",
                  f"  %o{c}.i = ptrtoint ptr %d{c} to i64",
                  f"  store i64 %o{c}.i, ptr %o{c}.pp",
                  f"  %o{c}.np = getelementptr inbounds i64, ptr %dout, i64 {2 * i + 1}",
                  f"  store i64 {k}, ptr %o{c}.np"]
    lines += ["  %orp = getelementptr inbounds i64, ptr %dout, i64 6",
              "  %nrv = load i64, ptr %nrand",
              "  store i64 %nrv, ptr %orp",
              "  %otp = getelementptr inbounds i64, ptr %dout, i64 7",
              "  %tot1 = add i64 %ks, %kp",
              "  %tot = add i64 %tot1, %kl",
              "  store i64 %tot, ptr %otp"]
    return "\n".join(lines)
