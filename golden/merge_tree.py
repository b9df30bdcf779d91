"""The merge tree's model (docs/ARITHMETIC.md section 3b): the block `hw.merge_tree.MergeTree` must equal
`MergeTreeModel` bit for bit, and takes its shape from `merge_tree_order`, so the shape is defined once.
"""

from dpfm.golden.contract.formats import Fmt
from dpfm.golden.fixedpoint import SatCounter
from dpfm.golden.toper import Entry, ToperModel


def merge_tree_order(n: int) -> list:
    """The merge tree over leaves `0 .. n-1`: a leaf index, or a pair `(left, right)` of subtrees.
    `tree(a..b) = merge(tree(a..m), tree(m+1..b))`, `m = (a + b) // 2`, so the left half is the larger."""
    def tree(a: int, b: int):
        if a == b:
            return a
        m = (a + b) // 2
        return (tree(a, m), tree(m + 1, b))
    return tree(0, n - 1)


class MergeTreeModel:
    """Combines n toper read-outs into one. Every node (`hw.merge_tree.MergeNode`) is a fresh K-cell toper fed
    the left read-out's valid slots, then the right one's, in slot order; its read-out goes up the tree.
    Read-outs are toper entries `(value, id, d)`: each entry keeps the demoted flag it was drawn with
    (section 3d), so the tree ranks exactly as the source topers did. Merge clamps count in `sat`; `evictions` adds up
    every node's, over all merges."""

    def __init__(self, k: int, t_fmt: Fmt, sat: SatCounter | None = None):
        self.k = k
        self.t_fmt = t_fmt
        self.sat = sat
        self.evictions = 0

    def merge(self, readouts: list[list[Entry]]) -> list[Entry]:
        """The root's read-out of the tree over `readouts` (leaf i is `readouts[i]`)."""
        def run(node) -> list[Entry]:
            if isinstance(node, int):
                return readouts[node]
            return self.node(run(node[0]), run(node[1]))
        return run(merge_tree_order(len(readouts)))

    def node(self, left: list[Entry], right: list[Entry]) -> list[Entry]:
        """One merge node: `left`'s valid entries, then `right`'s, into a fresh toper."""
        toper = ToperModel(self.k, self.t_fmt, self.sat)
        for entry in left + right:
            if entry is not None:
                toper.insert(*entry)
        self.evictions += toper.evictions
        return toper.entries()
