"""The FEC fingerprint of a program's recorded errors, in LLVM IR.

Per program and task, one 64-bit hash of the errors the protocol recorded
(`OutField.NUM_TRAIN_ERR`, `OutField.NUM_VALID_ERR` of them), the task index and
the budgeted number of training examples (azc.search.fec uses it).  Text only.
"""

from __future__ import annotations

from azc.backend.contracts import OUT_WIDTH


def fec_hash_function(name: str = "azc_fec_hash") -> str:
    """@<name>(tr, va, out, n, T, k, tidx, nreq, fps): FEC fingerprints of recorded errors.

    For program p and task t (row = p*T + t), with the counts of recorded
    errors in the driver's outputs (fields 3 and 4 of out[row]):
    h = 42; h = mix(h ^ bits(e)) + GOLDEN for each train error, then
    h = mix(h ^ count); the same for the valid errors; then the task index
    and the budgeted number of training examples are mixed in.
    """
    g = -7046029254386353131
    return f"""
define internal i64 @{name}_chain(i64 %h0, ptr %e, i64 %n) alwaysinline nounwind {{
entry:
  br label %head
head:
  %j = phi i64 [ 0, %entry ], [ %j1, %body ]
  %h = phi i64 [ %h0, %entry ], [ %h2, %body ]
  %more = icmp slt i64 %j, %n
  br i1 %more, label %body, label %exit
body:
  %p = getelementptr inbounds i64, ptr %e, i64 %j
  %w = load i64, ptr %p
  %x = xor i64 %h, %w
  %m = call i64 @azc_mix(i64 %x)
  %h2 = add i64 %m, {g}
  %j1 = add i64 %j, 1
  br label %head
exit:
  %c = xor i64 %h, %n
  %r = call i64 @azc_mix(i64 %c)
  ret i64 %r
}}

define void @{name}(ptr %tr, ptr %va, ptr %out, i64 %n, i64 %T, i64 %k, ptr %tidx, ptr %nreq,
                    ptr %fps) nounwind {{
entry:
  %rows = mul i64 %n, %T
  br label %head
head:
  %row = phi i64 [ 0, %entry ], [ %row1, %body ]
  %more = icmp slt i64 %row, %rows
  br i1 %more, label %body, label %exit
body:
  %t = srem i64 %row, %T
  %ooff = mul i64 %row, {OUT_WIDTH}
  %o3 = add i64 %ooff, 3
  %o4 = add i64 %ooff, 4
  %p3 = getelementptr inbounds double, ptr %out, i64 %o3
  %p4 = getelementptr inbounds double, ptr %out, i64 %o4
  %f3 = load double, ptr %p3
  %f4 = load double, ptr %p4
  %ntr = fptosi double %f3 to i64
  %nva = fptosi double %f4 to i64
  %eoff = mul i64 %row, %k
  %etr = getelementptr inbounds i64, ptr %tr, i64 %eoff
  %eva = getelementptr inbounds i64, ptr %va, i64 %eoff
  %h1 = call i64 @{name}_chain(i64 42, ptr %etr, i64 %ntr)
  %h2 = call i64 @{name}_chain(i64 %h1, ptr %eva, i64 %nva)
  %tp = getelementptr inbounds i64, ptr %tidx, i64 %t
  %ti = load i64, ptr %tp
  %tg = mul i64 %ti, {g}
  %x3 = xor i64 %h2, %tg
  %h3 = call i64 @azc_mix(i64 %x3)
  %np = getelementptr inbounds i64, ptr %nreq, i64 %t
  %nr = load i64, ptr %np
  %x4 = xor i64 %h3, %nr
  %h4 = call i64 @azc_mix(i64 %x4)
  %fp = getelementptr inbounds i64, ptr %fps, i64 %row
  store i64 %h4, ptr %fp
  %row1 = add i64 %row, 1
  br label %head
exit:
  ret void
}}
"""
