"""The parallel MAC lane: a neuron's affine map with its pruned tangent, up to K + 1 candidates per cycle
(docs/ARITHMETIC.md sections 3.1, 3.2 and 3b).

Same ports and primal arithmetic as `hw.mac_lane.MacLane`; the tangent path is contract 3b instead of 3.3,
with S source topers (`sources`, 2 <= S <= K + 1, default K + 1):

- a step's candidates are numbered `c = 0` (the direct one, `(wid, sat_t(round(x, x.frac - t.frac)))`, not
  presented in a step marked `frozen`, section 3e) and `c = j + 1` (slot j's
  `(x'[j].id, sat_t(round_half_up(w * x'[j].v, w.frac)))`, only when slot j is valid);
- the step is taken in *rounds*: in round r, source s handles candidate `c = r * S + s` with its own
  registered multiplier (source 0's multiplies `w * x` in round 0, the primal product) and feeds it into
  source toper `T_s` (`hw.toper.Toper`, empty at the start of a neuron). So `T_s` sees candidates
  `s, s + S, s + 2S, ...` of every step, in step order: contract 3b's `T_{c mod S}`. A step takes rounds
  up to the last one holding a valid slot (`1 + (index of its last valid candidate) // S` cycles; the bias
  step one), and with S = K + 1 every step takes one cycle;
- every candidate enters its source toper with its dither flag (docs/ARITHMETIC.md section 3d), from the
  hash of its id under the neuron's mask (the step's `mask`, kept in `s1` with the step for its later rounds)
  and whether it is the direct candidate (source 0 in round 0), computed from `s1`'s ids into `s2` and
  carried on with the candidate; the flags travel with the slots
  through the merge tree;
- at the neuron's end the S read-outs go into the merge tree (`hw.merge_tree.MergeTree`, the fixed shape
  of contract 3b); `z'` is the root's read-out.

The model is `golden.parallel_lane.ParallelMacLaneModel(sources=S)` (`indexed_mac_candidates` into a
`ParallelToperModel`).

Pipeline (every stage one register; the multipliers are registered-in, registered-out DSP products):

- `s1`: the accepted step, and the current round's S multiplier operands (loaded from the step for round
  0, from the step's stored slots for the later rounds, so no mux sits in front of a multiplier);
- `s2`: the S products and `x`;
- `s3`: the S rounded, saturated candidates; the primal `acc` takes the product `w * x` in round 0 (and
  hands the finished sum to `acc_final` with the neuron's last step). `s3` enters the source topers.

The neuron's flush token rides with its last step's last round into all S source topers at once. It may
enter only when the previous token has left them, every source toper's previous read-out has been copied
by the merge tree (or is being copied in that cycle) and the queue of `z` values has room; otherwise the
whole pipeline holds, and `i.ready` is low. `z` is computed with the flush and queued until the tree returns
the neuron's tangent: the result on `o` is `(z, root read-out)` and holds there until taken.

Timing (checked exactly by `sim/tb_parallel_lane.py`): a step is accepted when the previous one is in its
last round, unless the pipeline holds. With steps offered back to back and the output taken at once,
neurons of `R` rounds each come out every `max(R, 2K)` cycles: the source side needs `R` cycles per
neuron, every merge node 2K (K slots of each child). A lone neuron whose last step has one round (the bias)
is offered `3 + K + 3K * depth` cycles after that step was accepted (`depth = ceil(log2(S))`): 3 pipeline
stages, K cycles for the flush token to pass the source topers, 3K per tree level (`hw/merge_tree.py`).

`sat` counts saturation events per cycle (candidate roundings as they enter `s3`, `z`, the merge clamps of
every source toper and tree node); `evict` counts the entries dropped by any toper in a cycle. Both report
the previous cycle: the events are registered as flags and counted after the register, so the counting
adders are not in series with the topers' merge logic (on ECP5 that series was the lane's longest path).
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from dpfm.golden.contract.errors import DpfmError
from dpfm.hw.merge_tree import MergeTree
from dpfm.hw.streams import demoted_expr, dual_layout, mac_step_layout, saturate_expr, shift_round_expr
from dpfm.hw.toper import Toper, count_ones


class ParallelMacLane(wiring.Component):
    """MAC steps in (`i`, `mac_step_layout`), neuron results out (`o`, `dual_layout`), with backpressure
    on both; `sat` and `evict` are per-cycle event counts over the whole lane. `sources` is S (default
    K + 1)."""

    def __init__(self, k: int, fmts, id_bits: int, sources: int | None = None, acc_guard_bits: int = 16):
        self.k = k
        self.fmts = fmts
        self.id_bits = id_bits
        self.sources = k + 1 if sources is None else sources
        if not 2 <= self.sources <= k + 1:
            raise DpfmError(f"a parallel lane of K={k} cannot have {self.sources} source topers",
                            f"use 2 .. {k + 1} sources (one source is the serial lane)")
        self.rounds = -(-(k + 1) // self.sources)    # rounds of a step whose slots are all valid
        self.acc_bits = fmts.w.bits + fmts.x.bits + acc_guard_bits
        n_topers = 2 * self.sources - 1     # S source topers and S - 1 merge nodes
        super().__init__({
            "i": In(stream.Signature(mac_step_layout(k, fmts, id_bits))),
            "o": Out(stream.Signature(dual_layout(k, fmts.x, fmts.t, id_bits))),
            # S candidate clamps, z, and up to K merge clamps in each toper
            "sat": Out(range(self.sources + 1 + n_topers * k + 1)),
            "evict": Out(range(n_topers + 1)),
        })

    def candidate(self, r: int, s: int) -> int:
        """The index c of the candidate source s handles in round r: `r * S + s`, so `T_s` takes the
        candidates with `c mod S = s` in increasing c (contract 3b; a method so a test can substitute a
        wrong assignment)."""
        return r * self.sources + s

    def merge_tree(self) -> MergeTree:
        """The tree that combines the S source read-outs (a method so a test can substitute a wrong one)."""
        return MergeTree(self.k, self.fmts.t, self.id_bits, self.sources)

    @staticmethod
    def z_queue_depth(tree_depth: int) -> int:
        """Entries of the `z` queue: every neuron in flight between its flush and its output, at one neuron
        per 2K cycles over `K + 3K * tree_depth` cycles, plus the one on `o`; so the queue never holds the
        lane back (checked by the throughput test)."""
        return (3 * tree_depth + 1) // 2 + 2

    def elaborate(self, platform):
        m = Module()
        fmts, k, id_bits, n_src, rounds = self.fmts, self.k, self.id_bits, self.sources, self.rounds
        topers = [Toper(k, fmts.t, id_bits) for _ in range(n_src)]
        for s, toper in enumerate(topers):
            m.submodules[f"toper{s}"] = toper
        m.submodules.tree = tree = self.merge_tree()
        m.submodules.z_queue = z_queue = SyncFIFO(
            width=fmts.x.bits, depth=self.z_queue_depth(MergeTree.depth(tree.shape())))

        # ---- pipeline registers ----------------------------------------------------------------------------
        step = self.i.p
        op_shape = signed(max(fmts.x.bits, fmts.t.bits))
        s1_valid, s1_last = Signal(), Signal()
        s1_w = Signal(signed(fmts.w.bits))
        s1_x = Signal(signed(fmts.x.bits))
        s1_slots = Signal.like(step.slots, name="s1_slots")
        s1_mask = Signal.like(step.mask, name="s1_mask")
        s1_round = Signal(range(rounds))
        s1_more = Signal()      # a later round of this step holds a valid slot
        s1_op = [Signal(op_shape, name=f"s1_op{s}") for s in range(n_src)]     # multiplier operands
        s1_ids = [Signal(unsigned(id_bits), name=f"s1_id{s}") for s in range(n_src)]
        s1_cand = [Signal(name=f"s1_cand{s}") for s in range(n_src)]           # the source has a candidate
        s2_valid, s2_last, s2_direct, s2_last_step = Signal(), Signal(), Signal(), Signal()
        s2_x = Signal(signed(fmts.x.bits))
        s2_prod = [Signal(signed(fmts.w.bits + op_shape.width), name=f"s2_prod{s}") for s in range(n_src)]
        s2_ids = [Signal(unsigned(id_bits), name=f"s2_id{s}") for s in range(n_src)]
        s2_cand = [Signal(name=f"s2_cand{s}") for s in range(n_src)]
        s2_demoted = [Signal(name=f"s2_demoted{s}") for s in range(n_src)]
        s3_valid, s3_last = Signal(), Signal()
        s3_value = [Signal(signed(fmts.t.bits), name=f"s3_value{s}") for s in range(n_src)]
        s3_ids = [Signal(unsigned(id_bits), name=f"s3_id{s}") for s in range(n_src)]
        s3_cand = [Signal(name=f"s3_cand{s}") for s in range(n_src)]
        s3_demoted = [Signal(name=f"s3_demoted{s}") for s in range(n_src)]
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
        s1_final = ~s1_valid | ~s1_more     # s1 is empty or in its step's last round
        m.d.comb += self.i.ready.eq(advance & s1_final)

        # ---- s1: the step and its round's operands -------------------------------------------------------
        def round_view(slots, r):
            """Per source: (operand, id, valid) of the slot candidate it handles in round r of a step with
            `slots` (source 0's entry in round 0 is unused: the direct candidate), and whether a round after
            r holds a valid slot."""
            def slot_of(r, s):
                c = self.candidate(r, s)
                return slots[c - 1] if 1 <= c <= k else None
            view = [(0, 0, 0) if (slot := slot_of(r, s)) is None else (slot.value, slot.id, slot.valid)
                    for s in range(n_src)]
            later = [slot.valid for rr in range(r + 1, rounds) for s in range(n_src)
                     if (slot := slot_of(rr, s)) is not None]
            return view, (Cat(later).any() if later else 0)

        with m.If(advance):
            with m.If(s1_final):
                view, more = round_view(step.slots, 0)
                m.d.sync += [s1_valid.eq(self.i.valid), s1_last.eq(step.last), s1_w.eq(step.w), s1_x.eq(step.x),
                             s1_slots.eq(step.slots), s1_mask.eq(step.mask), s1_round.eq(0), s1_more.eq(more),
                             s1_op[0].eq(step.x), s1_ids[0].eq(step.wid), s1_cand[0].eq(~step.frozen)]
                for s in range(1, n_src):
                    m.d.sync += [s1_op[s].eq(view[s][0]), s1_ids[s].eq(view[s][1]), s1_cand[s].eq(view[s][2])]
            with m.Else():
                with m.Switch(s1_round):
                    for r in range(rounds - 1):
                        with m.Case(r):
                            view, more = round_view(s1_slots, r + 1)
                            m.d.sync += [s1_round.eq(r + 1), s1_more.eq(more)]
                            for s in range(n_src):
                                m.d.sync += [s1_op[s].eq(view[s][0]), s1_ids[s].eq(view[s][1]),
                                             s1_cand[s].eq(view[s][2])]

        # ---- s2: the products ----------------------------------------------------------------------------
        with m.If(advance):
            m.d.sync += [s2_valid.eq(s1_valid), s2_last.eq(s1_last & ~s1_more), s2_last_step.eq(s1_last),
                         s2_direct.eq(s1_round == 0), s2_x.eq(s1_x)]
            for s in range(n_src):
                m.d.sync += [s2_prod[s].eq(s1_w * s1_op[s]), s2_ids[s].eq(s1_ids[s]), s2_cand[s].eq(s1_cand[s]),
                             s2_demoted[s].eq(demoted_expr(s1_ids[s], s1_mask, s1_round == 0 if s == 0 else None))]

        # ---- s3: rounding, saturation, the primal accumulator --------------------------------------------
        clamps = []
        for s in range(n_src):
            value, clamped = saturate_expr(shift_round_expr(s2_prod[s], fmts.w.frac), fmts.t)
            if s == 0:      # round 0: the direct candidate x; later rounds: a slot's product
                direct, direct_clamped = saturate_expr(shift_round_expr(s2_x, fmts.x.frac - fmts.t.frac), fmts.t)
                value, clamped = Mux(s2_direct, direct, value), Mux(s2_direct, direct_clamped, clamped)
            counted = Signal(name=f"cand_clamped{s}")
            m.d.comb += counted.eq(advance & s2_valid & s2_cand[s] & clamped)
            clamps.append(counted)
            with m.If(advance):
                m.d.sync += [s3_value[s].eq(value), s3_ids[s].eq(s2_ids[s]), s3_cand[s].eq(s2_cand[s]),
                             s3_demoted[s].eq(s2_demoted[s])]
        with m.If(advance):
            m.d.sync += [s3_valid.eq(s2_valid), s3_last.eq(s2_last)]
        # As in MacLane: the finished sum is parked in `acc_final` and `acc` restarts, so the accumulator's
        # carry chain never waits for the flush decision.
        acc_sum = Signal.like(acc)
        m.d.comb += acc_sum.eq(acc + s2_prod[0])
        with m.If(advance & s2_valid & s2_direct):
            with m.If(s2_last_step):
                m.d.sync += [acc_final.eq(acc_sum), acc.eq(0)]
            with m.Else():
                m.d.sync += acc.eq(acc_sum)
        # ---- source topers, read-outs into the tree --------------------------------------------------------
        for s, toper in enumerate(topers):
            m.d.comb += [
                toper.cand.valid.eq(advance & s3_valid & s3_cand[s]),
                toper.cand.p.value.eq(s3_value[s]), toper.cand.p.id.eq(s3_ids[s]),
                toper.cand.p.demoted.eq(s3_demoted[s]),
                toper.flush.eq(flush),
                tree.i[s].valid.eq(leaf_valid[s]),
                tree.i[s].p.slots.eq(toper.result), tree.i[s].p.demoted.eq(toper.result_demoted),
            ]
            with m.If(tree.i[s].ready):
                m.d.sync += leaf_valid[s].eq(0)
            with m.If(toper.done):
                m.d.sync += leaf_valid[s].eq(1)

        # ---- z queue and result ------------------------------------------------------------------------------
        z, z_clamped = saturate_expr(shift_round_expr(acc_final, fmts.w.frac), fmts.x)
        m.d.comb += [
            z_queue.w_en.eq(flush), z_queue.w_data.eq(z),
            self.o.valid.eq(tree.o.valid),
            self.o.p.value.eq(z_queue.r_data.as_signed()),
            self.o.p.slots.eq(tree.o.p.slots),
            tree.o.ready.eq(self.o.ready),
            z_queue.r_en.eq(tree.o.valid & self.o.ready),
        ]

        sat_flags = Signal(n_src + 1 + (2 * n_src - 1) * k)
        evict_flags = Signal(2 * n_src - 1)
        sat_r, evict_r = Signal.like(sat_flags), Signal.like(evict_flags)
        m.d.sync += [sat_r.eq(sat_flags), evict_r.eq(evict_flags)]
        m.d.comb += [
            sat_flags.eq(Cat(*clamps, z_clamped & flush, *(t.merge_clamps for t in topers), tree.merge_clamps)),
            evict_flags.eq(Cat(*(t.evict for t in topers), tree.evicts)),
            self.sat.eq(count_ones(list(sat_r))),
            self.evict.eq(count_ones(list(evict_r))),
        ]
        return m

