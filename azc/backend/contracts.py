"""The binary contracts shared by Python and generated code, each named once.

The memory layout (`Layout`), the task descriptor (`TaskField`), the per-task
outputs (`OutField`), the native interpreter's program descriptor (`ProgSlot`),
the encoded instruction record (`RecordField`, defined with `Instr` in azc.ir),
the per-op facts byte of the native DCE's op table (`OpBits`), the execution
kinds that key random draws (`ExecKind`), and an exported model's state
header and status codes (`StateWord`, `ModelStatus`; the eval types are
`azc.tasks.task.EvalType`).  The IR generators
and the Python side (the ctypes buffers they exchange) both use these names;
no slot or offset of them is written as a number anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from itertools import pairwise

import numpy as np

from azc._runtime import rng
from azc.ir import RECORD_SIZE, Component, MemoryConfig, RecordField
from azc.ops import Kind

__all__ = [
    "CODE_RECORD",
    "CODE_SLOTS",
    "DESC_WIDTH",
    "EXEC_KIND_BITS",
    "LENGTH_SLOTS",
    "NONE_KIND",
    "OUT_WIDTH",
    "PAIR_SHAPE",
    "PROG_WIDTH",
    "RECORD_FIELDS",
    "STACK_LIMIT",
    "STATE_HEADER",
    "ExecKind",
    "Layout",
    "ModelStatus",
    "OpBits",
    "OutField",
    "ProgSlot",
    "RecordField",
    "StateWord",
    "TaskField",
    "on_stack",
]


class TaskField(IntEnum):
    """The task descriptor: one row of DESC_WIDTH int64 per task."""

    TRAIN_X = 0          # pointer to N x F float64 features
    TRAIN_Y = 1          # pointer to N float64 labels
    VALID_X = 2          # pointer to NV x F features
    VALID_Y = 3          # pointer to NV labels
    ORDER = 4            # pointer to E x N int64: each epoch's order of training examples
    NUM_TRAIN = 5        # N
    NUM_VALID = 6        # NV
    EPOCHS = 7           # E
    EVAL_TYPE = 8        # an azc.tasks.task.EvalType value
    INDEX = 9            # the task's index: keys its random draws
    NUM_TRAIN_REQ = 10   # training examples to run (the budget's)
    NUM_VALID_REQ = 11   # validation examples to run
    REC_TRAIN_PRED = 12  # record pointers (0: not recorded): training predictions,
    REC_VALID_PRED = 13  # validation predictions,
    REC_TRAIN_ERR = 14   # training errors (first epoch),
    REC_VALID_ERR = 15   # validation errors (first epoch)

    @property
    def records(self) -> bool:
        """A record pointer, 0 when the caller records nothing there."""
        return self >= TaskField.REC_TRAIN_PRED

    @property
    def data(self) -> bool:
        """A pointer to the task's data."""
        return self <= TaskField.ORDER


DESC_WIDTH = len(TaskField)
RECORD_FIELDS = tuple(f for f in TaskField if f.records)
# The fields two tasks must share to run together in paired loops.
PAIR_SHAPE = (TaskField.NUM_TRAIN, TaskField.NUM_VALID, TaskField.EPOCHS, TaskField.EVAL_TYPE,
              TaskField.NUM_TRAIN_REQ, TaskField.NUM_VALID_REQ)


class OutField(IntEnum):
    """The per-task outputs: one row of OUT_WIDTH float64 per task."""

    FITNESS = 0
    TRAIN_STEPS = 1      # training examples run
    STOPPED_EARLY = 2    # 1.0 when a training error exceeded the bound
    NUM_TRAIN_ERR = 3    # training errors recorded (first epoch)
    NUM_VALID_ERR = 4    # validation errors recorded (first epoch)
    NUM_VALID_PRED = 5   # validation predictions recorded (last epoch)


OUT_WIDTH = 8  # the OutField row, padded to 64 bytes


class ProgSlot(IntEnum):
    """The native interpreter's program descriptor: PROG_WIDTH int64 per program."""

    SETUP_CODE = 0       # a component's records (pointer), then their number
    SETUP_LEN = 1
    PREDICT_CODE = 2
    PREDICT_LEN = 3
    LEARN_CODE = 4
    LEARN_LEN = 5
    LIVE_RANDOM = 6      # written by the native DCE: live random ops
    LIVE_INSTRS = 7      # written by the native DCE: live instructions
    LOOPS = 8            # compiled training and validation (`loop_kernel_module`; 0: none)
    PAIRED_LOOPS = 9     # the same for two tasks at once (`paired_kernel_module`; 0: none)

    @staticmethod
    def code(component: Component) -> ProgSlot:
        """The slot of a component's code pointer (its length is the next slot)."""
        return ProgSlot(2 * component)

    @staticmethod
    def length(component: Component) -> ProgSlot:
        """The slot of a component's number of records."""
        return ProgSlot(2 * component + 1)


PROG_WIDTH = len(ProgSlot)


def _columns(slots: list[int]) -> slice:
    """Evenly spaced descriptor slots as a numpy column slice (a view: no fancy indexing
    on the hot path)."""
    step = slots[1] - slots[0]
    assert step > 0 and all(b - a == step for a, b in pairwise(slots))
    return slice(int(slots[0]), int(slots[-1]) + 1, int(step))


CODE_SLOTS = _columns([ProgSlot.code(c) for c in Component])      # Setup, Predict, Learn
LENGTH_SLOTS = _columns([ProgSlot.length(c) for c in Component])
CODE_RECORD = RECORD_SIZE  # bytes per encoded instruction (an azc.ir.Instr)


class OpBits(IntEnum):
    """The native DCE's op table: one byte of facts per op, from azc.ops.OPS.

    Bit offsets: two-bit fields hold a `Kind` (`NONE_KIND`: no such operand),
    one-bit fields a flag.
    """

    IN1_KIND = 0         # kind of the first input
    IN2_KIND = 2         # kind of the second input
    OUT_KIND = 4         # kind of the output (NONE_KIND: NO_OP)
    PARTIAL = 6          # op.partial_write: reads its output, does not kill it
    RANDOM = 7           # op.random: draws from the random generator

    @staticmethod
    def of(ins: tuple[Kind, ...], out: Kind | None, partial: bool, random: bool) -> int:
        """The byte of an op with these operand kinds and flags."""
        k1 = ins[0] if len(ins) >= 1 else NONE_KIND
        k2 = ins[1] if len(ins) >= 2 else NONE_KIND
        ko = out if out is not None else NONE_KIND
        return (k1 << OpBits.IN1_KIND | k2 << OpBits.IN2_KIND | ko << OpBits.OUT_KIND
                | int(partial) << OpBits.PARTIAL | int(random) << OpBits.RANDOM)


NONE_KIND = 3  # an OpBits kind field: no operand (Kind values are 0..2)
assert max(Kind) < NONE_KIND


class ExecKind(IntEnum):
    """What one execution of a component is, in the key of its random draws (the values
    are the random generator's, `runtime/rng.py`)."""

    SETUP = rng.KIND_SETUP
    TRAIN_PREDICT = rng.KIND_PREDICT
    LEARN = rng.KIND_LEARN
    VALID_PREDICT = rng.KIND_VALID


EXEC_KIND_BITS = rng.KIND_BITS  # an execution id is (example id << EXEC_KIND_BITS) | ExecKind


class StateWord(IntEnum):
    """The header of an exported model's state (`azc.backend.model`): one 64-bit word
    each, zeros up to STATE_HEADER, then the memory buffer.  The exported loader
    (`runtime/predictor.py`) keeps a copy of the names, pinned by a test."""

    MAGIC = 0
    ABI_VERSION = 1
    SEED = 2
    EVAL_TYPE = 3
    SETUP_DONE = 4
    TRAIN_STEPS = 5
    PREDICT_COUNT = 6
    STOPPED = 7
    FINGERPRINT = 8  # of the model that made the state (its program, memory and F)


# bytes before a model state's memory buffer: the words above, padded to a multiple of 64
# so that the memory keeps the state's 64-byte alignment
STATE_HEADER = 64 * -(-8 * len(StateWord) // 64)


class ModelStatus(IntEnum):
    """What azc_model_init / fit / predict return (the AZC_* codes of model.h)."""

    OK = 0
    STOPPED = 1
    EBADSTATE = -1
    EINVAL = -2


# The largest buffer generated code keeps on the native stack, in bytes.  A thread's
# stack is a few MB at most (8 MB on the main thread, often less elsewhere), and the
# memory grows with F (F*F doubles per matrix): a larger memory, or a temporary of F*F
# doubles, lives on the heap, or is worked on in place (see `on_stack`).  Small
# buffers stay on the stack, where LLVM keeps their scalars and vectors in registers.
STACK_LIMIT = 64 * 1024


def on_stack(doubles: int) -> bool:
    """Whether a buffer of this many float64 is small enough for the native stack."""
    return doubles * 8 <= STACK_LIMIT


def _align(n: int, to: int) -> int:
    return -(-n // to) * to


@dataclass(frozen=True)
class Layout:
    """Where each address lives in the flat float64 buffer.

    Scalars first, then vectors, then matrices (row-major).  Each bank starts
    on a 64-byte boundary, and each vector and matrix is padded so that all
    of them are aligned to their vector width (up to 64 bytes): misaligned
    512-bit loads and stores made matrix ops several times slower.  Padding
    elements are zero and never read.
    """

    scalars: int
    vectors: int
    matrices: int
    features: int

    @staticmethod
    def of(memory: MemoryConfig, features: int) -> Layout:
        """The layout of a memory configuration at feature size F."""
        return Layout(memory.scalars, memory.vectors, memory.matrices, features)

    @property
    def vector_stride(self) -> int:
        """Distance between consecutive vectors (F, padded to its alignment)."""
        return _align(self.features, min(8, 1 << (self.features - 1).bit_length()))

    @property
    def matrix_stride(self) -> int:
        """Distance between consecutive matrices (F*F, padded to 8 doubles)."""
        F = self.features
        return _align(F * F, min(8, 1 << (F * F - 1).bit_length()))

    @property
    def vector_base(self) -> int:
        """Offset of v0."""
        return _align(self.scalars, 8)

    @property
    def matrix_base(self) -> int:
        """Offset of m0."""
        return _align(self.vector_base + self.vectors * self.vector_stride, 8)

    @property
    def size(self) -> int:
        """Number of float64 in the buffer."""
        return self.matrix_base + self.matrices * self.matrix_stride

    @property
    def heap(self) -> bool:
        """Whether generated code of this layout uses the heap: the memory, or a matrix
        op's temporary of F*F doubles, is too large for the native stack (`on_stack`)."""
        return not on_stack(max(self.size, 1)) or not on_stack(self.features ** 2)

    def offset(self, kind: Kind, addr: int) -> int:
        """Index of the first element of an address."""
        if kind is Kind.SCALAR:
            return addr
        if kind is Kind.VECTOR:
            return self.vector_base + addr * self.vector_stride
        return self.matrix_base + addr * self.matrix_stride

    def stride(self, kind: Kind) -> int:
        """Distance between consecutive addresses of a kind."""
        return (1, self.vector_stride, self.matrix_stride)[kind]

    def pack(self, s: np.ndarray, v: np.ndarray, m: np.ndarray) -> np.ndarray:
        """A buffer holding scalars s, vectors v (V, F) and matrices m (M, F, F)."""
        buf = np.zeros(self.size)
        F = self.features
        buf[:self.scalars] = s
        for i in range(self.vectors):
            o = self.offset(Kind.VECTOR, i)
            buf[o:o + F] = v[i]
        for i in range(self.matrices):
            o = self.offset(Kind.MATRIX, i)
            buf[o:o + F * F] = np.asarray(m[i]).reshape(-1)
        return buf

    def unpack(self, buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(s, v, m) from a buffer."""
        F = self.features
        s = buf[:self.scalars].copy()
        v = np.array([buf[self.offset(Kind.VECTOR, i):][:F] for i in range(self.vectors)])
        m = np.array([buf[self.offset(Kind.MATRIX, i):][:F * F].reshape(F, F)
                      for i in range(self.matrices)])
        return s, v.reshape(self.vectors, F), m.reshape(self.matrices, F, F)

