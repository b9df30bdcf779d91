"""The parallel lane's merge tree (docs/ARITHMETIC.md section 3b): K + 1 toper read-outs in, one read-out out.

The tree's shape is `golden.merge_tree.merge_tree_order(n)`, the one definition its model
(`golden.merge_tree.MergeTreeModel`) uses too:
`tree(a..b) = merge(tree(a..m), tree(m+1..b))`, `m = floor((a + b) / 2)`. Every `merge(A, B)` is a
`MergeNode`: a fresh `hw.toper.Toper` of K cells fed A's slots 0 .. K-1, then B's slots 0 .. K-1, one slot per
cycle, then flushed with B's last slot. An invalid slot is an idle cycle (it never changes a toper's state)
and a slot whose value is 0 is ignored by the Toper itself, so a node's read-out equals the contract's
"A's valid slots then B's valid slots", while its timing does not depend on the data.

Each input and output is a stream of one read-out (`readout_layout`: the slots with their dither flags, which
every node feeds into its Toper with the slots, as the model's entries keep their hash). The payload of an
output is the node's Toper `result`, which stays unchanged until the node flushes again, so a node may flush
its next neuron only when its result has been taken (or is being taken in that cycle). A node copies its
children's read-outs into its own queues as soon as they have room, which frees the child for its next neuron
while the node still feeds the previous one: neurons pipeline through the tree, one per node per 2K cycles.

Timing (every number below is checked by `sim/tb_parallel_lane.py`):

- A node copies a read-out in the cycle it is offered (if its queue has room) and feeds its first slot in
  the next cycle. It feeds A's K slots, then B's K slots, the flush riding with B's last slot; the Toper's
  token passes its last cell K - 1 cycles later and the result is offered in the cycle after that. So a
  node's output is offered exactly 3K cycles after its left input was taken, and it starts a neuron every
  2K cycles at most.
- The right subtree is never deeper than the left one (the left half is the larger) and at most one level
  shallower. A shallower right child offers its read-out 3K cycles before the left child does, and the node
  feeds it K cycles after the left one. With a one-entry right queue that child would wait for room, and a
  waiting child cannot flush its next neuron: the tree would take a neuron only every 3K cycles on average
  (the `ShallowQueueTree` mutant of tests/sim/test_parallel_lane.py). So the right queue of such a node has
  two entries, all other queues one. A queue is ready when it has room or its oldest read-out's last slot
  is fed in this cycle.
- So the tree takes a neuron every 2K cycles and returns it `3K * depth` cycles after its leaves were
  offered (`depth = ceil(log2(K + 1))`, the number of nodes on the leftmost path), when its output is taken
  at once.

`merge_clamps` and `evicts` are the nodes' per-cycle events as flags (a merge clamp per node and cell, an
entry dropped by a node's last cell), for the lane to register before it counts them.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.merge_tree import merge_tree_order
from dpfm.hw.streams import ranked_slot_layout, readout_layout
from dpfm.hw.toper import Toper


class SlotQueue(wiring.Component):
    """A queue of `depth` read-outs (K slots each), consumed one slot per `take`.

    Ports: `i` (in, stream of `readout_layout`): a read-out to enqueue; ready when the queue has room or its
    last slot is taken in this cycle. `head` (out, `ranked_slot_layout`): the next slot of the oldest
    read-out with its dither flag, valid while `nonempty`. `last` (out): `head` is that read-out's last slot.
    `take` (in): `head` is consumed in this cycle (only while `nonempty`); taking the last slot dequeues the
    read-out.

    The read-outs are stored as they arrive (register loads with an enable, no shifting). `head` is a
    register loaded one cycle ahead with the slot that comes next (the following slot of the oldest entry,
    the next entry's first slot, or an arriving read-out's first slot), so the mux by entry and slot
    position sits in front of that register and not in front of the consuming toper's first compare; the
    queue's cycle timing is the same as reading the entries directly.
    """

    def __init__(self, k: int, t_fmt, id_bits: int, depth: int):
        if depth < 1:
            raise DpfmError(f"slot queue depth {depth} is too small", "use a depth of at least 1")
        self.k = k
        self.depth = depth
        self.readout_layout = readout_layout(k, t_fmt, id_bits)
        super().__init__({
            "i": In(stream.Signature(self.readout_layout)),
            "head": Out(ranked_slot_layout(t_fmt, id_bits)),
            "nonempty": Out(1),
            "last": Out(1),
            "take": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        k, depth = self.k, self.depth
        entries = [Signal(self.readout_layout, name=f"entry{e}") for e in range(depth)]
        count = Signal(range(depth + 1))
        rd = Signal(range(depth))     # the oldest entry
        wr = Signal(range(depth))     # where the next read-out goes
        pos = Signal(range(k))        # the next slot of the oldest entry

        pop = Signal()
        push = Signal()
        m.d.comb += [
            self.nonempty.eq(count != 0),
            self.last.eq(pos == k - 1),
            pop.eq(self.take & self.last),
            self.i.ready.eq((count != depth) | pop),
            push.eq(self.i.valid & self.i.ready),
        ]

        oldest = Signal(self.readout_layout)
        with m.Switch(rd):
            for e in range(depth):
                with m.Case(e):
                    m.d.comb += oldest.eq(entries[e])
        # head after this cycle: the oldest entry's next slot, else the next entry's first slot, else the
        # arriving read-out's first slot (when the queue is or becomes empty, head is not looked at)
        head = Signal.like(self.head, name="head_r")
        m.d.comb += self.head.eq(head)

        def load(readout, j):
            """`head` takes slot j of `readout` with its flag."""
            slot = readout.slots[j]
            return [head.valid.eq(slot.valid), head.value.eq(slot.value), head.id.eq(slot.id),
                    head.demoted.eq(readout.demoted[j])]
        with m.If(self.take & ~self.last):
            with m.Switch(pos):
                for j in range(k - 1):
                    with m.Case(j):
                        m.d.sync += load(oldest, j + 1)
        with m.Elif(self.take & (count > 1)):
            with m.Switch(rd):
                for e in range(depth):
                    with m.Case(e):
                        m.d.sync += load(entries[(e + 1) % depth], 0)
        with m.Elif(self.take | (count == 0)):
            m.d.sync += load(self.i.p, 0)

        with m.If(push):
            with m.Switch(wr):
                for e in range(depth):
                    with m.Case(e):
                        m.d.sync += entries[e].eq(self.i.p)
            m.d.sync += wr.eq(Mux(wr == depth - 1, 0, wr + 1))
        with m.If(self.take):
            m.d.sync += pos.eq(Mux(pop, 0, pos + 1))
        with m.If(pop):
            m.d.sync += rd.eq(Mux(rd == depth - 1, 0, rd + 1))
        m.d.sync += count.eq(count + push - pop)
        return m


class MergeNode(wiring.Component):
    """`merge(A, B)` of contract 3b: read-out `a` (left) then `b` (right) through one Toper, out on `o`.

    `right_depth` is the number of read-outs the right queue holds (2 when the right subtree is shallower,
    see the module docstring). `merge_clamps` (K flags) and `evict` are the Toper's per-cycle events.
    """

    def __init__(self, k: int, t_fmt, id_bits: int, right_depth: int = 1):
        self.k = k
        self.t_fmt = t_fmt
        self.id_bits = id_bits
        self.right_depth = right_depth
        layout = readout_layout(k, t_fmt, id_bits)
        super().__init__({
            "a": In(stream.Signature(layout)),
            "b": In(stream.Signature(layout)),
            "o": Out(stream.Signature(layout)),
            "merge_clamps": Out(k),
            "evict": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        k, t_fmt, id_bits = self.k, self.t_fmt, self.id_bits
        m.submodules.toper = toper = Toper(k, t_fmt, id_bits)
        m.submodules.qa = qa = SlotQueue(k, t_fmt, id_bits, 1)
        m.submodules.qb = qb = SlotQueue(k, t_fmt, id_bits, self.right_depth)
        wiring.connect(m, wiring.flipped(self.a), qa.i)
        wiring.connect(m, wiring.flipped(self.b), qb.i)

        on_b = Signal()      # A's slots of the current neuron are all fed; feeding B's
        feed_a = Signal()
        feed_b = Signal()
        flush_ok = Signal()  # the flush may ride with B's last slot in this cycle
        m.d.comb += [
            flush_ok.eq(~toper.flushing & (~self.o.valid | self.o.ready)),
            feed_a.eq(~on_b & qa.nonempty),
            feed_b.eq(on_b & qb.nonempty & (~qb.last | flush_ok)),
            qa.take.eq(feed_a),
            qb.take.eq(feed_b),
            toper.cand.valid.eq(Mux(on_b, feed_b & qb.head.valid, feed_a & qa.head.valid)),
            toper.cand.p.value.eq(Mux(on_b, qb.head.value, qa.head.value)),
            toper.cand.p.id.eq(Mux(on_b, qb.head.id, qa.head.id)),
            toper.cand.p.demoted.eq(Mux(on_b, qb.head.demoted, qa.head.demoted)),
            toper.flush.eq(feed_b & qb.last),
        ]
        with m.If(feed_a & qa.last):
            m.d.sync += on_b.eq(1)
        with m.If(feed_b & qb.last):
            m.d.sync += on_b.eq(0)

        m.d.comb += [self.o.p.slots.eq(toper.result), self.o.p.demoted.eq(toper.result_demoted)]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(toper.done):
            m.d.sync += self.o.valid.eq(1)

        m.d.comb += [self.merge_clamps.eq(toper.merge_clamps), self.evict.eq(toper.evict)]
        return m


class MergeTree(wiring.Component):
    """The merge tree over `n` read-outs: inputs `i[0 .. n-1]` (streams of `readout_layout`), output `o`.

    `merge_clamps` (K flags per node) and `evicts` (one flag per node) are the nodes' events in a cycle.
    """

    def __init__(self, k: int, t_fmt, id_bits: int, n: int):
        if n < 2:
            raise DpfmError(f"a merge tree needs at least 2 read-outs, got {n}", "use 2 or more source topers")
        self.k = k
        self.t_fmt = t_fmt
        self.id_bits = id_bits
        self.n = n
        layout = readout_layout(k, t_fmt, id_bits)
        super().__init__({
            "i": In(stream.Signature(layout)).array(n),
            "o": Out(stream.Signature(layout)),
            "merge_clamps": Out((n - 1) * k),
            "evicts": Out(n - 1),
        })

    def shape(self):
        """The tree as nested `(left, right)` pairs over leaf indices (contract 3b)."""
        return merge_tree_order(self.n)

    def right_queue_depth(self, left, right) -> int:
        """Read-outs the right queue of `merge(left, right)` holds: 2 when the right subtree is shallower (it
        delivers 3K cycles early), else 1 (module docstring)."""
        return 2 if self.depth(right) < self.depth(left) else 1

    @staticmethod
    def depth(tree) -> int:
        """The number of nodes on the longest path from the root to a leaf (0 for a leaf)."""
        return 0 if isinstance(tree, int) else 1 + max(MergeTree.depth(tree[0]), MergeTree.depth(tree[1]))

    def elaborate(self, platform):
        m = Module()
        nodes = []

        def build(tree):
            """The output stream of `tree`: a leaf's input port, or a new node's output."""
            if isinstance(tree, int):
                return wiring.flipped(self.i[tree])
            left, right = tree
            node = MergeNode(self.k, self.t_fmt, self.id_bits, right_depth=self.right_queue_depth(left, right))
            m.submodules[f"node{len(nodes)}"] = node
            nodes.append(node)
            wiring.connect(m, build(left), node.a)
            wiring.connect(m, build(right), node.b)
            return node.o

        wiring.connect(m, build(self.shape()), wiring.flipped(self.o))
        m.d.comb += [
            self.merge_clamps.eq(Cat(node.merge_clamps for node in nodes)),
            self.evicts.eq(Cat(node.evict for node in nodes)),
        ]
        return m
