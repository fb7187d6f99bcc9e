"""The evaluation protocol in LLVM IR: training epochs, validation and fitness of a task.

`task_loops` runs one task after Setup, as azc.interp defines it: epochs of
training (Predict, the error check, Learn per example, in the task's order),
then a validation and its fitness after every epoch, keeping the best;
`paired_loops` runs two tasks of the same shape at once.  The IR they share
(epoch and validation heads, sigmoid, accuracy error, fitness, descriptor loads
and output stores) is written once here.  Text only.
"""

from __future__ import annotations

from dataclasses import dataclass

from azc.backend.contracts import (
    EXEC_KIND_BITS,
    RECORD_FIELDS,
    ExecKind,
    Layout,
    OutField,
    ProgSlot,
    TaskField,
    on_stack,
)
from azc.backend.irtext import and_chain, const_of, counted_loop, f64, lanes_of, libm_call
from azc.errors import LoweringError
from azc.ir import Component
from azc.ops import Kind
from azc.tasks.task import EvalType

LOOPS_PARAMS = "ptr %d, ptr %o, i64 %ktask, double %maxerr, i64 %recoff, ptr %prog"


_EPOCH_START = f"""  %acc = icmp eq i64 %evaltype, {EvalType.ACCURACY.value}
  %ne = mul i64 %N, %E
  %nall.lt = icmp slt i64 %nreq, %ne
  %nall = select i1 %nall.lt, i64 %nreq, i64 %ne
  store i64 %nall, ptr %rem.a
  store i64 0, ptr %step.a
  store i64 0, ptr %epoch.a
  br label %epoch.head
epoch.head:
  %rem = load i64, ptr %rem.a
  %rem.pos = icmp sgt i64 %rem, 0
  br i1 %rem.pos, label %epoch.body, label %task.done
epoch.body:
  %cnt.lt = icmp slt i64 %N, %rem
  %count = select i1 %cnt.lt, i64 %N, i64 %rem
  %step0 = load i64, ptr %step.a
  %epoch = load i64, ptr %epoch.a
  %first.epoch = icmp eq i64 %epoch, 0
  %notfirst = xor i1 %first.epoch, true
  store i64 0, ptr %k.a
""" + counted_loop("train", "k", "count") + """
  %tt = add i64 %step0, %k"""


_VALID_START = """  %nv.lt = icmp slt i64 %nvreq, %NV
  %nv = select i1 %nv.lt, i64 %nvreq, i64 %NV
  %vbase = mul i64 %epoch, %NV
""" + counted_loop("valid", "j", "nv") + """
  %vx.off = mul i64 %j, {F}"""


_EPOCH_TRAINED = """train.done:
  %step1 = add i64 %step0, %count
  store i64 %step1, ptr %step.a
  %rem1 = sub i64 %rem, %N
  store i64 %rem1, ptr %rem.a
  store i64 0, ptr %j.a"""


@dataclass(frozen=True)
class Lanes:
    """The lane shape of one protocol instance: `tasks` tasks run side by side in one
    memory (1; or 2, interleaved as `PairEmit` lays them out), F features.

    The per-example steps below (`predict_example`, `train_check`,
    `learn_example`, `validation_error`, `fitness`) are written once against a
    lane shape; `task_loops` (one task), `paired_loops` (two tasks) and the
    exported model's fit and predict (one task, rows streamed by the caller,
    `azc.backend.model`) are their instances.
    """

    tasks: int
    features: int

    @property
    def scalar(self) -> str:
        """The type of one scalar address: a double per task."""
        return "double" if self.tasks == 1 else f"<{self.tasks} x double>"

    @property
    def mask(self) -> str:
        """The type of a per-task flag."""
        return "i1" if self.tasks == 1 else f"<{self.tasks} x i1>"

    @property
    def vector(self) -> str:
        """The type of one vector address (the tasks' vectors interleaved)."""
        return f"<{self.tasks * self.features} x double>"

    @property
    def zero(self) -> str:
        return "0.0" if self.tasks == 1 else "zeroinitializer"

    @property
    def maxerr(self) -> str:
        """The error bound, one per task (`%maxerr2` is splat from `%maxerr`)."""
        return "%maxerr" if self.tasks == 1 else f"%maxerr{self.tasks}"

    def const(self, x: str) -> str:
        return const_of(self.scalar, x)

    def fabs(self, x: str, out: str) -> str:
        t = self.scalar
        v = "f64" if self.tasks == 1 else f"v{self.tasks}f64"
        return f"  {out} = call {t} @llvm.fabs.{v}({t} {x})"

    def lanes(self, x: str, ty: str | None = None) -> str:
        """`x.0`, `x.1`, ...: the lanes of a per-task value."""
        return "\n".join(f"  {x}.{t} = extractelement {ty or self.scalar} {x}, i64 {t}"
                         for t in range(self.tasks))

    def all(self, flags: str, out: str) -> tuple[str, str]:
        """(lines, name): an i1 true when the per-task flags are true for every task."""
        if self.tasks == 1:
            return "", flags
        lines = self.lanes(flags, self.mask) + "\n"
        return lines + and_chain(out, [f"{flags}.{t}" for t in range(self.tasks)]) + "\n", out


def predict_example(lanes: Lanes, x: str, s1: str, call: str) -> str:
    """v0 = the features `x`, s0 = 0, Predict (`call`: its IR lines); `s1` = the prediction."""
    return f"""  store {lanes.vector} {x}, ptr %v0.p, align 8
  store {lanes.scalar} {lanes.zero}, ptr %mem, align 8
{call}
  {s1} = load {lanes.scalar}, ptr %s1.p, align 8"""


def learn_example(lanes: Lanes, x: str, y: str, call: str) -> str:
    """v0 = the features `x`, s0 = the label `y`, Learn (`call`: its IR lines)."""
    return f"""  store {lanes.vector} {x}, ptr %v0.p, align 8
  store {lanes.scalar} {y}, ptr %mem, align 8
{call}"""


def train_check(lanes: Lanes, y: str, s1: str, entry: str, sigmoid_unread: bool) -> str:
    """The error check of a training example, from the block `entry` on: on accuracy
    tasks (`%acc`) s1 = sigmoid(s1), written back to s1; then `%bad` (per task) when
    |y - s1| is NaN or above the bound.

    With `sigmoid_unread` (see `azc.backend.kernels.sigmoid_unread`), when
    |y| + 1 <= the bound for every task the check fails exactly when s1 is NaN
    (the sigmoid is in [0, 1] otherwise), and 0.5 (or the NaN) in its place gives
    the same outcome with no exp().
    """
    t, m = lanes.scalar, lanes.mask
    sig_fast, sig_fast_in = "  br label %sig.exact", ""
    if sigmoid_unread:
        fast_lines, fast = lanes.all("%fast" if lanes.tasks == 1 else f"%fast{lanes.tasks}",
                                     "%fast")
        sig_fast = f"""{lanes.fabs(y, "%ya")}
  %yb = fadd {t} %ya, {lanes.const("1.0")}
  %fast{"" if lanes.tasks == 1 else lanes.tasks} = fcmp ole {t} %yb, {lanes.maxerr}
{fast_lines}  %s1nan = fcmp uno {t} {s1}, {lanes.zero}
  %sgf = select {m} %s1nan, {t} {s1}, {t} {lanes.const("0.5")}
  br i1 {fast}, label %sig.join, label %sig.exact"""
        sig_fast_in = ", [ %sgf, %sig ]"
    return f"""  br i1 %acc, label %sig, label %sig.done
sig:
{sig_fast}
sig.exact:
{sigmoid(t, s1, "%sg")}
  store {t} %sg, ptr %s1.p, align 8
  br label %sig.join
sig.join:
  %sgv = phi {t} [ %sg, %sig.exact ]{sig_fast_in}
  br label %sig.done
sig.done:
  %s1b = phi {t} [ {s1}, %{entry} ], [ %sgv, %sig.join ]
  %diff = fsub {t} {y}, %s1b
{lanes.fabs("%diff", "%err")}
  %bad = fcmp ugt {t} %err, {lanes.maxerr}"""


def validation_error(lanes: Lanes, comment: str = "") -> str:
    """The error of a validation example and the loss so far, from the label `%vyv`,
    the prediction `%vs1` and the loss before it `%loss0`: `%verr` = y - s1 and
    `%lossn` = loss + err**2, or on accuracy tasks (`%acc`) `%verr` = 0 (right) /
    1 (wrong) / inf (probability outside [0, 1]) and `%lossn` = loss + err; the loss
    is stored in `%loss.a`; then `%vabs` = |err| and `%vbad` (per task) when it is
    NaN or above the bound.

    sigmoid(s1) > 0.5 exactly when s1 > 0 for |s1| > 1e-6 (exp(-s1) is then clearly
    on one side of 1), and it is never outside [0, 1] there: exp() runs only where
    a task needs it.
    """
    t, m = lanes.scalar, lanes.mask
    far_lines, far = lanes.all("%vfar", "%bothfar")
    if lanes.tasks == 1:
        exact = """  %pout.e = or i1 %pgt1, %plt0
  %ppos.e = fcmp ogt double %vp, 0.5"""
    else:  # some tasks may be far: they keep the shortcut's answer
        exact = f"""  %pout.x = or {m} %pgt1, %plt0
  %ppos.x = fcmp ogt {t} %vp, {lanes.const("0.5")}
  %pout.e = select {m} %vfar, {m} zeroinitializer, {m} %pout.x
  %ppos.e = select {m} %vfar, {m} %ppos.s, {m} %ppos.x"""
    false = "false" if lanes.tasks == 1 else "zeroinitializer"
    return f"""  br i1 %acc, label %vacc, label %vrms
vrms:
  %ve = fsub {t} %vyv, %vs1
  %ve2 = fmul {t} %ve, %ve
  %lossr = fadd {t} %loss0, %ve2
  br label %vchk
vacc:
{lanes.fabs("%vs1", "%vsabs")}
  %vfar = fcmp ogt {t} %vsabs, {lanes.const("1.0e-6")}
  %ppos.s = fcmp ogt {t} %vs1, {lanes.zero}
{far_lines}  br i1 {far}, label %vacc.join, label %vacc.exact
vacc.exact:
{sigmoid(t, "%vs1", "%vp")}
  %pgt1 = fcmp ogt {t} %vp, {lanes.const("1.0")}
  %plt0 = fcmp olt {t} %vp, {lanes.zero}
{exact}
  br label %vacc.join
vacc.join:
  %pout = phi {m} [ {false}, %vacc ], [ %pout.e, %vacc.exact ]
  %ppos = phi {m} [ %ppos.s, %vacc ], [ %ppos.e, %vacc.exact ]
{_accuracy_error(t)}
  br label %vchk
vchk:
  %verr = phi {t} [ %ve, %vrms ], [ %ea, %vacc.join ]
  %lossn = phi {t} [ %lossr, %vrms ], [ %lossa, %vacc.join ]
  store {t} %lossn, ptr %loss.a{comment}
{lanes.fabs("%verr", "%vabs")}
  %vbad = fcmp ugt {t} %vabs, {lanes.maxerr}"""


def exec_key(kind: ExecKind, index: str, tag: str, random: bool = True) -> tuple[str, str]:
    """(key, lines): the random key of a component run (`kind`, `index`) of the task
    keyed `%ktask`; with `random` False, the execution id itself (for the native
    interpreter, which derives keys as it needs them)."""
    lines = (f"  %{tag}sh = shl i64 {index}, {EXEC_KIND_BITS}\n"
             f"  %{tag}id = or i64 %{tag}sh, {kind:d}\n")
    if not random:
        return f"%{tag}id", lines
    return f"%{tag}k", lines + f"  %{tag}k = call i64 @azc_exec_key(i64 %ktask, i64 %{tag}id)\n"


def sigmoid(t: str, x: str, out: str) -> str:
    """`out` = 1 / (1 + exp(-x)) (type t), as the protocol computes it."""
    return f"""  {out}.neg = fneg {t} {x}
{libm_call(t, "exp", f"{out}.neg", f"{out}.exp")}
  {out}.den = fadd {t} {const_of(t, "1.0")}, {out}.exp
  {out} = fdiv {t} {const_of(t, "1.0")}, {out}.den"""


def _fitness(t: str) -> str:
    """`%fitd` (type t) from the validation loss `%lossf` and the validation size `%nvf`:
    1 - loss/NV on accuracy tasks (`%acc`), else 1 - (2/pi) atan(RMSE), 0 if RMSE is
    not finite."""
    m = "i1" if t == "double" else f"<{lanes_of(t)} x i1>"
    v = "f64" if t == "double" else f"v{lanes_of(t)}f64"
    inf = const_of(t, "0x7FF0000000000000")
    return f"""  %lossm = fdiv {t} %lossf, %nvf
  %fa = fsub {t} {const_of(t, "1.0")}, %lossm
  %rmse = call {t} @llvm.sqrt.{v}({t} %lossm)
  %rabs = call {t} @llvm.fabs.{v}({t} %rmse)
  %rfin = fcmp one {t} %rabs, {inf}
{libm_call(t, "atan", "%rmse", "%at")}
  %atm = fmul {t} {const_of(t, f64(-0.63661977236758138243))}, %at
  %fr = fadd {t} {const_of(t, "1.0")}, %atm
  %frf = select {m} %rfin, {t} %fr, {t} {const_of(t, "0.0")}
  %fitd = select i1 %acc, {t} %fa, {t} %frf"""


def _accuracy_error(t: str) -> str:
    """`%ea`, a validation error on an accuracy task (0 right, 1 wrong, inf when the
    probability is outside [0, 1]: `%pout`), and `%lossa` = `%loss0` + `%ea`, from the
    label `%vyv` and the decision `%ppos` (sigmoid(s1) > 0.5)."""
    m = "i1" if t == "double" else f"<{lanes_of(t)} x i1>"
    return f"""  %lpos = fcmp ogt {t} %vyv, {const_of(t, "0.5")}
  %right = icmp eq {m} %lpos, %ppos
  %e01 = select {m} %right, {t} {const_of(t, "0.0")}, {t} {const_of(t, "1.0")}
  %ea = select {m} %pout, {t} {const_of(t, "0x7FF0000000000000")}, {t} %e01
  %lossa = fadd {t} %loss0, %ea"""


def task_loops(name: str, layout: Layout, calls: dict[Component, str], uses_random: bool,
               interpreted: bool = False, local_memory: bool = False,
               linkage: str = "internal", records: bool = True,
               sigmoid_unread: bool = False) -> str:
    """@<name>(ptr mem, ptr d, ptr o, i64 ktask, double maxerr, i64 recoff, ptr prog):
    one task's training epochs and validations after Setup, as azc.interp runs them.

    `d` is the task's descriptor row, `o` its output row (written here), `ktask`
    its random key, `recoff` a byte offset added to its record pointers, `prog`
    the encoded program (read only when `interpreted`).  `calls` maps Predict
    and Learn to call templates as in `driver`.  With `local_memory`, the
    memory is copied into a local buffer first, so that LLVM can keep the
    scalars and vectors in registers across examples (the memory is not read
    after the task; a memory too large for the stack, `on_stack`, is worked on in
    place instead).  Without `records`, the record pointers are ignored (the
    driver runs such loops only for tasks that record nothing).  With
    `sigmoid_unread` (see `sigmoid_unread`; only without records), training
    on accuracy tasks skips the sigmoid where it cannot change the outcome.
    """
    if sigmoid_unread and records:
        raise LoweringError("sigmoid_unread changes the recorded training errors")
    F = layout.features
    vt = f"<{F} x double>"
    size = max(layout.size, 1)
    voff = layout.offset(Kind.VECTOR, 0)

    def call(comp: Component, kexpr: str) -> str:
        return calls[comp].format(mem="%mem", k=kexpr, ktask="%ktask")

    def execkey(kind: ExecKind, index: str, tag: str) -> tuple[str, str]:
        if not uses_random and not interpreted:
            return "0", ""
        return exec_key(kind, index, tag, random=not interpreted)

    ks_pred, pre_pred = execkey(ExecKind.TRAIN_PREDICT, "%tt", "xp")
    ks_learn, pre_learn = execkey(ExecKind.LEARN, "%tt", "xl")
    ks_valid, pre_valid = execkey(ExecKind.VALID_PREDICT, "%vid", "xv")
    local_memory = local_memory and on_stack(size)  # a large memory is worked on in place
    memory = "ptr noalias %mem.in" if local_memory else "ptr noalias %mem"
    copy = (f"  %mem = alloca [{size} x double], align 64\n"
            f"  call void @llvm.memcpy.p0.p0.i64(ptr %mem, ptr %mem.in, i64 {size * 8}, "
            f"i1 false)\n") if local_memory else ""
    inline = " alwaysinline" if linkage == "internal" and not interpreted else ""
    one = Lanes(1, F)
    valid_call = ("  %vid = add i64 %vbase, %j\n" + pre_valid + "  "
                  + call(Component.PREDICT, ks_valid))
    return f"""
define {linkage} void @{name}({memory}, {LOOPS_PARAMS}) nounwind{inline} {{
entry:
{copy}{prog_loads("pl") if interpreted else ""}
  %rem.a = alloca i64
  %best.a = alloca double
  %step.a = alloca i64
  %epoch.a = alloca i64
  %steps.a = alloca i64
  %stop.a = alloca double
  %nte.a = alloca i64
  %nve.a = alloca i64
  %nvp.a = alloca i64
  %k.a = alloca i64
  %j.a = alloca i64
  %loss.a = alloca double
{desc_loads(records)}
  %v0.p = getelementptr inbounds double, ptr %mem, i64 {voff}
  %s1.p = getelementptr inbounds double, ptr %mem, i64 1
  store double 0.0, ptr %best.a
  store i64 0, ptr %steps.a
  store double 0.0, ptr %stop.a
  store i64 0, ptr %nte.a
  store i64 0, ptr %nve.a
  store i64 0, ptr %nvp.a
{_EPOCH_START}
  %ord.p = getelementptr inbounds i64, ptr %order, i64 %tt
  %ex = load i64, ptr %ord.p
  %x.off = mul i64 %ex, {F}
  %x.p = getelementptr inbounds double, ptr %tx, i64 %x.off
  %y.p = getelementptr inbounds double, ptr %ty, i64 %ex
  %y = load double, ptr %y.p
  %sd = load i64, ptr %steps.a
  %sd1 = add i64 %sd, 1
  store i64 %sd1, ptr %steps.a
  %x = load {vt}, ptr %x.p, align 8
{predict_example(one, "%x", "%s1", pre_pred + "  " + call(Component.PREDICT, ks_pred))}
  %rtp.null = icmp eq ptr %rtp, null
  br i1 %rtp.null, label %tp.done, label %tp.rec
tp.rec:
  %rtp.e = getelementptr inbounds double, ptr %rtp, i64 %tt
  store double %s1, ptr %rtp.e
  br label %tp.done
tp.done:
{train_check(one, "%y", "%s1", "tp.done", sigmoid_unread)}
  br i1 %bad, label %stopped, label %te.check
te.check:
  %rte.null = icmp eq ptr %rte, null
  %no.te = or i1 %rte.null, %notfirst
  br i1 %no.te, label %te.done, label %te.rec
te.rec:
  %nte = load i64, ptr %nte.a
  %rte.e = getelementptr inbounds double, ptr %rte, i64 %nte
  store double %err, ptr %rte.e
  %nte1 = add i64 %nte, 1
  store i64 %nte1, ptr %nte.a
  br label %te.done
te.done:
{learn_example(one, "%x", "%y", pre_learn + "  " + call(Component.LEARN, ks_learn))}
  %k1 = add i64 %k, 1
  store i64 %k1, ptr %k.a
  br label %train.head
{_EPOCH_TRAINED}
  store double 0.0, ptr %loss.a
  store i64 0, ptr %nvp.a
{_VALID_START.format(F=F)}
  %vx.p = getelementptr inbounds double, ptr %vx, i64 %vx.off
  %vxv = load {vt}, ptr %vx.p, align 8
{predict_example(one, "%vxv", "%vs1", valid_call)}
  %rvp.null = icmp eq ptr %rvp, null
  br i1 %rvp.null, label %vp.done, label %vp.rec
vp.rec:
  %rvp.e = getelementptr inbounds double, ptr %rvp, i64 %j
  store double %vs1, ptr %rvp.e
  br label %vp.done
vp.done:
  %j1 = add i64 %j, 1
  store i64 %j1, ptr %nvp.a
  %vy.p = getelementptr inbounds double, ptr %vy, i64 %j
  %vyv = load double, ptr %vy.p
  %loss0 = load double, ptr %loss.a
{validation_error(one)}
  br i1 %vbad, label %valid.zero, label %ve.check
ve.check:
  %rve.null = icmp eq ptr %rve, null
  %no.ve = or i1 %rve.null, %notfirst
  br i1 %no.ve, label %ve.done, label %ve.rec
ve.rec:
  %nve = load i64, ptr %nve.a
  %rve.e = getelementptr inbounds double, ptr %rve, i64 %nve
  store double %vabs, ptr %rve.e
  %nve1 = add i64 %nve, 1
  store i64 %nve1, ptr %nve.a
  br label %ve.done
ve.done:
  store i64 %j1, ptr %j.a
  br label %valid.head
valid.zero:
  br label %valid.fit
valid.done:
  %lossf = load double, ptr %loss.a
  %nvf = sitofp i64 %NV to double
{_fitness("double")}
  br label %valid.fit
valid.fit:
  %fit = phi double [ 0.0, %valid.zero ], [ %fitd, %valid.done ]
  %best0 = load double, ptr %best.a
  %fit.lt = fcmp olt double %fit, %best0
  %best1 = select i1 %fit.lt, double %best0, double %fit
  store double %best1, ptr %best.a
  %epoch1 = add i64 %epoch, 1
  store i64 %epoch1, ptr %epoch.a
  br label %epoch.head
stopped:
  store double 1.0, ptr %stop.a
  %nall.rem = load i64, ptr %rem.a
  %in.first = icmp eq i64 %nall.rem, %nall
  br i1 %in.first, label %zero.best, label %task.done
zero.best:
  store double 0.0, ptr %best.a
  br label %task.done
task.done:
{out_stores()}
  ret void
}}
"""


def no_records(d: str, s: str) -> str:
    """IR lines setting `%norec<s>` to whether the task descriptor `d` records nothing."""
    lines = []
    for i in RECORD_FIELDS:
        lines += [f"  %rec{i:d}.p{s} = getelementptr inbounds i64, ptr {d}, i64 {i:d}",
                  f"  %rec{i:d}{s} = load i64, ptr %rec{i:d}.p{s}",
                  f"  %rec{i:d}.z{s} = icmp eq i64 %rec{i:d}{s}, 0"]
    return "\n".join(lines) + "\n" + and_chain(f"%norec{s}",
                                               [f"%rec{i:d}.z{s}" for i in RECORD_FIELDS])


def prog_loads(components: str) -> str:
    """Load the encoded program's (code pointer, length) of some components ("s", "p", "l")."""
    lines = []
    for c in components:
        comp = Component("spl".index(c))
        lines += [f"  %code.{c}.pp = getelementptr inbounds i64, ptr %prog, "
                  f"i64 {ProgSlot.code(comp):d}",
                  f"  %code.{c}.i = load i64, ptr %code.{c}.pp",
                  f"  %code.{c} = inttoptr i64 %code.{c}.i to ptr",
                  f"  %n.{c}.pp = getelementptr inbounds i64, ptr %prog, "
                  f"i64 {ProgSlot.length(comp):d}",
                  f"  %n.{c} = load i64, ptr %n.{c}.pp"]
    return "\n".join(lines)


# The SSA names of the task descriptor's fields in the protocol's IR.
DESC_NAMES = {TaskField.TRAIN_X: "tx", TaskField.TRAIN_Y: "ty", TaskField.VALID_X: "vx",
              TaskField.VALID_Y: "vy", TaskField.ORDER: "order", TaskField.NUM_TRAIN: "N",
              TaskField.NUM_VALID: "NV", TaskField.EPOCHS: "E",
              TaskField.EVAL_TYPE: "evaltype", TaskField.INDEX: "index",
              TaskField.NUM_TRAIN_REQ: "nreq", TaskField.NUM_VALID_REQ: "nvreq",
              TaskField.REC_TRAIN_PRED: "rtp", TaskField.REC_VALID_PRED: "rvp",
              TaskField.REC_TRAIN_ERR: "rte", TaskField.REC_VALID_ERR: "rve"}


def desc_loads(records: bool = True, s: str = "") -> str:
    """Load a task descriptor's fields (`%d<s>`, as `%<DESC_NAMES[field]><s>`); record
    pointers get `%recoff` added, and are null without `records` (code that never
    records)."""
    lines = []
    for field in TaskField:
        name = DESC_NAMES[field] + s
        lines.append(f"  %{name}.pp = getelementptr inbounds i64, ptr %d{s}, i64 {field:d}")
        if field.records and not records:
            lines.append(f"  %{name} = inttoptr i64 0 to ptr")
        elif field.records:
            lines.append(f"  %{name}.i = load i64, ptr %{name}.pp")
            lines.append(f"  %{name}.nz = icmp ne i64 %{name}.i, 0")
            lines.append(f"  %{name}.add = select i1 %{name}.nz, i64 %recoff, i64 0")
            lines.append(f"  %{name}.j = add i64 %{name}.i, %{name}.add")
            lines.append(f"  %{name} = inttoptr i64 %{name}.j to ptr")
        elif field.data:
            lines.append(f"  %{name}.i = load i64, ptr %{name}.pp")
            lines.append(f"  %{name} = inttoptr i64 %{name}.i to ptr")
        else:
            lines.append(f"  %{name} = load i64, ptr %{name}.pp")
    return "\n".join(lines)


# Where `task_loops` keeps each output (an i64 counter, but for the stopped flag).
_OUT_SOURCES = {OutField.TRAIN_STEPS: "%steps.a", OutField.NUM_TRAIN_ERR: "%nte.a",
                OutField.NUM_VALID_ERR: "%nve.a", OutField.NUM_VALID_PRED: "%nvp.a"}


def out_stores(s: str = "") -> str:
    """Store a task's outputs (the `task_loops` state with suffix `s`) in its row `%o<s>`."""
    lines = [f"  %bestf{s} = load double, ptr %best.a{s}", f"  store double %bestf{s}, ptr %o{s}"]
    for field in OutField:
        if field is OutField.FITNESS:
            continue
        name = field.name.lower()
        p = f"%o.{name}{s}"
        lines.append(f"  {p} = getelementptr inbounds double, ptr %o{s}, i64 {field:d}")
        if field is OutField.STOPPED_EARLY:
            lines.append(f"  %{name}.v{s} = load double, ptr %stop.a{s}")
        else:
            lines.append(f"  %{name}.i{s} = load i64, ptr {_OUT_SOURCES[field]}{s}")
            lines.append(f"  %{name}.v{s} = sitofp i64 %{name}.i{s} to double")
        lines.append(f"  store double %{name}.v{s}, ptr {p}")
    return "\n".join(lines)


def paired_on_stack(layout: Layout) -> bool:
    """Whether `paired_loops` of a layout fit the stack (their paired memory, without the
    matrices, lives there; larger layouts are not paired)."""
    return on_stack(2 * max(layout.matrix_base, 1))


PAIRED_PARAMS = ("ptr noalias %m0, ptr noalias %m1, ptr %d0, ptr %d1, ptr %o0, ptr %o1, "
                 "double %maxerr")


def paired_loops(name: str, layout: Layout, calls: dict[Component, str],
                 sigmoid_unread: bool = False) -> str:
    """@<name>(m0, m1, d0, d1, o0, o1, maxerr): `task_loops` for two tasks of the same
    shape (examples, epochs, budgets, eval type) at once, with no records and no random
    ops: task t's memory after Setup is `m<t>`, its descriptor row `d<t>`, its output
    row `o<t>`.

    The memories are interleaved into one paired memory (`PairEmit`), and both tasks
    run each training example and each validation example together: one Predict, one
    Learn, so the two tasks' chains of dependent operations (an SGD-like program's
    prediction, sigmoid and update) overlap.  A task that stops early, or whose
    validation ends, is masked: its outputs are final, and what runs on its half of
    the memory afterwards is never read.  Each task's results are exactly those of
    `task_loops` on it alone (same operations, in the same order, per task).
    """
    F = layout.features
    st, vt2, vt = "<2 x double>", f"<{2 * F} x double>", f"<{F} x double>"
    size = 2 * max(layout.matrix_base, 1)  # Predict and Learn use no matrices
    if not paired_on_stack(layout):
        raise LoweringError(f"the paired memory of {size} doubles is too large for the stack")
    voff = 2 * layout.offset(Kind.VECTOR, 0)
    inter = (f"<{2 * F} x i32> <" + ", ".join(f"i32 {i // 2 + (F if i % 2 else 0)}"
                                            for i in range(2 * F)) + ">")

    def pair(x0: str, x1: str, out: str) -> str:
        return (f"  {out}.h = insertelement {st} poison, double {x0}, i64 0\n"
                f"  {out} = insertelement {st} {out}.h, double {x1}, i64 1")

    two = Lanes(2, F)

    def per_task(text: str) -> str:
        return "\n".join(text.replace("@", str(t)) for t in (0, 1))

    def predict(x: str, s1: str) -> str:
        """Both tasks' features `<x>0`, `<x>1` interleaved into `x`, in v0, s0 = 0, Predict:
        `s1` the pair of predictions."""
        return (f"  {x} = shufflevector {vt} {x}0, {vt} {x}1, {inter}\n"
                + predict_example(two, x, s1,
                                  "  " + calls[Component.PREDICT].format(mem="%mem", k="0")))

    # interleave the two memories: scalars pairwise, each vector whole
    init = []
    for a in range(layout.scalars):
        init.append(f"  %is{a}.p0 = getelementptr inbounds double, ptr %m0, i64 {a}\n"
                    f"  %is{a}.p1 = getelementptr inbounds double, ptr %m1, i64 {a}\n"
                    f"  %is{a}.0 = load double, ptr %is{a}.p0\n"
                    f"  %is{a}.1 = load double, ptr %is{a}.p1\n"
                    + pair(f"%is{a}.0", f"%is{a}.1", f"%is{a}") +
                    f"\n  %is{a}.q = getelementptr inbounds double, ptr %mem, i64 {2 * a}\n"
                    f"  store {st} %is{a}, ptr %is{a}.q, align 8")
    for a in range(layout.vectors):
        off = layout.offset(Kind.VECTOR, a)
        init.append(f"  %iv{a}.p0 = getelementptr inbounds double, ptr %m0, i64 {off}\n"
                    f"  %iv{a}.p1 = getelementptr inbounds double, ptr %m1, i64 {off}\n"
                    f"  %iv{a}.0 = load {vt}, ptr %iv{a}.p0, align 8\n"
                    f"  %iv{a}.1 = load {vt}, ptr %iv{a}.p1, align 8\n"
                    f"  %iv{a} = shufflevector {vt} %iv{a}.0, {vt} %iv{a}.1, {inter}\n"
                    f"  %iv{a}.q = getelementptr inbounds double, ptr %mem, i64 {2 * off}\n"
                    f"  store {vt2} %iv{a}, ptr %iv{a}.q, align 8")
    return f"""
define void @{name}({PAIRED_PARAMS}) nounwind {{
entry:
  %mem = alloca [{size} x double], align 64
{chr(10).join(init)}
  %rem.a = alloca i64
  %step.a = alloca i64
  %epoch.a = alloca i64
  %k.a = alloca i64
  %j.a = alloca i64
  %loss.a = alloca {st}
{per_task('''  %best.a@ = alloca double
  %steps.a@ = alloca i64
  %stop.a@ = alloca double
  %nvp.a@ = alloca i64
  %nte.a@ = alloca i64
  %nve.a@ = alloca i64
  %alive.a@ = alloca i1
  %valid.a@ = alloca i1
  %zero.a@ = alloca i1
  store double 0.0, ptr %best.a@
  store i64 0, ptr %steps.a@
  store double 0.0, ptr %stop.a@
  store i64 0, ptr %nvp.a@
  store i64 0, ptr %nte.a@
  store i64 0, ptr %nve.a@
  store i1 true, ptr %alive.a@''')}
{desc_loads(False, "0")}
{desc_loads(False, "1")}
{chr(10).join(f"  %{v} = add i64 %{v}0, 0" for v in ("N", "NV", "E", "evaltype", "nreq", "nvreq"))}
  %maxerr2.h = insertelement {st} poison, double %maxerr, i64 0
  %maxerr2 = shufflevector {st} %maxerr2.h, {st} poison, <2 x i32> zeroinitializer
  %v0.p = getelementptr inbounds double, ptr %mem, i64 {voff}
  %s1.p = getelementptr inbounds double, ptr %mem, i64 2
{_EPOCH_START}
{per_task('''  %ord.p@ = getelementptr inbounds i64, ptr %order@, i64 %tt
  %ex@ = load i64, ptr %ord.p@
  %x.off@ = mul i64 %ex@, ''' + str(F) + '''
  %x.p@ = getelementptr inbounds double, ptr %tx@, i64 %x.off@
  %x@ = load ''' + vt + ''', ptr %x.p@, align 8
  %y.p@ = getelementptr inbounds double, ptr %ty@, i64 %ex@
  %y@ = load double, ptr %y.p@
  %alive@ = load i1, ptr %alive.a@
  %sd@ = load i64, ptr %steps.a@
  %inc@ = zext i1 %alive@ to i64
  %sd1@ = add i64 %sd@, %inc@
  store i64 %sd1@, ptr %steps.a@''')}
{pair("%y0", "%y1", "%y")}
{predict("%x", "%s1")}
{train_check(two, "%y", "%s1", "train.body", sigmoid_unread)}
{two.lanes("%bad", two.mask)}
{per_task("  %stops@ = and i1 %alive@, %bad.@")}
  %anystop = or i1 %stops0, %stops1
  br i1 %anystop, label %train.stop, label %train.learn
train.stop:
  ; the error check failed: a task stops, with fitness 0 in its first epoch
  %in.first = icmp eq i64 %rem, %nall
{per_task('''  %stop.o@ = load double, ptr %stop.a@
  %stop.n@ = select i1 %stops@, double 1.0, double %stop.o@
  store double %stop.n@, ptr %stop.a@
  %best.o@ = load double, ptr %best.a@
  %zap@ = and i1 %stops@, %in.first
  %best.n@ = select i1 %zap@, double 0.0, double %best.o@
  store double %best.n@, ptr %best.a@
  %notstop@ = xor i1 %stops@, true
  %alive.n@ = and i1 %alive@, %notstop@
  store i1 %alive.n@, ptr %alive.a@''')}
  %anyalive = or i1 %alive.n0, %alive.n1
  br i1 %anyalive, label %train.learn, label %task.done
train.learn:
{learn_example(two, "%x", "%y", "  " + calls[Component.LEARN].format(mem="%mem", k="0"))}
  %k1 = add i64 %k, 1
  store i64 %k1, ptr %k.a
  br label %train.head
{_EPOCH_TRAINED}
  store {st} zeroinitializer, ptr %loss.a
{per_task('''  %alive.d@ = load i1, ptr %alive.a@
  store i1 %alive.d@, ptr %valid.a@
  store i1 false, ptr %zero.a@
  %nvp.o@ = load i64, ptr %nvp.a@
  %nvp.z@ = select i1 %alive.d@, i64 0, i64 %nvp.o@
  store i64 %nvp.z@, ptr %nvp.a@''')}
{_VALID_START.format(F=F)}
  %j1 = add i64 %j, 1
{per_task('''  %vx.p@ = getelementptr inbounds double, ptr %vx@, i64 %vx.off
  %vxv@ = load ''' + vt + ''', ptr %vx.p@, align 8
  %vy.p@ = getelementptr inbounds double, ptr %vy@, i64 %j
  %vyr@ = load double, ptr %vy.p@
  %valid@ = load i1, ptr %valid.a@
  %nvp.v@ = load i64, ptr %nvp.a@
  %nvp.w@ = select i1 %valid@, i64 %j1, i64 %nvp.v@
  store i64 %nvp.w@, ptr %nvp.a@''')}
{pair("%vyr0", "%vyr1", "%vyv")}
{predict("%vxv", "%vs1")}
  %loss0 = load {st}, ptr %loss.a
{validation_error(two, "  ; a task whose validation ended has fitness 0 anyway")}
{two.lanes("%vbad", two.mask)}
{per_task('''  %vends@ = and i1 %valid@, %vbad.@
  %vkeep@ = xor i1 %vends@, true
  %valid.n@ = and i1 %valid@, %vkeep@
  store i1 %valid.n@, ptr %valid.a@
  %zero.o@ = load i1, ptr %zero.a@
  %zero.n@ = or i1 %zero.o@, %vends@
  store i1 %zero.n@, ptr %zero.a@''')}
  %anyvalid = or i1 %valid.n0, %valid.n1
  store i64 %j1, ptr %j.a
  br i1 %anyvalid, label %valid.head, label %valid.done
valid.done:
  %nvf1 = sitofp i64 %NV to double
{pair("%nvf1", "%nvf1", "%nvf")}
  %lossf = load {st}, ptr %loss.a
{_fitness(st)}
{two.lanes("%fitd")}
{per_task('''  %zero@ = load i1, ptr %zero.a@
  %fit@ = select i1 %zero@, double 0.0, double %fitd.@
  %best0@ = load double, ptr %best.a@
  %fit.lt@ = fcmp olt double %fit@, %best0@
  %best1@ = select i1 %fit.lt@, double %best0@, double %fit@
  %alive.f@ = load i1, ptr %alive.a@
  %best2@ = select i1 %alive.f@, double %best1@, double %best0@
  store double %best2@, ptr %best.a@''')}
  %epoch1 = add i64 %epoch, 1
  store i64 %epoch1, ptr %epoch.a
  br label %epoch.head
task.done:
{out_stores("0")}
{out_stores("1")}
  ret void
}}
"""
