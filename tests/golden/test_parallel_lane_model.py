"""The parallel lane's model `golden.parallel_lane` (docs/ARITHMETIC.md section 3b): S source topers, then the
merge tree."""

import pytest
from hypothesis import given, settings, strategies as st

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import Fmt
from dpfm.golden.fixedpoint import SatCounter
from dpfm.golden.parallel_lane import ParallelToperModel
from dpfm.golden.toper import ToperModel
from tests.golden.test_toper_model import T, top_k_exact


def test_parallel_toper_merges_an_id_that_two_sources_carry():
    """K = 1: sources 0 and 1 each keep one entry; the merge node adds the same id's values."""
    pt = ParallelToperModel(1, T)
    pt.insert(0, 5, 3)
    pt.insert(1, 4, 3)
    assert pt.slots() == [(9, 3)]
    assert pt.evictions == 0


def test_parallel_toper_prunes_per_source_unlike_the_serial_toper():
    """Each source toper prunes on its own, which is the approximation section 3b trades for speed. Step 0
    emits 10@1 (direct) and 15@1 (slot 0), step 1 emits 20@2 (direct). Serially, 15@1 merges into 10@1
    before 20@2 arrives; in parallel, T_0 evicts 10@1 for 20@2 and the merge node then drops 15@1."""
    serial, parallel = ToperModel(1, T), ParallelToperModel(1, T)
    for source, v, i in [(0, 10, 1), (1, 15, 1), (0, 20, 2)]:
        serial.insert(v, i)
        parallel.insert(source, v, i)
    assert serial.slots() == [(25, 1)] and serial.evictions == 1
    assert parallel.slots() == [(20, 2)] and parallel.evictions == 2


def test_parallel_merge_node_feeds_left_before_right():
    """Equal magnitudes, different ids: the order key decides, so check a merge that saturates instead:
    left 200 then right 100 of one id clamps at the t maximum (255 in Fmt(9, 4)) and counts once."""
    t, sat = Fmt(9, 4), SatCounter()
    pt = ParallelToperModel(1, t, sat)
    pt.insert(0, 200, 4)
    pt.insert(1, 100, 4)
    assert pt.slots() == [(255, 4)]
    assert sat.count == 1


def test_parallel_toper_runs_its_tree_once_per_neuron():
    pt = ParallelToperModel(2, T)
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
    pt = ParallelToperModel(k, T)
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
    serial, one = ToperModel(k, t, SatCounter()), ParallelToperModel(k, t, SatCounter(), sources=1)
    for c, v, i in candidates:
        serial.insert(v, i)
        one.insert(min(c, k), v, i)
    assert one.slots() == serial.slots()
    assert one.evictions == serial.evictions and one.sat.count == serial.sat.count


def test_parallel_toper_sends_candidate_c_to_source_c_mod_s():
    pt = ParallelToperModel(4, T, sources=2)
    for c, v, i in [(0, 1, 10), (1, 2, 11), (2, 3, 12), (3, 4, 13), (4, 5, 14)]:
        pt.insert(c, v, i)
    assert [t.slots() for t in pt.sources] == [[(5, 14), (3, 12), (1, 10), None], [(4, 13), (2, 11), None, None]]


@pytest.mark.parametrize("sources", [0, 6])
def test_parallel_toper_rejects_a_source_count_that_does_not_fit(sources):
    with pytest.raises(DpfmError, match="1 .. 5 sources"):
        ParallelToperModel(4, T, sources=sources)
