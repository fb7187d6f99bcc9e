"""The standalone model: one program as LLVM IR text with the C ABI of exported predictors.

A model module holds the program's component functions (the same per-op
emitters and component functions as the kernels, `azc.backend.kernels`) and
these exported functions, declared in `runtime/model.h`:

    const azc_model_info_t *azc_model_info(void);
    int64_t azc_model_state_size(void);
    int32_t azc_model_init(azc_model_state *m, uint64_t seed, int64_t eval_type);
    azc_model_state *azc_model_new(uint64_t seed);
    void azc_model_free(azc_model_state *m);
    int32_t azc_model_fit(azc_model_state *m, const double *x, const double *y, int64_t n,
                          double max_abs_error, int64_t *trained);
    int32_t azc_model_predict(azc_model_state *m, const double *x, int64_t n, double *out,
                              double *proba);

The state is one flat block: a header of STATE_FIELDS (8 bytes each), then
the memory buffer of `Layout.size` float64 in the kernels' layout.  `fit`
and `predict` copy the memory into a 64-byte aligned stack buffer, loop
over the examples with every component inlined, and copy it back.

Training follows azc.interp's protocol step for step (task index 0): Setup
once, with execution id (KIND_SETUP, 0), the first time `fit` or `predict`
runs on a state; then per example, with t the state's `train_steps`:
v0 = x, s0 = 0, Predict as (KIND_PREDICT, t); for ACCURACY s1 = sigmoid(s1)
written back; |y - s1| NaN or above `max_abs_error` stops training (status
STOPPED, the state's `stopped` flag set, t consumed); else v0 = x, s0 = y,
Learn as (KIND_LEARN, t).  `predict` runs v0 = x, s0 = 0, Predict as
(KIND_VALID, c) with c the state's `predict_count`, and reads s1 (and
sigmoid(s1) for the probability).

This module produces text only; it never imports llvmlite.
"""

from __future__ import annotations

import hashlib

from azc.backend.contracts import (
    STATE_HEADER,
    ExecKind,
    Layout,
    ModelStatus,
    StateWord,
    on_stack,
)
from azc.backend.emitters import declarations, op_function, rng_functions
from azc.backend.irtext import s64
from azc.backend.kernels import component_function
from azc.backend.protocol import (
    Lanes,
    exec_key,
    learn_example,
    predict_example,
    sigmoid,
    train_check,
)
from azc.ir import MemoryConfig, Program
from azc.ops import OPS, Kind
from azc.tasks.task import EvalType

ABI_VERSION = 2
MAGIC = int.from_bytes(b"AZCMODEL", "little")
# The state header (`StateWord`): one 64-bit word each, then the memory buffer.
STATE_FIELDS = tuple(w.name.lower() for w in StateWord)
# azc_model_info: these int64 fields, then these strings (const char *).
INFO_INT_FIELDS = ("abi_version", "features", "scalars", "vectors", "matrices", "memory_size",
                   "state_size", "eval_type", "uses_random", "predict_random", "vector_base",
                   "vector_stride", "matrix_base", "matrix_stride", "fingerprint")
INFO_STR_FIELDS = ("triple", "cpu", "cpu_features", "program")
# Status codes of azc_model_init / fit / predict, by their names in model.h.
STATUS = {f"AZC_{s.name}": int(s) for s in ModelStatus}
EXPORTED = ("azc_model_info", "azc_model_state_size", "azc_model_init", "azc_model_new",
            "azc_model_free", "azc_model_fit", "azc_model_predict")


def model_fingerprint(program_text: str, memory: MemoryConfig, features: int) -> int:
    """63 bits identifying a model (its canonical program, memory sizes and F): every state
    it makes carries them, and it refuses a state that does not."""
    key = f"{program_text}|{memory.scalars},{memory.vectors},{memory.matrices}|F={features}"
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def state_size(layout: Layout) -> int:
    """Bytes of a model state: the header and the memory buffer."""
    return STATE_HEADER + 8 * layout.size


def _cstring(name: str, text: str) -> str:
    """A private NUL-terminated string constant @<name>."""
    data = text.encode() + b"\0"
    body = "".join(chr(c) if 32 <= c < 127 and c not in (34, 92) else f"\\{c:02X}"
                   for c in data)
    return f'@{name} = private unnamed_addr constant [{len(data)} x i8] c"{body}"\n'


def model_module(program: Program, memory: MemoryConfig, features: int, *, eval_type: int,
                 triple: str, cpu: str, cpu_features: str, program_text: str) -> str:
    """The LLVM module of a standalone model with the C ABI of `runtime/model.h`.

    `eval_type` (1 RMS_ERROR, 4 ACCURACY) is the default of `azc_model_new`
    and `azc_model_init(..., 0)`; `triple`, `cpu` and `cpu_features` are what
    the code is generated for and `program_text` the canonical program, all
    reported by `azc_model_info`.
    """
    layout = Layout.of(memory, features)
    F = features
    size = max(layout.size, 1)
    nbytes = 8 * layout.size
    total = state_size(layout)
    vt = f"<{F} x double>"
    voff = layout.offset(Kind.VECTOR, 0)
    uses_random = program.uses_random()
    predict_random = any(OPS[i.op].random for i in program.predict)
    used = sorted({ins.op for _, _, ins in program.instructions() if OPS[ins.op].out is not None})

    parts = [f"; azc standalone model: F={F}, memory {memory}, ABI {ABI_VERSION}\n",
             declarations(F, heap=layout.heap), rng_functions()]
    parts += [op_function(OPS[op], F) for op in used]
    for comp, instrs in program.components():
        parts.append(component_function(f"azm_{comp.attr}", instrs, layout))

    fingerprint = model_fingerprint(program_text, memory, F)
    ints = {"abi_version": ABI_VERSION, "features": F, "scalars": memory.scalars,
            "vectors": memory.vectors, "matrices": memory.matrices,
            "memory_size": layout.size, "state_size": total, "eval_type": eval_type,
            "uses_random": int(uses_random), "predict_random": int(predict_random),
            "vector_base": layout.vector_base, "vector_stride": layout.vector_stride,
            "matrix_base": layout.matrix_base, "matrix_stride": layout.matrix_stride,
            "fingerprint": fingerprint}
    strings = {"triple": triple, "cpu": cpu, "cpu_features": cpu_features,
               "program": program_text}
    for name, text in strings.items():
        parts.append(_cstring(f"azm.str.{name}", text))
    info_type = "{ " + ", ".join(["i64"] * len(INFO_INT_FIELDS) +
                                 ["ptr"] * len(INFO_STR_FIELDS)) + " }"
    info_vals = ", ".join([f"i64 {ints[n]}" for n in INFO_INT_FIELDS] +
                          [f"ptr @azm.str.{n}" for n in INFO_STR_FIELDS])
    parts.append(f"@azm.info = private constant {info_type} {{ {info_vals} }}, align 8\n")

    # fit and predict work on a copy of the state's memory, where LLVM can keep scalars and
    # vectors in registers; a memory too large for the stack is worked on in place
    in_place = not on_stack(size)
    local = "" if in_place else f"  %mem = alloca [{size} x double], align 64\n"
    save = "" if in_place else (f"  call void @llvm.memcpy.p0.p0.i64(ptr align 8 %smem, "
                                f"ptr align 64 %mem, i64 {nbytes}, i1 false)\n")
    fit_start = _checked_start(("x", "y"), nbytes, StateWord.SEED, in_place)
    predict_start = _checked_start(("x",), nbytes, StateWord.SEED, in_place)
    aligned_total = -(-total // 64) * 64
    one = Lanes(1, F)  # one task, its rows streamed by the caller

    def call(comp: str, kind: ExecKind, index: str, tag: str) -> str:
        key, lines = exec_key(kind, index, tag)
        return f"{lines}  call void @azm_{comp}(ptr %mem, i64 {key})"
    setup_call = call("setup", ExecKind.SETUP, "0", "xs")
    train_predict = predict_example(one, "%xv", "%s1",
                                    call("predict", ExecKind.TRAIN_PREDICT, "%t", "xp"))
    learn = learn_example(one, "%xv", "%yv", call("learn", ExecKind.LEARN, "%t", "xl"))
    valid_predict = predict_example(one, "%xv", "%s1",
                                    call("predict", ExecKind.VALID_PREDICT, "%c", "xv"))
    parts.append(f"""
{"" if layout.heap else _ALLOCATION}
define ptr @azc_model_info() nounwind {{
  ret ptr @azm.info
}}

define i64 @azc_model_state_size() nounwind {{
  ret i64 {total}
}}

; the header word `i` of a state
define internal ptr @azm_word(ptr %st, i64 %i) alwaysinline nounwind {{
  %p = getelementptr inbounds i64, ptr %st, i64 %i
  ret ptr %p
}}

; 1 if the state is non-null and was made by azc_model_init of this ABI
define internal i1 @azm_valid(ptr %st) alwaysinline nounwind {{
entry:
  %null = icmp eq ptr %st, null
  br i1 %null, label %no, label %check
check:
  %magic = load i64, ptr %st, align 8
  %pv = getelementptr inbounds i64, ptr %st, i64 {StateWord.ABI_VERSION:d}
  %abi = load i64, ptr %pv, align 8
  %pf = getelementptr inbounds i64, ptr %st, i64 {StateWord.FINGERPRINT:d}
  %fp = load i64, ptr %pf, align 8
  %m.ok = icmp eq i64 %magic, {s64(MAGIC)}
  %a.ok = icmp eq i64 %abi, {ABI_VERSION}
  %f.ok = icmp eq i64 %fp, {fingerprint}
  %ma.ok = and i1 %m.ok, %a.ok
  %ok = and i1 %ma.ok, %f.ok
  ret i1 %ok
no:
  ret i1 false
}}

define i32 @azc_model_init(ptr %st, i64 %seed, i64 %evaltype) nounwind {{
entry:
  %null = icmp eq ptr %st, null
  br i1 %null, label %bad, label %type
type:
  %is0 = icmp eq i64 %evaltype, 0
  %et = select i1 %is0, i64 {eval_type}, i64 %evaltype
  %is1 = icmp eq i64 %et, {EvalType.RMS_ERROR:d}
  %is4 = icmp eq i64 %et, {EvalType.ACCURACY:d}
  %okt = or i1 %is1, %is4
  br i1 %okt, label %init, label %bad
init:
  call void @llvm.memset.p0.i64(ptr align 8 %st, i8 0, i64 {total}, i1 false)
  store i64 {s64(MAGIC)}, ptr %st, align 8
  %pa = call ptr @azm_word(ptr %st, i64 {StateWord.ABI_VERSION:d})
  store i64 {ABI_VERSION}, ptr %pa, align 8
  %ps = call ptr @azm_word(ptr %st, i64 {StateWord.SEED:d})
  store i64 %seed, ptr %ps, align 8
  %pe = call ptr @azm_word(ptr %st, i64 {StateWord.EVAL_TYPE:d})
  store i64 %et, ptr %pe, align 8
  %pf = call ptr @azm_word(ptr %st, i64 {StateWord.FINGERPRINT:d})
  store i64 {fingerprint}, ptr %pf, align 8
  ret i32 {ModelStatus.OK:d}
bad:
  ret i32 {ModelStatus.EINVAL:d}
}}

define ptr @azc_model_new(i64 %seed) nounwind {{
entry:
  %p = call ptr @aligned_alloc(i64 64, i64 {aligned_total})
  %null = icmp eq ptr %p, null
  br i1 %null, label %fail, label %init
init:
  %r = call i32 @azc_model_init(ptr %p, i64 %seed, i64 0)
  ret ptr %p
fail:
  ret ptr null
}}

define void @azc_model_free(ptr %st) nounwind {{
  call void @free(ptr %st)
  ret void
}}

; run Setup on the memory unless the state says it ran
define internal void @azm_setup_once(ptr %st, ptr %mem, i64 %ktask) alwaysinline nounwind {{
entry:
  %pd = call ptr @azm_word(ptr %st, i64 {StateWord.SETUP_DONE:d})
  %done = load i64, ptr %pd, align 8
  %need = icmp eq i64 %done, 0
  br i1 %need, label %run, label %exit
run:
{setup_call}
  store i64 1, ptr %pd, align 8
  br label %exit
exit:
  ret void
}}

define i32 @azc_model_fit(ptr %st, ptr %x, ptr %y, i64 %n, double %maxerr, ptr %trained)
    nounwind {{
entry:
{local}  %tnull = icmp eq ptr %trained, null
  br i1 %tnull, label %check, label %zero
zero:
  store i64 0, ptr %trained, align 8
  br label %check
check:
{fit_start}  %pet = call ptr @azm_word(ptr %st, i64 {StateWord.EVAL_TYPE:d})
  %et = load i64, ptr %pet, align 8
  %acc = icmp eq i64 %et, {EvalType.ACCURACY:d}
  %ktask = call i64 @azc_task_key(i64 %seed, i64 0)
  call void @azm_setup_once(ptr %st, ptr %mem, i64 %ktask)
  %pt = call ptr @azm_word(ptr %st, i64 {StateWord.TRAIN_STEPS:d})
  %t0 = load i64, ptr %pt, align 8
  %v0.p = getelementptr inbounds double, ptr %mem, i64 {voff}
  %s1.p = getelementptr inbounds double, ptr %mem, i64 1
  br label %head
head:
  %i = phi i64 [ 0, %start ], [ %i1, %learned ]
  %more = icmp slt i64 %i, %n
  br i1 %more, label %body, label %done
body:
  %t = add i64 %t0, %i
  %xo = mul i64 %i, {F}
  %xp = getelementptr inbounds double, ptr %x, i64 %xo
  %xv = load {vt}, ptr %xp, align 8
  %yp = getelementptr inbounds double, ptr %y, i64 %i
  %yv = load double, ptr %yp, align 8
{train_predict}
{train_check(one, "%yv", "%s1", "body", False)}
  br i1 %bad, label %stopped, label %learn
learn:
{learn}
  br label %learned
learned:
  %i1 = add i64 %i, 1
  br label %head
done:
  %tn = add i64 %t0, %n
  store i64 %tn, ptr %pt, align 8
{save}  br i1 %tnull, label %ok, label %count
count:
  store i64 %n, ptr %trained, align 8
  br label %ok
ok:
  ret i32 {ModelStatus.OK:d}
stopped:
  %t1 = add i64 %t, 1
  store i64 %t1, ptr %pt, align 8
  %pstop = call ptr @azm_word(ptr %st, i64 {StateWord.STOPPED:d})
  store i64 1, ptr %pstop, align 8
{save}  br i1 %tnull, label %stopret, label %scount
scount:
  store i64 %i, ptr %trained, align 8
  br label %stopret
stopret:
  ret i32 {ModelStatus.STOPPED:d}
}}

define i32 @azc_model_predict(ptr %st, ptr %x, i64 %n, ptr %out, ptr %proba) nounwind {{
entry:
{local}{predict_start}  %ktask = call i64 @azc_task_key(i64 %seed, i64 0)
  call void @azm_setup_once(ptr %st, ptr %mem, i64 %ktask)
  %pc = call ptr @azm_word(ptr %st, i64 {StateWord.PREDICT_COUNT:d})
  %c0 = load i64, ptr %pc, align 8
  %onull = icmp eq ptr %out, null
  %pnull = icmp eq ptr %proba, null
  %v0.p = getelementptr inbounds double, ptr %mem, i64 {voff}
  %s1.p = getelementptr inbounds double, ptr %mem, i64 1
  br label %head
head:
  %i = phi i64 [ 0, %start ], [ %i1, %next ]
  %more = icmp slt i64 %i, %n
  br i1 %more, label %body, label %done
body:
  %xo = mul i64 %i, {F}
  %xp = getelementptr inbounds double, ptr %x, i64 %xo
  %xv = load {vt}, ptr %xp, align 8
  %c = add i64 %c0, %i
{valid_predict}
  br i1 %onull, label %noout, label %wout
wout:
  %op = getelementptr inbounds double, ptr %out, i64 %i
  store double %s1, ptr %op, align 8
  br label %noout
noout:
  br i1 %pnull, label %next, label %wproba
wproba:
{sigmoid("double", "%s1", "%pr")}
  %pp = getelementptr inbounds double, ptr %proba, i64 %i
  store double %pr, ptr %pp, align 8
  br label %next
next:
  %i1 = add i64 %i, 1
  br label %head
done:
  %cn = add i64 %c0, %n
  store i64 %cn, ptr %pc, align 8
{save}  ret i32 0
}}
""")
    return "\n".join(parts)


# azc_model_new and azc_model_free's C functions (`HEAP_DECLARATIONS` holds them when the
# layout uses the heap anyway)
_ALLOCATION = "declare ptr @aligned_alloc(i64, i64) nounwind\ndeclare void @free(ptr) nounwind\n"


def _checked_start(rows: tuple[str, ...], nbytes: int, seed_word: int,
                   in_place: bool = False) -> str:
    """IR shared by fit and predict: return EBADSTATE for a bad state, EINVAL for n < 0 or a null
    row array with n > 0; then copy the state's memory into %mem (`in_place`: %mem is the
    state's memory) and load %seed."""
    copy = (f"  %mem = getelementptr inbounds i8, ptr %st, i64 {STATE_HEADER}\n" if in_place
            else f"  call void @llvm.memcpy.p0.p0.i64(ptr align 64 %mem, ptr align 8 %smem, "
                 f"i64 {nbytes}, i1 false)\n")
    nulls, anynull = "", "false"
    for r in rows:
        nulls += (f"  %{r}null = icmp eq ptr %{r}, null\n"
                  f"  %{r}any = or i1 {anynull}, %{r}null\n")
        anynull = f"%{r}any"
    return f"""  %valid = call i1 @azm_valid(ptr %st)
  br i1 %valid, label %args, label %badstate
badstate:
  ret i32 {ModelStatus.EBADSTATE:d}
args:
  %nneg = icmp slt i64 %n, 0
{nulls}  %npos = icmp sgt i64 %n, 0
  %nullrows = and i1 %npos, {anynull}
  %badargs = or i1 %nneg, %nullrows
  br i1 %badargs, label %badarg, label %start
badarg:
  ret i32 {ModelStatus.EINVAL:d}
start:
  %smem = getelementptr inbounds i8, ptr %st, i64 {STATE_HEADER}
{copy}  %pseed = call ptr @azm_word(ptr %st, i64 {seed_word})
  %seed = load i64, ptr %pseed, align 8
"""


def header_constants(memory: MemoryConfig, features: int, eval_type: int) -> str:
    """`#define`s of one model's sizes, for the exported copy of model.h."""
    layout = Layout.of(memory, features)
    return "\n".join([
        f"#define AZC_MODEL_FEATURES {features}      /* F: features per example */",
        f"#define AZC_MODEL_SCALARS {memory.scalars}",
        f"#define AZC_MODEL_VECTORS {memory.vectors}",
        f"#define AZC_MODEL_MATRICES {memory.matrices}",
        f"#define AZC_MODEL_MEMORY_SIZE {layout.size}   /* float64 in the memory buffer */",
        f"#define AZC_MODEL_STATE_SIZE {state_size(layout)}  /* bytes of an azc_model_state */",
        f"#define AZC_MODEL_EVAL_TYPE {eval_type}      /* 1 RMS_ERROR, 4 ACCURACY */",
        f"#define AZC_MODEL_VECTOR_BASE {layout.vector_base}",
        f"#define AZC_MODEL_VECTOR_STRIDE {layout.vector_stride}",
        f"#define AZC_MODEL_MATRIX_BASE {layout.matrix_base}",
        f"#define AZC_MODEL_MATRIX_STRIDE {layout.matrix_stride}",
    ]) + "\n"


__all__ = ["ABI_VERSION", "EXPORTED", "INFO_INT_FIELDS", "INFO_STR_FIELDS", "MAGIC",
           "STATE_FIELDS", "STATE_HEADER", "STATUS", "header_constants", "model_fingerprint",
           "model_module", "state_size"]
