# amaranth: UnusedElaboratable=no
"""The parallel MAC lane RTL equals the golden parallel neuron, over K and formats, at its documented
cycle cost (sim/tb_parallel_lane.py)."""

import pytest
from golden.errors import DpfmError
from golden.fixedpoint import HwFormats
from hw.merge_tree import MergeTree, SlotQueue
from hw.parallel_lane import ParallelMacLane
from sim.runner import run_cocotb
from tests.sim.test_mac_lane import ID_BITS, LANE_CASES, NARROW


@pytest.mark.parametrize("k, fmts", LANE_CASES + [(5, NARROW)])   # K=5: an unbalanced tree (K=16 is slow)
def test_parallel_lane_matches_golden(tmp_path, k, fmts):
    fmts = HwFormats.parse(fmts)
    params = {"k": k, "fmts": str(fmts), "id_bits": ID_BITS, "neurons": 40, "seed": k}
    run_cocotb(ParallelMacLane(k, fmts, ID_BITS), name="parallel_lane", test_module="sim.tb_parallel_lane",
               build_dir=tmp_path, params=params, seed=k).check()


def mirrored(tree):
    """`tree` with every node's children swapped."""
    return tree if isinstance(tree, int) else (mirrored(tree[1]), mirrored(tree[0]))


class MirroredTree(MergeTree):
    """MUTANT: every node is fed its right read-out before its left one (the contract feeds left first;
    the order decides ties and evictions)."""

    def shape(self):
        return mirrored(super().shape())


class UpperSplitTree(MergeTree):
    """MUTANT: the split point rounded up, `m = ceil((a + b) / 2)` (the contract rounds down)."""

    def shape(self):
        def tree(a, b):
            if a == b:
                return a
            m = (a + b + 1) // 2
            return (tree(a, m - 1), tree(m, b))
        return tree(0, self.n - 1)


class ShallowQueueTree(MergeTree):
    """MUTANT: one-entry right queues everywhere, so a shallow right subtree waits for its parent."""

    def right_queue_depth(self, left, right):
        return 1


def lane_with(tree_class):
    class Lane(ParallelMacLane):
        def merge_tree(self):
            return tree_class(self.k, self.fmts.t, self.id_bits, self.k + 1)
    return Lane


@pytest.mark.parametrize("tree_class, k, testcase", [
    (MirroredTree, 3, "matches_golden"),
    (UpperSplitTree, 5, "matches_golden"),   # K + 1 = 4 would give the same shape
    (ShallowQueueTree, 2, "throughput"),
])
def test_tree_mutant_is_caught(tmp_path, tree_class, k, testcase):
    """The testbench must fail on a lane whose merge tree has the wrong shape or order (bit-exactness), or
    lacks the queueing that gives the documented throughput."""
    fmts = HwFormats()
    params = {"k": k, "fmts": str(fmts), "id_bits": ID_BITS, "neurons": 40, "seed": k}
    result = run_cocotb(lane_with(tree_class)(k, fmts, ID_BITS), name="parallel_lane",
                        test_module="sim.tb_parallel_lane", build_dir=tmp_path, params=params, testcase=testcase)
    assert set(result.tests) == {testcase}
    assert not result.passed, f"the testbench passed on a lane with a {tree_class.__name__}"


def test_bad_tree_parameters_are_rejected():
    """A tree of fewer than two read-outs or an empty queue is a user error, not a silent miswiring."""
    fmts = HwFormats()
    with pytest.raises(DpfmError, match="at least 2 read-outs"):
        MergeTree(1, fmts.t, ID_BITS, 1)
    with pytest.raises(DpfmError, match="queue depth 0"):
        SlotQueue(2, fmts.t, ID_BITS, 0)
