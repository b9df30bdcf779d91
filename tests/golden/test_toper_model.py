"""The toper's model `golden.toper` (docs/ARITHMETIC.md section 3.3): `ToperModel` and its vectorized form
`BatchToper`."""

import numpy as np
from hypothesis import given, settings, strategies as st

from dpfm.golden.contract.formats import Fmt
from dpfm.golden.dither import flags
from dpfm.golden.fixedpoint import SatCounter
from dpfm.golden.toper import EMPTY_ID, BatchToper, ToperModel, ranks_above

T = Fmt(16, 12)


def run(k, candidates, t_fmt=T, sat=None):
    tp = ToperModel(k, t_fmt, sat)
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
    assert ToperModel(4, T).slots() == [None] * 4


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


MASKS = st.lists(st.sampled_from([0, 0xFFFFFFFF, 0x80008000, 0x12345678, 0x9E3779B9]) | st.integers(0, 2**32 - 1),
                 min_size=4, max_size=4)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6),
       st.lists(st.lists(st.tuples(st.integers(-150, 150), st.integers(0, 7)), min_size=3, max_size=3),
                max_size=25), MASKS)
def test_batch_toper_equals_reference(k, steps, masks):
    """Rows of BatchToper are independent Topers: duplicates, zeros, merges, saturation and each row's dither
    flags (section 3d, one mask per row; ids below 2 direct) included."""
    t = Fmt(9, 4)  # range +-255, so merges of +-150 saturate
    ref_sat, batch_sat = SatCounter(), SatCounter()
    refs = [ToperModel(k, t, ref_sat) for _ in range(3)]
    bt = BatchToper(3, k, t, batch_sat)
    for step in steps:
        hs = [int(flags(i, masks[r], direct=i < 2)) for r, (_, i) in enumerate(step)]
        for r, (v, i) in enumerate(step):
            refs[r].insert(v, i, hs[r])
        bt.insert(np.array([v for v, _ in step]), np.array([i for _, i in step]), np.array(hs))
    for r, ref in enumerate(refs):
        got = [None if i == EMPTY_ID else (int(v), int(i), int(h))
               for v, i, h in zip(bt.values[r], bt.ids[r], bt.flags[r])]
        assert got == ref.entries()
    assert bt.evictions == sum(ref.evictions for ref in refs)
    assert batch_sat.count == ref_sat.count


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), st.booleans(), st.data(), MASKS)
def test_batch_toper_insert_all_equals_reference(k, distinct, data, masks):
    """Both paths of insert_all (the sort shortcut for distinct ids, the column loop otherwise), with each
    row's dither flags."""
    rows, n = 4, data.draw(st.integers(1, 12))
    values = data.draw(st.lists(st.lists(st.integers(-40, 40), min_size=n, max_size=n), min_size=rows,
                                max_size=rows))
    if distinct:
        ids = [data.draw(st.permutations(range(n))) for _ in range(rows)]
    else:
        ids = data.draw(st.lists(st.lists(st.integers(0, 4), min_size=n, max_size=n), min_size=rows,
                                 max_size=rows))
    fl = flags(np.array(ids), np.array(masks)[:, None], direct=np.array(ids) < 2)
    bt = BatchToper(rows, k, T)
    bt.insert_all(np.array(values), np.array(ids), fl)
    refs = []
    for v, i, h in zip(values, ids, fl.tolist()):
        ref = ToperModel(k, T)
        for cand in zip(v, i, h):
            ref.insert(*cand)
        refs.append(ref)
    for r, ref in enumerate(refs):
        got = [None if i == EMPTY_ID else (int(v), int(i), int(h))
               for v, i, h in zip(bt.values[r], bt.ids[r], bt.flags[r])]
        assert got == ref.entries()
    assert bt.evictions == sum(ref.evictions for ref in refs)


def test_a_demoted_entry_ranks_below_every_other_and_keeps_its_flag_on_a_merge():
    """Section 3d: (9, 1) is demoted, so (2, 4) and (1, 5) outrank it; after merging more into id 1 the cell
    keeps its flag and its position."""
    tp = ToperModel(2, T)
    tp.insert(9, 1, 1)
    tp.insert(2, 4, 0)
    assert tp.entries() == [(2, 4, 0), (9, 1, 1)]
    tp.insert(5, 1, 1)
    assert tp.entries() == [(2, 4, 0), (14, 1, 1)]
    tp.insert(1, 5, 0)
    assert tp.entries() == [(2, 4, 0), (1, 5, 0)] and tp.evictions == 1
    assert tp.slots() == [(2, 4), (1, 5)]


def test_two_demoted_entries_rank_by_magnitude_then_id():
    tp = ToperModel(3, T)
    for v, i in ((3, 7), (-5, 2), (5, 1)):
        tp.insert(v, i, 1)
    assert tp.slots() == [(5, 1), (-5, 2), (3, 7)]


def test_batch_toper_insert_all_after_earlier_inserts_continues_the_same_topers():
    bt = BatchToper(1, 3, T)
    bt.insert(np.array([5]), np.array([1]))
    bt.insert_all(np.array([[7, 2, 6]]), np.array([[2, 3, 1]]))   # id 1 must merge, not be sorted in
    assert bt.values[0].tolist() == [7, 11, 2] and bt.ids[0].tolist() == [2, 1, 3]
