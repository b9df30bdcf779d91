# amaranth: UnusedElaboratable=no
"""The parallel MAC lane RTL equals the golden parallel neuron, over K and formats, at its documented
cycle cost (sim/tb_parallel_lane.py)."""

import pytest
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import HwFormats
from dpfm.hw.merge_tree import MergeTree, SlotQueue
from dpfm.hw.parallel_lane import ParallelMacLane
from dpfm.sim.runner import run_cocotb
from tests.sim.test_mac_lane import ID_BITS, LANE_CASES, NARROW


def slow_from_k(cases, k_min: int = 5):
    """`cases` (tuples starting with K) with those of K >= `k_min` marked slow: K + 1 topers and a deeper
    merge tree take tens of seconds on Icarus."""
    return [pytest.param(*case, marks=pytest.mark.slow) if case[0] >= k_min else case for case in cases]


@pytest.mark.iverilog
@pytest.mark.parametrize("k, fmts", slow_from_k(LANE_CASES + [(5, NARROW)]))   # K=5: an unbalanced tree (K=16 is slow)
def test_parallel_lane_matches_golden(tmp_path, k, fmts):
    fmts = HwFormats.parse(fmts)
    params = {"k": k, "sources": k + 1, "fmts": str(fmts), "id_bits": ID_BITS, "neurons": 40, "seed": k}
    run_cocotb(ParallelMacLane(k, fmts, ID_BITS), name="parallel_lane", test_module="dpfm.sim.tb_parallel_lane",
               build_dir=tmp_path, params=params, seed=k).check()


@pytest.mark.iverilog
@pytest.mark.parametrize("k, sources, fmts", slow_from_k([
    (2, 2, NARROW),         # two rounds per full step, the second with one candidate
    (3, 2, "x=s16.12,w=s16.12,t=s16.12,g=s32.24,lut_bits=10"),     # two full rounds
    (5, 4, NARROW),         # the second round's last sources idle
    (8, 3, NARROW),         # three full rounds, a tree of depth 2 (the ECP5 digits build)
    (8, 5, NARROW),         # an unbalanced tree of depth 3
]))
def test_lane_with_fewer_sources_matches_golden(tmp_path, k, sources, fmts):
    """S < K + 1 source topers (contract 3b, candidate c into T_{c mod S}): bit for bit, and the cycle cost
    of one round per S candidates."""
    fmts = HwFormats.parse(fmts)
    params = {"k": k, "sources": sources, "fmts": str(fmts), "id_bits": ID_BITS, "neurons": 40, "seed": k}
    run_cocotb(ParallelMacLane(k, fmts, ID_BITS, sources=sources), name="parallel_lane",
               test_module="dpfm.sim.tb_parallel_lane", build_dir=tmp_path, params=params, seed=k).check()


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
            return tree_class(self.k, self.fmts.t, self.id_bits, self.sources)
    return Lane


@pytest.mark.iverilog
@pytest.mark.parametrize("tree_class, k, testcase", [
    (MirroredTree, 3, "matches_golden"),
    pytest.param(UpperSplitTree, 5, "matches_golden", marks=pytest.mark.slow),   # K + 1 = 4 would give the same shape
    (ShallowQueueTree, 2, "throughput"),
])
def test_tree_mutant_is_caught(tmp_path, tree_class, k, testcase):
    """The testbench must fail on a lane whose merge tree has the wrong shape or order (bit-exactness), or
    lacks the queueing that gives the documented throughput."""
    fmts = HwFormats()
    params = {"k": k, "sources": k + 1, "fmts": str(fmts), "id_bits": ID_BITS, "neurons": 40, "seed": k}
    result = run_cocotb(lane_with(tree_class)(k, fmts, ID_BITS), name="parallel_lane",
                        test_module="dpfm.sim.tb_parallel_lane", build_dir=tmp_path, params=params, testcase=testcase)
    assert set(result.tests) == {testcase}
    assert not result.passed, f"the testbench passed on a lane with a {tree_class.__name__}"


class BlockedSourcesLane(ParallelMacLane):
    """MUTANT: source s takes a block of consecutive candidates (`c = s * rounds + r`) instead of
    `c mod S = s`; the same cycle cost, a different toper input order."""

    def candidate(self, r, s):
        return s * self.rounds + r


@pytest.mark.iverilog
@pytest.mark.slow
def test_source_assignment_mutant_is_caught(tmp_path):
    fmts = HwFormats.parse(NARROW)
    params = {"k": 8, "sources": 3, "fmts": str(fmts), "id_bits": ID_BITS, "neurons": 40, "seed": 8}
    result = run_cocotb(BlockedSourcesLane(8, fmts, ID_BITS, sources=3), name="parallel_lane",
                        test_module="dpfm.sim.tb_parallel_lane", build_dir=tmp_path, params=params,
                        testcase="matches_golden")
    assert set(result.tests) == {"matches_golden"}
    assert not result.passed, "the testbench passed on a lane that assigns candidates to sources in blocks"


def test_bad_tree_parameters_are_rejected():
    """A tree of fewer than two read-outs, an empty queue or a lane with more sources than candidates is a
    user error, not a silent miswiring."""
    fmts = HwFormats()
    with pytest.raises(DpfmError, match="cannot have 5 source topers"):
        ParallelMacLane(3, fmts, ID_BITS, sources=5)
    with pytest.raises(DpfmError, match="cannot have 1 source topers"):
        ParallelMacLane(3, fmts, ID_BITS, sources=1)
    with pytest.raises(DpfmError, match="at least 2 read-outs"):
        MergeTree(1, fmts.t, ID_BITS, 1)
    with pytest.raises(DpfmError, match="queue depth 0"):
        SlotQueue(2, fmts.t, ID_BITS, 0)
