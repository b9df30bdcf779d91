"""The parallel MAC lane's model (docs/ARITHMETIC.md sections 3.1, 3.2 and 3b): the block
`hw.parallel_lane.ParallelMacLane` must equal `ParallelMacLaneModel` bit for bit, neuron by neuron.

The lane shares the serial lane's primal and candidates (golden/mac_lane.py); only the tangent path differs:
`ParallelToperModel`, S source topers and then the merge tree.
"""

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import Fmt, HwFormats
from dpfm.golden.fixedpoint import SatCounter
from dpfm.golden.mac_lane import MacLaneModel
from dpfm.golden.merge_tree import MergeTreeModel
from dpfm.golden.toper import Entry, Slot, ToperModel


class ParallelToperModel:
    """The parallel lane's tangent path (section 3b): S source topers, then the merge tree.

    `insert(c, value, wid)` sends candidate `c` of a MAC step (0 = direct, `j + 1` = slot j) into source
    toper `T_{c mod S}`; `slots()` runs the merge tree (`MergeTreeModel`) over the source topers' read-outs
    and returns the root's read-out. `sources` defaults to K + 1 (one source per candidate); with
    `sources=1` this is exactly the serial toper of section 3.3. Merge clamps of every toper count in `sat`;
    `evictions` sums the source topers' and the tree's (`tree_evictions`).
    """

    def __init__(self, k: int, t_fmt: Fmt, sat: SatCounter | None = None, sources: int | None = None):
        self.k = k
        self.t_fmt = t_fmt
        self.sat = sat
        n = k + 1 if sources is None else sources
        if not 1 <= n <= k + 1:
            raise DpfmError(f"{n} source topers do not fit K={k}", f"use 1 .. {k + 1} sources")
        self.tree = MergeTreeModel(k, t_fmt, sat)
        self._root: list[Entry] | None = None   # the merge tree's result, computed once per neuron
        self.sources = [ToperModel(k, t_fmt, sat) for _ in range(n)]

    @property
    def tree_evictions(self) -> int:
        return self.tree.evictions

    @property
    def evictions(self) -> int:
        return sum(t.evictions for t in self.sources) + self.tree.evictions

    def clear(self) -> None:
        """Empty every source toper (start of a neuron)."""
        for t in self.sources:
            t.clear()
        self._root = None

    def insert(self, c: int, value: int, wid: int, d: int = 0) -> None:
        if self._root is not None:
            raise ValueError("the neuron's merge tree already ran; clear() before the next neuron")
        self.sources[c % len(self.sources)].insert(value, wid, d)

    def slots(self) -> list[Slot]:
        """The neuron's tangent: the merge tree's root read-out (the tree runs once per neuron)."""
        if self._root is None:
            self._root = self.tree.merge([t.entries() for t in self.sources])
        return [None if e is None else e[:2] for e in self._root]


class ParallelMacLaneModel(MacLaneModel):
    """The parallel lane: per neuron, every step's candidate c into source toper `T_{c mod S}`, then the
    merge tree; `z` and the neuron's walk as in the serial lane. `sources` as in `ParallelToperModel`;
    `evictions` runs over all neurons, as the lane's eviction counter does."""

    def __init__(self, k: int, fmts: HwFormats, sat: SatCounter | None = None, sources: int | None = None):
        self.fmts = fmts
        self.sat = sat
        self.toper = ParallelToperModel(k, fmts.t, sat, sources)

    def _insert(self, c: int, value: int, cid: int, d: int) -> None:
        self.toper.insert(c, value, cid, d)
