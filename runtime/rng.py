"""The counter-based random generator of azc (Python form).

Every random draw of a program is a pure function of

    (seed, task index, execution id, instruction slot, element index)

so a draw never depends on what ran before it: removing a dead random op does
not change the draws of live ones, and the reference interpreter, the JIT
kernels and exported predictors all produce the same numbers.  The native form
of the same generator is `rng.ll` beside this file; both must stay in step
(a test compares them).

The mixing function is the SplitMix64 finalizer.  Keys:

    k_task = mix(seed  ^ mix(task  + GOLDEN))      once per task evaluation
    k_exec = mix(k_task ^ exec_id)                 once per component run
    k_slot = mix(k_exec ^ (slot + 1) * GOLDEN)     once per random instruction
    bits_e = mix(k_slot + (e + 1) * GOLDEN)        one per element draw e

`exec_id` says which component run it is: `(index << 2) | kind` with kind
0 = Setup, 1 = Predict in training (index = global train step), 2 = Learn
(index = global train step), 3 = Predict in validation (index = epoch * Nv +
example).  A uniform in the open interval (0, 1) is
`((bits >> 12) + 0.5) * 2**-52`, exact in float64.

Uniform ops take one draw per element; Gaussian ops take two (elements 2e and
2e+1) and use Box-Muller with the C library's log, sqrt and cos.

This file is standard library + numpy only.  (Exported predictors carry the
same generator compiled into their library; see rng.ll.)
"""

from __future__ import annotations

import math

import numpy as np

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
M1 = 0xBF58476D1CE4E5B9
M2 = 0x94D049BB133111EB
TWO_PI = 6.283185307179586
SCALE = 2.0 ** -52

# The kinds of component run, and the bits they take in an execution id: the one
# definition, for the Python side and for generated code (azc.backend.contracts.ExecKind).
KIND_SETUP = 0
KIND_PREDICT = 1
KIND_LEARN = 2
KIND_VALID = 3
KIND_BITS = 2


def mix(z: int) -> int:
    """SplitMix64 finalizer on a Python int (taken mod 2**64)."""
    z &= MASK
    z = ((z ^ (z >> 30)) * M1) & MASK
    z = ((z ^ (z >> 27)) * M2) & MASK
    return z ^ (z >> 31)


def _mix_array(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer, elementwise on a uint64 array."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(M2)
    return z ^ (z >> np.uint64(31))


def task_key(seed: int, task: int) -> int:
    """The key of one task evaluation."""
    return mix((seed & MASK) ^ mix(task + GOLDEN))


def exec_id(kind: int, index: int) -> int:
    """The id of one component run (see the module docstring)."""
    return ((index << KIND_BITS) | kind) & MASK


def exec_key(k_task: int, exec_id_: int) -> int:
    """The key of one component run."""
    return mix(k_task ^ exec_id_)


def slot_key(k_exec: int, slot: int) -> int:
    """The key of one random instruction within a component run."""
    return mix(k_exec ^ (((slot + 1) * GOLDEN) & MASK))


def uniforms(k_slot: int, n: int) -> np.ndarray:
    """n open-interval (0, 1) uniforms: element draws 0..n-1 of a slot."""
    e = np.arange(1, n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        bits = _mix_array(np.uint64(k_slot) + e * np.uint64(GOLDEN))
    return ((bits >> np.uint64(12)).astype(np.float64) + 0.5) * SCALE


def uniform_value(lo: float, hi: float, u: float) -> float:
    """A draw from U(lo, hi); lo itself when the interval is empty (lo >= hi)."""
    if not lo < hi:
        return lo
    return lo + (hi - lo) * u


def gaussian_value(mean: float, std: float, u1: float, u2: float) -> float:
    """A draw from N(mean, std) by Box-Muller, with the C library's functions."""
    z = math.sqrt(-2.0 * math.log(u1)) * math.cos(TWO_PI * u2)
    return mean + std * z


def uniform_fill(lo: float, hi: float, k_slot: int, n: int) -> np.ndarray:
    """n i.i.d. U(lo, hi) values in element order."""
    u = uniforms(k_slot, n)
    return np.array([uniform_value(lo, hi, float(x)) for x in u], dtype=np.float64)


def gaussian_fill(mean: float, std: float, k_slot: int, n: int) -> np.ndarray:
    """n i.i.d. N(mean, std) values in element order (two draws each)."""
    u = uniforms(k_slot, 2 * n)
    return np.array([gaussian_value(mean, std, float(u[2 * i]), float(u[2 * i + 1]))
                     for i in range(n)], dtype=np.float64)
