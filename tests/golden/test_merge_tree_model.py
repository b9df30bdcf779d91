"""The merge tree's model `golden.merge_tree` (docs/ARITHMETIC.md section 3b)."""

import pytest

from dpfm.golden.contract.formats import Fmt
from dpfm.golden.merge_tree import MergeTreeModel, merge_tree_order

T = Fmt(16, 12)


@pytest.mark.parametrize("n, shape", [
    (2, (0, 1)),
    (3, ((0, 1), 2)),                                        # the left half is the larger
    (9, ((((0, 1), 2), (3, 4)), ((5, 6), (7, 8)))),          # K = 8
])
def test_merge_tree_shape(n, shape):
    assert merge_tree_order(n) == shape


def test_merge_feeds_each_node_left_then_right_and_counts_its_evictions():
    """Three read-outs, K = 2: the root merges node(0, 1) with leaf 2. In node(0, 1) the equal magnitudes rank
    by the lower id and (3, 2) is dropped; in the root id 1 merges to 0 and (4, 7) then pushes it out."""
    tree = MergeTreeModel(2, T)
    readouts = [[(5, 1, 0), (3, 2, 0)], [(5, 0, 0), None], [(-5, 1, 0), (4, 7, 0)]]
    assert tree.node(readouts[0], readouts[1]) == [(5, 0, 0), (5, 1, 0)]
    assert tree.evictions == 1
    assert tree.merge(readouts) == [(5, 0, 0), (4, 7, 0)]
    assert tree.evictions == 1 + 1 + 1


def test_entries_keep_their_dither_flag_through_the_tree():
    """Section 3d: a node ranks an entry by the flag it was drawn with. (9, 1) is demoted, so the smaller
    (2, 4) outranks it; (9, 1) survives only as the second of K = 2, and keeps its flag for the root, where
    (1, 5) pushes it out (and (1, 6) then loses to (1, 5) by id)."""
    tree = MergeTreeModel(2, T)
    readouts = [[(9, 1, 1), None], [(2, 4, 0), None], [(1, 5, 0), (1, 6, 0)]]
    assert tree.node(readouts[0], readouts[1]) == [(2, 4, 0), (9, 1, 1)]
    assert tree.merge(readouts) == [(2, 4, 0), (1, 5, 0)]
