"""The parallel MAC lane: a neuron's affine map with its pruned tangent at one MAC step per cycle
(docs/ARITHMETIC.md sections 3.1, 3.2 and 3b).

Same ports and primal arithmetic as `hw.mac_lane.MacLane`; the tangent path is contract 3b instead of 3.3:

- a step's K + 1 candidates are computed in parallel by K + 1 registered multipliers: source 0 multiplies
  `w * x` (the primal product; its candidate is the direct one, `(wid, sat_t(round(x, x.frac - t.frac)))`),
  source `j + 1` multiplies `w * x'[j].v` (candidate `(x'[j].id, sat_t(round_half_up(w * x'[j].v, w.frac)))`,
  only when slot j is valid);
- candidate `s` goes into source toper `T_s` (K + 1 `hw.toper.Toper`s, one per source, each empty at the
  start of a neuron), so every source toper sees its candidates in step order and a step costs one cycle;
- at the neuron's end the K + 1 read-outs go into the merge tree (`hw.merge_tree.MergeTree`, the fixed shape
  of contract 3b); `z'` is the root's read-out.

The model is `golden.toper.mac_candidate_sources` into `golden.toper.ParallelToper`.

Pipeline (every stage one register; the multipliers are registered-in, registered-out DSP products):

- `s1`: the accepted step;
- `s2`: the K + 1 products and `x`;
- `s3`: the K + 1 rounded, saturated candidates; the primal `acc` takes the product `w * x` here (and hands
  the finished sum to `acc_final` with the neuron's last step). `s3` enters the source topers.

The neuron's flush token rides with its last step's candidates into all K + 1 source topers at once. It may
enter only when the previous token has left them, every source toper's previous read-out has been copied
by the merge tree (or is being copied in that cycle) and the queue of `z` values has room; otherwise the
whole pipeline holds, and `i.ready` is low. `z` is computed with the flush and queued until the tree returns
the neuron's tangent: the result on `o` is `(z, root read-out)` and holds there until taken.

Timing (checked exactly by `sim/tb_parallel_lane.py`): a step is accepted every cycle unless the pipeline
holds. With steps offered back to back and the output taken at once, neurons of `n` steps each (bias
included) come out every `max(n, 2K)` cycles: the source side needs `n` cycles per neuron, every merge node
2K (K slots of each child). A lone neuron's result is offered `3 + K + 3K * depth` cycles after its last
step was accepted (`depth = ceil(log2(K + 1))`): 3 pipeline stages, K cycles for the flush token to pass the
source topers, 3K per tree level (`hw/merge_tree.py`).

`sat` counts saturation events per cycle (candidate roundings as they enter `s3`, `z`, the merge clamps of
every source toper and tree node); `evict` counts the entries dropped by any toper in a cycle.
"""

from amaranth.hdl import Cat, Module, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from hw.merge_tree import MergeTree
from hw.streams import dual_layout, mac_step_layout, round_shift, saturate
from hw.toper import Toper


class ParallelMacLane(wiring.Component):
    """MAC steps in (`i`, `mac_step_layout`), neuron results out (`o`, `dual_layout`), with backpressure
    on both; `sat` and `evict` are per-cycle event counts over the whole lane."""

    def __init__(self, k: int, fmts, id_bits: int, acc_guard_bits: int = 16):
        self.k = k
        self.fmts = fmts
        self.id_bits = id_bits
        self.acc_bits = fmts.w.bits + fmts.x.bits + acc_guard_bits
        n_topers = 2 * k + 1     # K + 1 source topers and K merge nodes
        super().__init__({
            "i": In(stream.Signature(mac_step_layout(k, fmts, id_bits))),
            "o": Out(stream.Signature(dual_layout(k, fmts.x, fmts.t, id_bits))),
            # K + 1 candidate clamps, z, and up to K merge clamps in each toper
            "sat": Out(range((k + 1) + 1 + n_topers * k + 1)),
            "evict": Out(range(n_topers + 1)),
        })

    def merge_tree(self) -> MergeTree:
        """The tree that combines the K + 1 source read-outs (a method so a test can substitute a wrong one)."""
        return MergeTree(self.k, self.fmts.t, self.id_bits, self.k + 1)

    @staticmethod
    def z_queue_depth(tree_depth: int) -> int:
        """Entries of the `z` queue: every neuron in flight between its flush and its output, at one neuron
        per 2K cycles over `K + 3K * tree_depth` cycles, plus the one on `o`; so the queue never holds the
        lane back (checked by the throughput test)."""
        return (3 * tree_depth + 1) // 2 + 2

    def elaborate(self, platform):
        m = Module()
        fmts, k, id_bits = self.fmts, self.k, self.id_bits
        n_src = k + 1
        topers = [Toper(k, fmts.t, id_bits) for _ in range(n_src)]
        for s, toper in enumerate(topers):
            m.submodules[f"toper{s}"] = toper
        m.submodules.tree = tree = self.merge_tree()
        m.submodules.z_queue = z_queue = SyncFIFO(
            width=fmts.x.bits, depth=self.z_queue_depth(MergeTree.depth(tree.shape())))

        # ---- pipeline registers ----------------------------------------------------------------------------
        step = self.i.p
        s1_valid, s1_last = Signal(), Signal()
        s1_w = Signal(signed(fmts.w.bits))
        s1_x = Signal(signed(fmts.x.bits))
        s1_wid = Signal(unsigned(id_bits))
        s1_slots = Signal.like(step.slots, name="s1_slots")
        s2_valid, s2_last = Signal(), Signal()
        s2_x = Signal(signed(fmts.x.bits))
        s2_prod = [Signal(signed(fmts.w.bits + max(fmts.x.bits, fmts.t.bits)), name=f"s2_prod{s}")
                   for s in range(n_src)]   # source 0: w * x, source j + 1: w * x'[j].v
        s2_ids = [Signal(unsigned(id_bits), name=f"s2_id{s}") for s in range(n_src)]
        s2_cand = [Signal(name=f"s2_cand{s}") for s in range(n_src)]    # the source has a candidate
        s3_valid, s3_last = Signal(), Signal()
        s3_value = [Signal(signed(fmts.t.bits), name=f"s3_value{s}") for s in range(n_src)]
        s3_ids = [Signal(unsigned(id_bits), name=f"s3_id{s}") for s in range(n_src)]
        s3_cand = [Signal(name=f"s3_cand{s}") for s in range(n_src)]
        acc = Signal(signed(self.acc_bits))
        acc_final = Signal(signed(self.acc_bits))   # the sum of the neuron whose last step is in s3

        # ---- flush and hold --------------------------------------------------------------------------------
        # leaf_valid[s]: source toper s holds a read-out the tree has not copied yet.
        leaf_valid = [Signal(name=f"leaf_valid{s}") for s in range(n_src)]
        leaves_free = Cat(~leaf_valid[s] | tree.i[s].ready for s in range(n_src)).all()
        hold = Signal()
        flush = Signal()
        # The source topers always flush together, so T_0's `flushing` speaks for all of them.
        m.d.comb += [
            hold.eq(s3_valid & s3_last & (topers[0].flushing | ~leaves_free | ~z_queue.w_rdy)),
            flush.eq(s3_valid & s3_last & ~hold),
        ]
        advance = ~hold
        m.d.comb += self.i.ready.eq(advance)

        # ---- s1: the step --------------------------------------------------------------------------------
        with m.If(advance):
            m.d.sync += [
                s1_valid.eq(self.i.valid), s1_last.eq(step.last),
                s1_w.eq(step.w), s1_x.eq(step.x), s1_wid.eq(step.wid), s1_slots.eq(step.slots),
            ]

        # ---- s2: the products ----------------------------------------------------------------------------
        with m.If(advance):
            m.d.sync += [s2_valid.eq(s1_valid), s2_last.eq(s1_last), s2_x.eq(s1_x),
                         s2_prod[0].eq(s1_w * s1_x), s2_ids[0].eq(s1_wid), s2_cand[0].eq(1)]
            for j in range(k):
                m.d.sync += [s2_prod[j + 1].eq(s1_w * s1_slots[j].value), s2_ids[j + 1].eq(s1_slots[j].id),
                             s2_cand[j + 1].eq(s1_slots[j].valid)]

        # ---- s3: rounding, saturation, the primal accumulator --------------------------------------------
        clamps = []
        for s in range(n_src):
            if s == 0:
                value, clamped = saturate(round_shift(s2_x, fmts.x.frac - fmts.t.frac), fmts.t)
            else:
                value, clamped = saturate(round_shift(s2_prod[s], fmts.w.frac), fmts.t)
            counted = Signal(name=f"cand_clamped{s}")
            m.d.comb += counted.eq(advance & s2_valid & s2_cand[s] & clamped)
            clamps.append(counted)
            with m.If(advance):
                m.d.sync += [s3_value[s].eq(value), s3_ids[s].eq(s2_ids[s]), s3_cand[s].eq(s2_cand[s])]
        with m.If(advance):
            m.d.sync += [s3_valid.eq(s2_valid), s3_last.eq(s2_last)]
        # As in MacLane: the finished sum is parked in `acc_final` and `acc` restarts, so the accumulator's
        # carry chain never waits for the flush decision.
        acc_sum = Signal.like(acc)
        m.d.comb += acc_sum.eq(acc + s2_prod[0])
        with m.If(advance & s2_valid):
            with m.If(s2_last):
                m.d.sync += [acc_final.eq(acc_sum), acc.eq(0)]
            with m.Else():
                m.d.sync += acc.eq(acc_sum)

        # ---- source topers, read-outs into the tree --------------------------------------------------------
        for s, toper in enumerate(topers):
            m.d.comb += [
                toper.cand.valid.eq(advance & s3_valid & s3_cand[s]),
                toper.cand.p.value.eq(s3_value[s]), toper.cand.p.id.eq(s3_ids[s]),
                toper.flush.eq(flush),
                tree.i[s].valid.eq(leaf_valid[s]), tree.i[s].p.eq(toper.result),
            ]
            with m.If(tree.i[s].ready):
                m.d.sync += leaf_valid[s].eq(0)
            with m.If(toper.done):
                m.d.sync += leaf_valid[s].eq(1)

        # ---- z queue and result ------------------------------------------------------------------------------
        z, z_clamped = saturate(round_shift(acc_final, fmts.w.frac), fmts.x)
        m.d.comb += [
            z_queue.w_en.eq(flush), z_queue.w_data.eq(z),
            self.o.valid.eq(tree.o.valid),
            self.o.p.value.eq(z_queue.r_data.as_signed()),
            self.o.p.slots.eq(tree.o.p),
            tree.o.ready.eq(self.o.ready),
            z_queue.r_en.eq(tree.o.valid & self.o.ready),
        ]

        m.d.comb += [
            self.sat.eq(sum(clamps) + (z_clamped & flush) + sum(t.merge_sat for t in topers) + tree.sat),
            self.evict.eq(sum(t.evict for t in topers) + tree.evict),
        ]
        return m

