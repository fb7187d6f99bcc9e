"""The native FEC table against the reference FecCache, the batched evaluator against
child-by-child evaluation (the original's order), the structural memo and the collector."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from azc.backend.fec_table import HIT, MISS, MISS_KNOWN, NativeFecTable
from azc.ir import MemoryConfig
from azc.search.evaluator import SearchEvaluator
from azc.search.fec import FecCache, FecConfig
from azc.search.generator import Generator, InitialPopulation
from azc.search.mutator import MutationType, Mutator
from azc.search.random import SearchRandom
from azc.search.space import SearchSpace
from azc.tasks import load_tasks


def _key(k: int) -> int:
    return (k * 0x9E3779B97F4A7C15 + 12345) % (1 << 64)  # spread over the table


def _reference_batch(ref: FecCache, fps: list[int], known: list[float]):
    """The original's order: per fingerprint a lookup, and on a miss an insert."""
    status, entries = [], []
    for fp, k in zip(fps, known):
        present = ref._entries.get(fp)
        if present is not None:
            ref.lookup(fp)
            status.append(HIT)
            entries.append(present)
        else:
            ref.lookup(fp)  # counts the miss
            entries.append(ref.insert(fp, None if math.isnan(k) else k))
            status.append(MISS if math.isnan(k) else MISS_KNOWN)
    return status, entries


def _run_both(size: int, forget: int, batches: list[list[tuple[int, bool]]]) -> None:
    ref = FecCache(FecConfig(cache_size=size, forget_every=forget))
    nat = NativeFecTable(size, forget)
    value = 0.0
    for batch in batches:
        fps = [_key(k) for k, _ in batch]
        known = [0.25 + k / 64 if kn else math.nan for k, kn in batch]
        want_status, entries = _reference_batch(ref, fps, known)
        status, slots = nat.lookup(np.array(fps, dtype=np.uint64), np.array(known))
        assert status.tolist() == want_status
        for p, s in enumerate(want_status):  # the caller evaluates what missed
            if s == MISS:
                value += 1.0
                entries[p][0] = value
                nat.fill(slots[p:p + 1], np.array([value]))
        assert nat.values(slots).tolist() == [e[0] for e in entries]
        assert nat.items() == [(k, v[0], v[1]) for k, v in ref._entries.items()]
        assert len(nat) == len(ref)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 12), st.integers(0, 6),
       st.lists(st.lists(st.tuples(st.integers(0, 20), st.booleans()), max_size=40),
                max_size=8))
def test_native_table_equals_the_reference_cache(size, forget, batches) -> None:
    _run_both(size, forget, batches)


def test_native_table_on_long_streams_with_evictions_and_table_wraparound() -> None:
    rng = np.random.default_rng(5)
    for size, forget in ((100, 0), (100, 3), (1000, 100), (7, 1)):
        batches = [[(int(k), bool(b)) for k, b in zip(rng.integers(0, 3 * size, 300),
                                                      rng.random(300) < 0.2)]
                   for _ in range(20)]
        _run_both(size, forget, batches)


def test_native_table_grows_for_a_batch_larger_than_its_spare_slots() -> None:
    nat = NativeFecTable(10, 0)
    fps = np.array([_key(k) for k in range(5000)], dtype=np.uint64)
    status, _ = nat.lookup(fps)
    assert (status == MISS).all() and len(nat) == 10
    assert [k for k, _, _ in nat.items()] == fps[-10:].tolist()


def test_native_table_pickles_and_copies_and_continues_identically() -> None:
    nat = NativeFecTable(50, 4)
    rng = np.random.default_rng(1)
    status, slots = nat.lookup(np.array([_key(int(k)) for k in rng.integers(0, 80, 400)],
                                        dtype=np.uint64))
    nat.fill(slots[status == MISS], np.arange(np.count_nonzero(status == MISS)))
    twin, clone = pickle.loads(pickle.dumps(nat)), copy.deepcopy(nat)
    more = np.array([_key(int(k)) for k in rng.integers(0, 80, 400)], dtype=np.uint64)
    results = []
    for table in (nat, twin, clone):
        status, slots = table.lookup(more)
        table.fill(slots[status == MISS], -np.arange(np.count_nonzero(status == MISS)))
        results.append((status.tolist(), table.values(slots).tolist(), table.items()))
    assert results[0] == results[1] == results[2]


DEMO_MEMORY = MemoryConfig(4, 3, 1)


def _demo_children(seed: int, parents: int, n: int) -> list:
    """n children of a few random parents in the demo's space (F=4), mutated once each."""
    demo_ops = (56, 27, 2, 3, 18, 23)  # the demo's ops
    sp = SearchSpace(DEMO_MEMORY, 4, (demo_ops, demo_ops, demo_ops), (3, 2, 3))
    mut = Mutator(sp, [MutationType.ALTER_PARAM, MutationType.RANDOMIZE_INSTRUCTION], 1.0)
    rnd = SearchRandom(seed)
    ps = [Generator(sp, InitialPopulation.RANDOM_ALGORITHM).program(rnd) for _ in range(parents)]
    return [mut.mutate(ps[i % parents], rnd) for i in range(n)]


def _in_batches(ev: SearchEvaluator, kids: list, size: int) -> np.ndarray:
    seeds = np.arange(len(kids), dtype=np.uint64)
    return np.concatenate([ev.evaluate_tasks(kids[i:i + size], seeds[i:i + size])
                           for i in range(0, len(kids), size)])


def test_batched_evaluation_equals_child_by_child_evaluation() -> None:
    """Exact in-batch FEC semantics: a batch settles its children as the original does one
    by one (small cache and forget_every so that evictions and forgetting happen)."""
    tasks = load_tasks("demo_search")[:3]
    kids = _demo_children(11, 4, 600)
    fec = FecConfig(cache_size=40, forget_every=5)
    batched = SearchEvaluator(tasks, DEMO_MEMORY, fec=fec)
    single = SearchEvaluator(tasks, DEMO_MEMORY, fec=fec)
    assert _in_batches(batched, kids, 50).tolist() == _in_batches(single, kids, 1).tolist()
    a, b = batched.counters, single.counters
    assert (a.fec_hits, a.fec_misses, a.train_steps) == (b.fec_hits, b.fec_misses, b.train_steps)
    assert a.fec_hits > 0 and a.fec_misses > 0
    assert batched.fec_table is not None and single.fec_table is not None
    assert batched.fec_table.items() == single.fec_table.items()


def test_structural_memo_drops_its_oldest_quarter_and_reuses_slots() -> None:
    from azc.search.memo import StructuralMemo
    memo = StructuralMemo(8, 2)
    first = memo.add([b"k%d" % i for i in range(8)])
    assert sorted(first.tolist()) == list(range(8)) and len(memo) == 8
    memo.fitness[first] = 1.0
    again = memo.add([b"new"])               # full: the 2 oldest go, one slot is reused
    assert memo.get(b"k0") is None and memo.get(b"k1") is None and memo.get(b"k2") is not None
    assert again.tolist()[0] in first[:2].tolist() and len(memo) == 7
    assert np.isnan(memo.fitness[again]).all()  # a reused slot starts empty


def test_memo_size_never_changes_a_result() -> None:
    tasks = load_tasks("demo_search")[:3]
    kids = _demo_children(12, 3, 500)
    for fec in (FecConfig(), None):
        small = SearchEvaluator(tasks, DEMO_MEMORY, fec=fec, memo_size=8)
        big = SearchEvaluator(tasks, DEMO_MEMORY, fec=fec)
        assert _in_batches(small, kids, 50).tolist() == _in_batches(big, kids, 50).tolist()
        assert small.counters.memo_hits < big.counters.memo_hits


def test_the_search_paces_the_collector(monkeypatch) -> None:
    import gc

    from azc.search import collector
    calls = []
    monkeypatch.setattr(collector, "collect_all", lambda: calls.append("full"))
    monkeypatch.setattr(collector, "FULL_EVERY_SECONDS", 0.0)
    assert gc.isenabled()
    collector.tick(collector.CHECK_EVERY)     # outside the context: Python's defaults
    assert calls == []
    with collector.paused_collector():
        assert not gc.isenabled()
        collector.tick(collector.CHECK_EVERY - 1)
        assert calls == []
        collector.tick(1)
        assert calls == ["full"]
    assert gc.isenabled()


def test_compiled_task_loops_never_change_a_search() -> None:
    """The large configuration's search with every evaluation's loops compiled (paired
    where the code allows) and with none: the same children, fitness and train steps."""
    from azc.backend.components import ComponentKernels
    from azc.search.config import load_config
    from azc.search.experiment import Run

    def search(kernels: bool) -> tuple:
        run = Run(load_config("baseline_gaussian"), 3)
        run.start_search()
        evo, ev = run.evo, run.evaluator
        assert evo is not None and ev is not None
        ev.use_kernels = kernels
        if kernels:
            ev.kernels = ComponentKernels(ev.memory, ev.features)
            ev.kernels.cost.pays = lambda *args: True  # type: ignore[method-assign]
        evo.initialize()
        while evo.individuals < 1000:
            evo.step()
        if kernels:
            assert ev.counters.kernel_evals > 20 and ev.counters.interp_evals == 0
            fields = [field for _, _, field in ev.kernels.kernels.values()]
            # paired loops (and single ones) in use
            assert ev.parts[0, ev.n_tasks].paired and 9 in fields
            ev.kernels.close()
        pop = evo.population
        assert pop is not None
        return list(pop.programs), pop.fitness.tolist(), ev.counters.train_steps
    assert search(True) == search(False)
