"""The native DCE on memories of any size the configuration accepts.

Liveness is kept in 64-bit words, `mask_words(memory)` of them per kind: at
63, 64, 65, 100 ... addresses of each kind, programs whose liveness depends
on their highest addresses (and on addresses 64 apart, which one word
cannot tell apart) must give, through the search evaluator, bitwise the
fitness of the reference interpreter, and the native DCE must remove
exactly what azc.passes.dce removes.  For memories of at most 64 addresses
per kind the hashes (the structural memo's keys) and the evaluator's
dedup counts are pinned to those of the one-word code.
"""

from __future__ import annotations

import hashlib
import re
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azc.backend.contracts import NONE_KIND, OpBits
from azc.backend.native import Encoded, decode, native_dce
from azc.backend.native_dce import dce_module, mask_words
from azc.errors import ConfigError, VerifyError
from azc.frontend import parse
from azc.interp import evaluate_task
from azc.ir import MAX_ADDRESSES, Instr, MemoryConfig, Program, canonical_slots, slot_at
from azc.ops import OPS, Kind, op_by_name
from azc.passes import dce
from azc.printer import format_program
from azc.search.config import parse_config
from azc.search.evaluator import SearchEvaluator
from azc.search.fec import FecConfig
from azc.tasks import load_tasks

from . import strategies as azs
from .test_native import SETTINGS, check_dce

TASKS = load_tasks("demo_search")[:3]


def evaluate_both(program: Program, memory: MemoryConfig, fec: FecConfig | None = None
                  ) -> tuple[list[float], list[float]]:
    """(search evaluator's per-task fitness, reference interpreter's), seed 0."""
    ev = SearchEvaluator(TASKS, memory, fec=fec)
    got = ev.evaluate_tasks([program], np.zeros(1, dtype=np.uint64))[0].tolist()
    ref = [evaluate_task(program, t, memory, seed=0).fitness for t in TASKS]
    return got, ref


def live_code(program: Program, memory: MemoryConfig) -> Program:
    live, _ = native_dce(memory).run(Encoded.of([program]))
    return decode(live, 0)


def test_the_issue_example_71_scalars() -> None:
    """s70 and s6 are one bit of a 64-bit mask: the dead s6 = 0.3 was kept and the
    live s70 = 0.5 dropped."""
    mem = MemoryConfig(71, 3, 1)
    p = parse("def Setup():\n  s70 = 0.5\ndef Predict():\n  s6 = 0.3\n  s1 = s70 + s0\n"
              "def Learn():\n  pass\n")
    for fec in (None, FecConfig()):
        got, ref = evaluate_both(p, mem, fec)
        assert got == ref, (fec, got, ref)
    assert live_code(p, mem) == dce(p) == Program(p.setup, p.predict[1:], ())


# A program that learns with every kind: a random op after dead code (its slot moves),
# element setters, values carried from Setup and from Learn into Predict.  The first
# location of each kind it uses (moved to the top address) is carried across components.
BASE = parse("""def Setup():
  s2 = 0.05
  s3 = 0.7
  m0[0, 0] = 1.0
  m0[1, 1] = 0.5
  v1 = gaussian(0.0, 0.01)
def Predict():
  v2 = dot(m0, v0)
  s1 = dot(v1, v2)
def Learn():
  s3 = s0 - s1
  s3 = s3 * s2
  v3 = s3 * v2
  v1 = v1 + v3
  m1 = outer(v3, v0)
  m0 = m0 + m1
""")
FIXED = {(Kind.SCALAR, 0), (Kind.SCALAR, 1), (Kind.VECTOR, 0)}  # label, prediction, features


def locations(program: Program) -> list[tuple[Kind, int]]:
    """Every (kind, address) the program reads or writes, in order of first use."""
    seen: dict[tuple[Kind, int], None] = {}
    for _, _, ins in program.instructions():
        out = ins.output()
        for loc in ins.inputs() + ([out] if out is not None else []):
            seen.setdefault(loc, None)
    return list(seen)


def remap(program: Program, where: dict[tuple[Kind, int], int]) -> Program:
    """The program with locations moved (random ops keep their slots)."""
    def move(ins: Instr) -> Instr:
        op = OPS[ins.op]
        ins_ = [where.get((k, a), a) for k, a in zip(op.ins, (ins.in1, ins.in2))]
        out = where.get((op.out, ins.out), ins.out) if op.out is not None else 0
        return Instr.make(op, out, *ins_, consts=ins.consts[:len(op.consts)], slot=ins.slot)
    return Program(*(tuple(move(i) for i in body) for _, body in program.components()))


DEAD_WRITE = {Kind.SCALAR: lambda a: Instr.make(op_by_name("SCALAR_CONST_SET"), a,
                                                consts=[0.3]),
              Kind.VECTOR: lambda a: Instr.make(op_by_name("SCALAR_BROADCAST"), a, 0),
              Kind.MATRIX: lambda a: Instr.make(op_by_name("VECTOR_OUTER_PRODUCT"), a, 0, 0)}


def high_program(memory: MemoryConfig, kinds: tuple[Kind, ...]) -> Program:
    """BASE with its locations of `kinds` (but s0, s1, v0) moved to the top of the memory
    (the highest address first), and Predict starting with dead writes to the addresses
    64 below each moved one that the program does not use."""
    where: dict[tuple[Kind, int], int] = {}
    for kind in kinds:
        mine = [loc for loc in locations(BASE) if loc[0] is kind and loc not in FIXED]
        top = memory.size(kind) - 1
        where.update({loc: top - j for j, loc in enumerate(mine)})
    moved = remap(BASE, where)
    used = set(locations(moved))
    dead = [DEAD_WRITE[k](a % 64) for (k, _), a in where.items()
            if a >= 64 and (k, a % 64) not in used and (k, a % 64) not in FIXED]
    assert all(d.output() not in used for d in dead)
    predict = canonical_slots([*dead, *moved.predict], [-1] * len(dead) + [
        slot_at(i, j) for j, i in enumerate(moved.predict)])
    return moved.replace(1, predict)


def memory_of(kinds: tuple[Kind, ...], n: int) -> MemoryConfig:
    sizes = [n if k in kinds else s for k, s in zip(Kind, (5, 5, 2))]
    return MemoryConfig(*sizes)


KIND_SETS = [(Kind.SCALAR,), (Kind.VECTOR,), (Kind.MATRIX,), tuple(Kind)]


@pytest.mark.parametrize("n", [63, 64, 65, 100])
@pytest.mark.parametrize("kinds", KIND_SETS, ids=lambda ks: "+".join(k.word for k in ks))
def test_high_addresses_through_the_search_evaluator(kinds: tuple[Kind, ...], n: int) -> None:
    mem = memory_of(kinds, n)
    p = high_program(mem, kinds)
    assert max(a for k, a in locations(p) if k in kinds) == n - 1
    expected = dce(p)
    assert sum(expected.sizes()) == sum(BASE.sizes()) - 1  # only Setup's s3 = 0.7 is dead
    for fec in (None, FecConfig()):
        fitness, ref = evaluate_both(p, mem, fec)
        assert fitness == ref, (fec, fitness, ref)
        assert all(0 < f < 1 for f in ref)  # the program learns: liveness matters
    got = live_code(p, mem)
    assert got == expected, f"{format_program(p)}\nnative DCE gives\n{format_program(got)}"


def test_the_largest_memory_the_configuration_accepts() -> None:
    n = MAX_ADDRESSES
    mem = MemoryConfig(n, n, n)
    assert mask_words(mem) == n // 64
    p = high_program(mem, tuple(Kind))
    assert live_code(p, mem) == dce(p)
    check_dce([p, BASE, Program()])


@settings(max_examples=150, **SETTINGS)
@given(st.lists(azs.dce_programs(max_addresses=300), min_size=1, max_size=6))
def test_native_dce_matches_the_pass_on_wide_memories(programs: list[Program]) -> None:
    check_dce(programs)


@settings(max_examples=60, **SETTINGS)
@given(azs.dce_programs(max_addresses=200), st.integers(1, 8))
def test_the_native_dce_of_a_larger_memory_gives_the_same_code_and_hashes(
        program: Program, extra_words: int) -> None:
    """More words than the program needs change nothing (hashes included)."""
    fit = MemoryConfig.fitting(program)
    big = MemoryConfig(64 * (mask_words(fit) + extra_words), 1, 0)
    a, ha = native_dce(fit).run(Encoded.of([program]))
    b, hb = native_dce(big).run(Encoded.of([program]))
    assert decode(a, 0) == decode(b, 0) == dce(program)
    assert (ha == hb).all() and (a.progs[:, 6:8] == b.progs[:, 6:8]).all()


def test_mask_words() -> None:
    assert [mask_words(MemoryConfig(n, 1, 0)) for n in (2, 63, 64, 65, 128, 129)] == \
        [1, 1, 1, 2, 2, 3]
    assert mask_words(MemoryConfig(4, 3, 100)) == mask_words(MemoryConfig(4, 100, 1)) == 2


def test_the_op_table_holds_the_op_facts() -> None:
    """@azc_optab, one OpBits byte per op, is read back from the module text."""
    text = dce_module(words=2)
    body = re.search(r"@azc_optab = internal constant \[\d+ x i8\] \[(.*)\]", text)
    assert body is not None
    table = [int(v.split()[1]) & 255 for v in body.group(1).split(", ")]
    assert len(table) == len(OPS)
    for op, byte in zip(OPS, table):
        field = {at: byte >> at & 3 for at in OpBits}
        assert field[OpBits.OUT_KIND] == (NONE_KIND if op.out is None else op.out)
        kinds = [field[OpBits.IN1_KIND], field[OpBits.IN2_KIND]]
        assert kinds == [int(k) for k in op.ins] + [NONE_KIND] * (2 - op.arity)
        assert bool(byte >> OpBits.PARTIAL & 1) == op.partial_write
        assert bool(byte >> OpBits.RANDOM & 1) == op.random
    # the random-op decision reads the table: no op id is compared in the module
    assert not re.search(r"icmp u(ge|gt|lt|le) i64 %opl", text)


# --- memories of at most 64 addresses: hashes and dedup pinned to the one-word code -----------

def pinned_programs(seed: int, n: int, mem: MemoryConfig, max_len: int = 6) -> list[Program]:
    """n programs over every op the memory holds, small addresses likely (so code is live),
    s1 written often, some random ops bound to slots; numpy-seeded (not hypothesis)."""
    rng = np.random.default_rng(seed)
    ops = [o for o in OPS if all(mem.size(k) > 0 for k in o.ins)
           and (o.out is None or mem.size(o.out) > 0)]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(3):
            body = []
            for _ in range(int(rng.integers(0, max_len + 1))):
                op = ops[int(rng.integers(0, len(ops)))]

                def addr(k: Kind) -> int:
                    top = mem.size(k) if rng.random() < 0.3 else min(3, mem.size(k))
                    return int(rng.integers(0, top))
                ins = [addr(k) for k in op.ins]
                o = addr(op.out) if op.out is not None else 0
                if op.out is not None and rng.random() < 0.3:
                    o = 1 if op.out == 0 else o
                consts = [float(rng.integers(0, 2)) for _ in op.consts]
                body.append(Instr.make(op, o, *ins, consts=consts))
            slots = [int(rng.integers(0, 4)) if OPS[i.op].random and rng.random() < 0.3
                     else slot_at(i, j) for j, i in enumerate(body)]
            parts.append(canonical_slots(body, slots))
        out.append(Program(*parts))
    return out


def digest(hashes: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(hashes, dtype=np.uint64).tobytes(),
                           digest_size=16).hexdigest()


# (memory, seed): digest of the 2000 programs' hashes, hashes of programs 0 and 7, live
# random ops and live instructions in all, distinct dce'd programs (computed on the
# one-word code, before multi-word masks)
PINNED = [
    ((4, 3, 1), 1, "edb4d7c50b6594fce9b707e0b89af4cf", (0xf95791fe7ac51a50, 0x211608b733519eec),
     (0x617de48de6b6b801, 0xfd13f9fbc3b16897), 295, 3396, 1164),
    ((20, 20, 20), 2, "478623b1f38a6d1c143d65ea738d5d61",
     (0x2cc9002ceca58664, 0x6a0c17f06f78d5f3), (0xc08f0ccc679e5e78, 0xa10321c06db27cd0), 224,
     2481, 1163),
    ((64, 64, 64), 3, "cb9edea69cad8372a721c996c862a34e",
     (0xb513b3b39583edc9, 0x84f67b5bc5032b18), (0x70dcca770b5a7c56, 0x22ef7c4289c294ab), 193,
     2521, 1276),
]


@pytest.mark.parametrize("sizes,seed,dig,h0,h7,nrand,ninstr,forms", PINNED)
def test_hashes_of_small_memories_are_pinned(sizes, seed, dig, h0, h7, nrand, ninstr,
                                             forms) -> None:
    mem = MemoryConfig(*sizes)
    assert mask_words(mem) == 1
    progs = pinned_programs(seed, 2000, mem)
    live, hashes = native_dce(mem).run(Encoded.of(progs))
    assert tuple(int(x) for x in hashes[0]) == h0
    assert tuple(int(x) for x in hashes[7]) == h7
    assert digest(hashes) == dig
    assert int(live.progs[:, 6].sum()) == nrand and int(live.progs[:, 7].sum()) == ninstr
    assert len({dce(p) for p in progs}) == len({bytes(h) for h in hashes}) == forms


def test_evaluator_dedup_of_the_demo_memory_is_pinned() -> None:
    mem = MemoryConfig(4, 3, 1)
    ev = SearchEvaluator(load_tasks("demo_search")[:4], mem, fec=FecConfig())
    ev.evaluate_tasks(pinned_programs(5, 400, mem), np.arange(400, dtype=np.uint64))
    c = ev.counters
    assert (c.memo_hits, c.fec_hits, c.fec_misses, c.full_task_evals, c.evaluated) == \
        (91, 1292, 308, 308, 78)


# --- the limit -----------------------------------------------------------------------------

def _config(**memory: int) -> dict:
    return {"population_size": 10, "tournament_size": 2,
            "allowed_mutation_types": ["ALTER_PARAM_MUTATION_TYPE"],
            "search_tasks": [{"type": "scalar_linear_regression", "features_size": 4,
                              "num_train_examples": 10, "num_valid_examples": 10,
                              "num_tasks": 1, "eval_type": "RMS_ERROR"}], **memory}


@pytest.mark.parametrize("key", ["scalars", "vectors", "matrices", "max_vector_addresses"])
def test_the_configuration_refuses_more_addresses_than_a_record_holds(key: str) -> None:
    ok = parse_config(_config(**{key: MAX_ADDRESSES}))
    assert max(ok.memory.scalars, ok.memory.vectors, ok.memory.matrices) == MAX_ADDRESSES
    canonical = {"max_vector_addresses": "vectors"}.get(key, key)
    with pytest.raises(ConfigError, match=rf"{canonical}: must be at most {MAX_ADDRESSES}"):
        parse_config(_config(**{key: MAX_ADDRESSES + 1}))
    with pytest.raises(VerifyError, match=f"at most {MAX_ADDRESSES} {canonical}"):
        MemoryConfig(**{"scalars": 2, "vectors": 1, "matrices": 0,
                        canonical: MAX_ADDRESSES + 1})


def test_max_addresses_is_what_the_record_holds() -> None:
    top = MAX_ADDRESSES - 1
    ins = Instr.make(op_by_name("SCALAR_SUM"), top, top, top)
    assert (ins.out, ins.in1, ins.in2) == (top, top, top)
    with pytest.raises(struct.error):
        Instr.make(op_by_name("SCALAR_SUM"), MAX_ADDRESSES, 0, 0)
