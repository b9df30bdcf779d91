"""The toper, MAC-candidate and activation-slot models of docs/ARITHMETIC.md section 3."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dpfm.golden.contract.formats import Fmt, HwFormats
from dpfm.golden.fixedpoint import SatCounter, activation_luts, lut_index
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.toper import (EMPTY_ID, BatchToper, ParallelToper, Toper, activation_slots, indexed_mac_candidates,
                               mac_candidates, merge_tree_order, ranks_above)
from dpfm.golden.contract.organisation import parallel_sources

T = Fmt(16, 12)
FMTS = HwFormats()


def run(k, candidates, t_fmt=T, sat=None):
    tp = Toper(k, t_fmt, sat)
    for v, i in candidates:
        tp.insert(v, i)
    return tp


def test_ranks_above_is_magnitude_then_lower_id():
    assert ranks_above(-5, 9, 4, 0)
    assert not ranks_above(4, 0, -5, 9)
    assert ranks_above(-3, 1, 3, 2)
    assert not ranks_above(3, 2, -3, 1)
    assert not ranks_above(3, 2, 3, 2)


def test_empty_toper_reads_all_cells_invalid():
    assert Toper(4, T).slots() == [None] * 4


def test_k_larger_than_candidate_count_leaves_tail_empty():
    tp = run(5, [(3, 7), (-9, 2)])
    assert tp.slots() == [(-9, 2), (3, 7), None, None, None]
    assert tp.evictions == 0


def test_tie_in_magnitude_is_broken_by_lower_id():
    assert run(2, [(4, 8), (-4, 3)]).slots() == [(-4, 3), (4, 8)]
    assert run(2, [(-4, 3), (4, 8)]).slots() == [(-4, 3), (4, 8)]


def test_duplicate_id_merges_in_place_even_if_it_then_ranks_lower():
    tp = run(3, [(10, 1), (6, 2), (-9, 1)])
    # 10 + (-9) = 1 stays in c_0 although it now ranks below (6, 2)
    assert tp.slots() == [(1, 1), (6, 2), None]


def test_candidate_that_outranks_an_earlier_cell_can_leave_its_id_twice():
    # (6, 2) swaps into c_0 before reaching c_1 = (3, 2); the displaced chain pushes (3, 2) down.
    tp = run(3, [(5, 1), (3, 2), (6, 2)])
    assert tp.slots() == [(6, 2), (5, 1), (3, 2)]


def test_evicted_partial_sum_is_lost_unlike_exact_top_k():
    """The approximation the hardware makes: id 2's first part is evicted before its second part arrives,
    so the toper keeps id 1 (5) although id 2's total (7) is larger."""
    tp = run(1, [(5, 1), (4, 2), (3, 2)])
    assert tp.slots() == [(5, 1)]
    assert tp.evictions == 2


def test_merge_saturates_in_t_and_counts():
    sat = SatCounter()
    t = Fmt(8, 4)  # range +-127
    tp = run(2, [(100, 5), (100, 5), (-120, 6), (-120, 6)], t, sat)
    assert tp.slots() == [(127, 5), (-127, 6)]
    assert sat.count == 2


def test_eviction_count_and_survivors_when_full():
    tp = run(2, [(1, 0), (2, 1), (3, 2), (4, 3)])
    assert tp.slots() == [(4, 3), (3, 2)]
    assert tp.evictions == 2


def test_zero_candidate_is_ignored():
    tp = run(2, [(0, 4), (5, 1), (0, 0)])
    assert tp.slots() == [(5, 1), None]
    assert tp.evictions == 0


def test_clear_empties_cells_but_keeps_eviction_count():
    tp = run(1, [(1, 0), (2, 1)])
    tp.clear()
    assert tp.slots() == [None]
    assert tp.evictions == 1


def top_k_exact(cands, k):
    """Independent reference: sort by the order key and keep K."""
    return sorted(cands, key=lambda e: (-abs(e[0]), e[1]))[:k]


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 9), st.lists(st.integers(-2000, 2000).filter(bool), max_size=30),
       st.randoms(use_true_random=False))
def test_distinct_ids_give_exact_top_k(k, values, rnd):
    ids = list(range(len(values)))
    rnd.shuffle(ids)
    cands = list(zip(values, ids))
    tp = run(k, cands)
    kept = top_k_exact(cands, k)
    assert tp.slots() == kept + [None] * (k - len(kept))
    assert tp.evictions == len(cands) - len(kept)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6),
       st.lists(st.lists(st.tuples(st.integers(-150, 150), st.integers(0, 7)), min_size=3, max_size=3),
                max_size=25))
def test_batch_toper_equals_reference(k, steps):
    """Rows of BatchToper are independent Topers: duplicates, zeros, merges and saturation included."""
    t = Fmt(9, 4)  # range +-255, so merges of +-150 saturate
    ref_sat, batch_sat = SatCounter(), SatCounter()
    refs = [Toper(k, t, ref_sat) for _ in range(3)]
    bt = BatchToper(3, k, t, batch_sat)
    for step in steps:
        for r, (v, i) in enumerate(step):
            refs[r].insert(v, i)
        bt.insert(np.array([v for v, _ in step]), np.array([i for _, i in step]))
    for r, ref in enumerate(refs):
        got = [None if i == EMPTY_ID else (int(v), int(i)) for v, i in zip(bt.values[r], bt.ids[r])]
        assert got == ref.slots()
    assert bt.evictions == sum(ref.evictions for ref in refs)
    assert batch_sat.count == ref_sat.count


def test_mac_candidates_direct_first_then_slots_in_order_without_zeros():
    one = 1 << 12
    x_slots = [(one // 2, 7), None, (-one, 3), (1, 9)]  # w * 1 LSB rounds to 0 for |w| < 0.5
    cands = mac_candidates(w_raw=one // 4, wid=11, x_raw=3 * one // 2, x_slots=x_slots, fmts=FMTS)
    assert cands == [(3 * one // 2, 11), (one // 8, 7), (-one // 4, 3)]


def test_mac_candidates_round_half_up_and_saturate():
    sat = SatCounter()
    # w = 0.5 (2048), v = 1 LSB -> product 2048 / 2**24 = 0.5 LSB of t -> rounds up to 1
    assert mac_candidates(2048, 0, 0, [(1, 5)], FMTS, sat) == [(1, 5)]
    # w = 0.5, v = -1 LSB -> -0.5 LSB rounds half up to 0 -> dropped
    assert mac_candidates(2048, 0, 0, [(-1, 5)], FMTS, sat) == []
    big = FMTS.w.max_raw
    assert mac_candidates(big, 0, 0, [(FMTS.t.max_raw, 5)], FMTS, sat) == [(FMTS.t.max_raw, 5)]
    assert sat.count == 1


def test_mac_candidate_direct_term_converts_x_to_t_with_rounding():
    fmts = HwFormats(t=Fmt(16, 10), g=Fmt(32, 22))
    # x = 3 LSB (frac 12) -> 0.75 LSB of t -> rounds to 1; x = 2 LSB -> 0.5 LSB -> rounds up to 1
    assert mac_candidates(0, 4, 3, [], fmts) == [(1, 4)]
    assert mac_candidates(0, 4, 2, [], fmts) == [(1, 4)]
    assert mac_candidates(0, 4, -2, [], fmts) == []


def test_activation_slots_identity_passes_through():
    slots = [(5, 1), None, (0, 3)]
    assert activation_slots(-77, slots, "identity", FMTS) == (-77, slots)


@pytest.mark.parametrize("kind", ["sigmoid", "tanh", "relu"])
def test_activation_slots_scale_by_lut_slope(kind):
    F, D = activation_luts(kind, FMTS)
    z = 1 << 11  # 0.5
    d = int(D[lut_index(z, FMTS)])
    slots = [(4096, 2), None, (1, 6), (-300, 4)]
    a, out = activation_slots(z, slots, kind, FMTS)
    assert a == int(F[lut_index(z, FMTS)])

    def r(p):
        return (p + (1 << 11)) >> 12

    expect = [(r(d * 4096), 2), None, (r(d * 1), 6) if r(d) else None, (r(d * -300), 4)]
    assert out == expect


def test_activation_slots_drop_values_that_round_to_zero():
    # relu below 0: slope 0, every slot becomes invalid
    a, out = activation_slots(-(1 << 12), [(4096, 2), (-7, 3)], "relu", FMTS)
    assert a == 0 and out == [None, None]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), st.booleans(), st.data())
def test_batch_toper_insert_all_equals_reference(k, distinct, data):
    """Both paths of insert_all (the sort shortcut for distinct ids, the column loop otherwise)."""
    rows, n = 4, data.draw(st.integers(1, 12))
    values = data.draw(st.lists(st.lists(st.integers(-40, 40), min_size=n, max_size=n), min_size=rows,
                                max_size=rows))
    if distinct:
        ids = [data.draw(st.permutations(range(n))) for _ in range(rows)]
    else:
        ids = data.draw(st.lists(st.lists(st.integers(0, 4), min_size=n, max_size=n), min_size=rows,
                                 max_size=rows))
    bt = BatchToper(rows, k, T)
    bt.insert_all(np.array(values), np.array(ids))
    refs = [run(k, list(zip(v, i))) for v, i in zip(values, ids)]
    for r, ref in enumerate(refs):
        got = [None if i == EMPTY_ID else (int(v), int(i)) for v, i in zip(bt.values[r], bt.ids[r])]
        assert got == ref.slots()
    assert bt.evictions == sum(ref.evictions for ref in refs)


def test_batch_toper_insert_all_after_earlier_inserts_continues_the_same_topers():
    bt = BatchToper(1, 3, T)
    bt.insert(np.array([5]), np.array([1]))
    bt.insert_all(np.array([[7, 2, 6]]), np.array([[2, 3, 1]]))   # id 1 must merge, not be sorted in
    assert bt.values[0].tolist() == [7, 11, 2] and bt.ids[0].tolist() == [2, 1, 3]


# --- the parallel lane's toper (section 3b) ----------------------------------------------------------------

@pytest.mark.parametrize("n, shape", [
    (2, (0, 1)),
    (3, ((0, 1), 2)),                                        # the left half is the larger
    (9, ((((0, 1), 2), (3, 4)), ((5, 6), (7, 8)))),          # K = 8
])
def test_merge_tree_shape(n, shape):
    assert merge_tree_order(n) == shape


def test_indexed_mac_candidates_tag_direct_0_and_slot_j_as_j_plus_1():
    slots = [(1 << 12, 7), None, (-(1 << 12), 9)]
    got = indexed_mac_candidates(1 << 12, 3, 2 << 12, slots, FMTS)
    assert got == [(0, 2 << 12, 3), (1, 1 << 12, 7), (3, -(1 << 12), 9)]
    assert [(v, i) for _, v, i in got] == mac_candidates(1 << 12, 3, 2 << 12, slots, FMTS)


def test_parallel_toper_merges_an_id_that_two_sources_carry():
    """K = 1: sources 0 and 1 each keep one entry; the merge node adds the same id's values."""
    pt = ParallelToper(1, T)
    pt.insert(0, 5, 3)
    pt.insert(1, 4, 3)
    assert pt.slots() == [(9, 3)]
    assert pt.evictions == 0


def test_parallel_toper_prunes_per_source_unlike_the_serial_toper():
    """Each source toper prunes on its own, which is the approximation section 3b trades for speed. Step 0
    emits 10@1 (direct) and 15@1 (slot 0), step 1 emits 20@2 (direct). Serially, 15@1 merges into 10@1
    before 20@2 arrives; in parallel, T_0 evicts 10@1 for 20@2 and the merge node then drops 15@1."""
    serial, parallel = Toper(1, T), ParallelToper(1, T)
    for source, v, i in [(0, 10, 1), (1, 15, 1), (0, 20, 2)]:
        serial.insert(v, i)
        parallel.insert(source, v, i)
    assert serial.slots() == [(25, 1)] and serial.evictions == 1
    assert parallel.slots() == [(20, 2)] and parallel.evictions == 2


def test_parallel_merge_node_feeds_left_before_right():
    """Equal magnitudes, different ids: the order key decides, so check a merge that saturates instead:
    left 200 then right 100 of one id clamps at the t maximum (255 in Fmt(9, 4)) and counts once."""
    t, sat = Fmt(9, 4), SatCounter()
    pt = ParallelToper(1, t, sat)
    pt.insert(0, 200, 4)
    pt.insert(1, 100, 4)
    assert pt.slots() == [(255, 4)]
    assert sat.count == 1


def test_parallel_toper_runs_its_tree_once_per_neuron():
    pt = ParallelToper(2, T)
    for s, v, i in [(0, 3, 1), (1, 4, 2), (2, 5, 3), (2, 1, 4), (2, 2, 5)]:
        pt.insert(s, v, i)
    first, evicted = pt.slots(), pt.evictions
    assert pt.slots() == first and pt.evictions == evicted
    with pytest.raises(ValueError, match="clear"):
        pt.insert(0, 1, 9)
    pt.clear()
    assert pt.slots() == [None, None]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 8), st.lists(st.integers(-2000, 2000).filter(bool), max_size=30), st.data())
def test_parallel_toper_with_distinct_ids_gives_exact_top_k(k, values, data):
    """Distinct ids never merge, so every toper keeps its best K sorted and the tree returns the top K of
    all candidates, the same as the serial toper."""
    ids = data.draw(st.permutations(range(len(values))))
    sources = data.draw(st.lists(st.integers(0, k), min_size=len(values), max_size=len(values)))
    pt = ParallelToper(k, T)
    for s, v, i in zip(sources, values, ids):
        pt.insert(s, v, i)
    kept = top_k_exact(list(zip(values, ids)), k)
    assert pt.slots() == kept + [None] * (k - len(kept))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), st.lists(st.tuples(st.integers(0, 6), st.integers(-300, 300), st.integers(0, 5)),
                                   max_size=30))
def test_parallel_toper_with_one_source_is_the_serial_toper(k, candidates):
    """S = 1: every candidate goes into T_0 in emission order and there is no tree, which is section 3.3
    itself, merges, saturation and evictions included."""
    t = Fmt(9, 4)
    serial, one = Toper(k, t, SatCounter()), ParallelToper(k, t, SatCounter(), sources=1)
    for c, v, i in candidates:
        serial.insert(v, i)
        one.insert(min(c, k), v, i)
    assert one.slots() == serial.slots()
    assert one.evictions == serial.evictions and one.sat.count == serial.sat.count


def test_parallel_toper_sends_candidate_c_to_source_c_mod_s():
    pt = ParallelToper(4, T, sources=2)
    for c, v, i in [(0, 1, 10), (1, 2, 11), (2, 3, 12), (3, 4, 13), (4, 5, 14)]:
        pt.insert(c, v, i)
    assert [t.slots() for t in pt.sources] == [[(5, 14), (3, 12), (1, 10), None], [(4, 13), (2, 11), None, None]]


@pytest.mark.parametrize("mode, k, sources", [("exact", 4, None), ("toper", 4, None), ("toper-parallel", 4, 5),
                                              ("toper-parallel-3", 4, 3), ("toper-parallel-5", 4, 5)])
def test_parallel_sources_of_each_tangent_mode(mode, k, sources):
    assert parallel_sources(mode, k) == sources


@pytest.mark.parametrize("mode, message", [
    ("toper-parallel-0", "unknown tangent mode"), ("toper-parallel-x", "unknown tangent mode"),
    ("toper-parallel-03", "unknown tangent mode"), ("parallel", "unknown tangent mode"),
    ("toper-parallel-6", "only K \\+ 1 = 5 candidates"),
])
def test_bad_tangent_modes_are_rejected(mode, message):
    with pytest.raises(DpfmError, match=message):
        parallel_sources(mode, 4)


@pytest.mark.parametrize("sources", [0, 6])
def test_parallel_toper_rejects_a_source_count_that_does_not_fit(sources):
    with pytest.raises(DpfmError, match="1 .. 5 sources"):
        ParallelToper(4, T, sources=sources)
