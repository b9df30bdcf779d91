"""One MAC lane: a neuron's affine map with its pruned tangent (docs/ARITHMETIC.md sections 3.1 - 3.3).

The lane takes the neuron's MAC steps `(w, wid, x, x', last)` in order and, after the step marked `last`,
emits `(z, z')`:

- primal: `acc += w * x` exactly (`w.frac + x.frac` fraction bits, `w.bits + x.bits + acc_guard_bits` wide,
  so any neuron of up to `2**acc_guard_bits` steps is exact), then `z = sat_x(round_half_up(acc, w.frac))`;
- candidates of a step, in this order: the direct one `(wid, sat_t(round(x, x.frac - t.frac)))`, then for
  each valid input slot j `(x'[j].id, sat_t(round_half_up(w * x'[j].v, w.frac)))`; those whose value is 0
  are not inserted, nor is the direct one of a step marked `frozen` (its layer does not learn, section 3e:
  its operation still issues, for the primal, but does not present its candidate to the toper);
- the candidates go through the lane's own `Toper`, empty at the start of each neuron; `z'` is its read-out.
  Each candidate enters it with its dither flag (docs/ARITHMETIC.md section 3d), from the hash of its id
  under the step's `mask` and whether it is the direct candidate, computed at issue (where the step and its
  mask are on `i`) and carried down the pipeline with the id.

The model is `golden.mac_lane.MacLaneModel` (`mac_candidates` into a `ToperModel`, `neuron_primal`).

Why one multiplier: the toper takes one candidate per cycle, so computing a step's K + 1 candidates in
parallel buys no throughput. The lane instead *issues* one operation per cycle through a single multiplier:
for a step, first its direct candidate (whose product slot computes the primal `w * x`; the candidate itself
is only a rounding of `x`), then one per valid input slot (`w * x'[j].v`). Invalid slots are skipped, so a
step occupies the issue stage for exactly `1 + v` cycles, `v` being its number of valid input slots (a
candidate that rounds to 0 still takes its cycle; the toper ignores it).

Pipeline (every stage one register, so the multiplier is a registered-in, registered-out DSP product):

- issue -> `s1`: the step offered on `i` stays there until its last operation issues (`ready` is high in
  that cycle only); each cycle its lowest pending source selects the operands `(w, a)` (`a = x` for the
  direct one, `x'[j].v` for a slot) and the candidate id into `s1`;
- `s2`: the product `w * a`, and `a` itself;
- `s3`: the rounded, saturated candidate; the primal `acc` takes the product of a direct operation here
  (and hands the finished sum to `acc_final` with the neuron's last operation). `s3` enters the toper.

The neuron's flush token rides with its last candidate (the last operation of the step marked `last`; every
step has at least the direct one). It may enter the toper only when the previous token has passed the last
cell and the previous result has been (or is being) taken; otherwise the whole pipeline holds. `z` is latched
with the flush; the result is offered on `o` once the token has passed the last cell (K cycles later) and
holds there until taken.

Timing: a step is accepted in the cycle its last operation is issued, so with steps offered
back to back and the output taken at once a neuron whose steps have `v_i` valid input slots costs exactly
`max(sum_i (1 + v_i), K)` cycles; the three pipeline stages add a fixed latency of 3 cycles per neuron that
overlaps with the next neuron's steps.

`sat` counts saturation events (candidate roundings as they enter `s3`, `z`, toper merges), each reported
one cycle after it happened; `evict` is the toper's eviction pulse.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from dpfm.hw.streams import (demoted_expr, dual_layout, mac_step_layout, saturate_expr, saturate_fast_expr,
                              shift_round_expr)
from dpfm.hw.toper import Toper, count_ones

#: The direct candidate's entry in `MacLane.sources`.
DIRECT = "direct"


def first_one(bits):
    """The lowest set bit of `bits`, one-hot (0 if none), as AND-OR logic: bit i is set and no lower bit is.
    Unlike `bits & (~bits + 1)` (a carry chain) it folds to a constant when the lowest bits are constants."""
    return Cat(bits[i] & ~bits[:i].any() if i else bits[0] for i in range(len(bits)))


class MacLane(wiring.Component):
    """MAC steps in (`i`, `mac_step_layout`), neuron results out (`o`, `dual_layout`), with backpressure
    on both; `sat` and `evict` are the per-cycle event outputs."""

    def __init__(self, k: int, fmts, id_bits: int, acc_guard_bits: int = 16):
        self.k = k
        self.fmts = fmts
        self.id_bits = id_bits
        self.acc_bits = fmts.w.bits + fmts.x.bits + acc_guard_bits
        super().__init__({
            "i": In(stream.Signature(mac_step_layout(k, fmts, id_bits))),
            "o": Out(stream.Signature(dual_layout(k, fmts.x, fmts.t, id_bits))),
            "sat": Out(range(2 * k + 3)),
            "evict": Out(1),
        })

    def sources(self) -> list:
        """A step's candidate sources in issue order (contract 3.2): the direct one, then slots 0 .. K-1."""
        return [DIRECT] + list(range(self.k))

    def elaborate(self, platform):
        m = Module()
        fmts, k = self.fmts, self.k
        sources = self.sources()
        n = len(sources)
        m.submodules.toper = toper = Toper(k, fmts.t, self.id_bits)
        a_bits = max(fmts.x.bits, fmts.t.bits)

        # ---- issue state and pipeline registers --------------------------------------------------------
        step = self.i.p
        started = Signal()         # the offered step has issued operations already; `pending` holds the rest
        pending = Signal(n)        # its sources not issued yet (bit i = sources[i])
        s1_valid, s1_direct, s1_end = Signal(), Signal(), Signal()
        s1_w = Signal(signed(fmts.w.bits))
        s1_a = Signal(signed(a_bits))
        s1_id = Signal(unsigned(self.id_bits))
        s1_demoted = Signal()
        s1_off = Signal()          # a direct operation of a frozen layer: its candidate is not presented
        s2_off, s3_off = Signal(), Signal()
        s2_valid, s2_direct, s2_end = Signal(), Signal(), Signal()
        s2_a = Signal(signed(a_bits))
        s2_id = Signal(unsigned(self.id_bits))
        s2_demoted = Signal()
        s2_prod = Signal(signed(fmts.w.bits + a_bits))
        s3_valid, s3_end = Signal(), Signal()
        s3_value = Signal(signed(fmts.t.bits))
        s3_id = Signal(unsigned(self.id_bits))
        s3_demoted = Signal()
        # The accumulator starts each neuron at the rounding bias of `z`, so rounding half up is a plain
        # arithmetic shift of the finished sum: no 48-bit adder between `acc_final` and `z`, the longest path
        # of the iCE40 build otherwise. (The bias cannot overflow: the guard bits hold 2**guard products.)
        bias = 1 << (fmts.w.frac - 1) if fmts.w.frac > 0 else 0
        acc = Signal(signed(self.acc_bits), init=bias)
        acc_final = Signal(signed(self.acc_bits))   # bias + the sum of the neuron whose last candidate is in s3
        z_out = Signal(signed(fmts.x.bits))   # z of the neuron whose read-out the toper is producing

        # ---- flush and hold --------------------------------------------------------------------------------
        # The last candidate of a neuron carries the flush token; it waits in s3 (and everything behind it
        # holds) until the previous token has left the toper and the previous result is being taken.
        out_free = ~self.o.valid | self.o.ready
        flush = Signal()
        hold = Signal()
        m.d.comb += [
            hold.eq(s3_valid & s3_end & (toper.flushing | ~out_free)),
            flush.eq(s3_valid & s3_end & ~hold),
        ]
        advance = ~hold

        # ---- issue: the lowest pending source of the offered step (one-hot select, AND-OR mux) ------------
        # The step stays on `i` (not copied into the lane) until its last operation issues: the sender holds
        # its payload while `ready` is low, which saves a K-slot register and its load mux.
        # The lowest source and "more remain" are computed separately for a fresh step and for a started one
        # (from the `pending` register) and only then selected by `started`: the step's slot valid bits come
        # straight from the sender's block RAM, and this way they reach the operand select and `ready` through
        # an OR of the valid bits only (the direct source, always present and first, makes a fresh step's
        # lowest source a constant once synthesis folds the priority logic).
        fresh = Cat(1 if src == DIRECT else step.slots[src].valid for src in sources)
        lowest_fresh, lowest_pending = Signal(n), Signal(n)
        m.d.comb += [lowest_fresh.eq(first_one(fresh)), lowest_pending.eq(first_one(pending))]
        lowest = Signal(n)
        remaining = Signal(n)
        more = Signal()            # `remaining` is not empty: the step stays on `i` for another cycle
        m.d.comb += [
            lowest.eq(Mux(started, lowest_pending, lowest_fresh)),
            remaining.eq(Mux(started, pending & ~lowest_pending, fresh & ~lowest_fresh)),
            more.eq(Mux(started, (pending & ~lowest_pending).any(), (fresh & ~lowest_fresh).any())),
        ]
        sel_a, sel_id = 0, 0
        for bit, src in enumerate(sources):
            if src == DIRECT:
                a, ident = step.x, step.wid
            else:
                a, ident = step.slots[src].value, step.slots[src].id
            operand = Signal(signed(a_bits), name=f"operand{bit}")   # sign-extended to the multiplier width
            m.d.comb += operand.eq(a)
            sel_a = sel_a | (operand.as_unsigned() & lowest[bit].replicate(a_bits))
            sel_id = sel_id | (ident & lowest[bit].replicate(self.id_bits))
        direct_bit = sources.index(DIRECT)

        m.d.comb += self.i.ready.eq(advance & ~more)
        with m.If(advance):
            m.d.sync += [
                s1_valid.eq(self.i.valid), s1_direct.eq(lowest[direct_bit]),
                s1_end.eq(step.last & ~more),
                s1_w.eq(step.w), s1_a.eq(sel_a.as_signed()), s1_id.eq(sel_id),
                s1_demoted.eq(demoted_expr(sel_id, step.mask, lowest[direct_bit])),
                s1_off.eq(lowest[direct_bit] & step.frozen),
            ]
            with m.If(self.i.valid):
                m.d.sync += [started.eq(more), pending.eq(remaining)]

        # ---- s2: the product ---------------------------------------------------------------------------
        with m.If(advance):
            m.d.sync += [
                s2_valid.eq(s1_valid), s2_direct.eq(s1_direct), s2_end.eq(s1_end),
                s2_a.eq(s1_a), s2_id.eq(s1_id), s2_demoted.eq(s1_demoted), s2_prod.eq(s1_w * s1_a),
                s2_off.eq(s1_off),
            ]

        # ---- s3: rounding, saturation, the primal accumulator --------------------------------------------
        direct_v, direct_clamped = saturate_expr(shift_round_expr(s2_a, fmts.x.frac - fmts.t.frac), fmts.t)
        slot_v, slot_clamped = saturate_fast_expr(shift_round_expr(s2_prod, fmts.w.frac), fmts.t)
        cand_clamped = Signal()
        m.d.comb += cand_clamped.eq(advance & s2_valid & Mux(s2_direct, direct_clamped & ~s2_off, slot_clamped))
        with m.If(advance):
            m.d.sync += [
                s3_valid.eq(s2_valid), s3_end.eq(s2_end), s3_id.eq(s2_id), s3_demoted.eq(s2_demoted),
                s3_value.eq(Mux(s2_direct, direct_v, slot_v)), s3_off.eq(s2_off),
            ]
        # The neuron's sum is complete when its last operation enters s3; it is parked in `acc_final` (read
        # at the flush) and `acc` restarts, so the accumulator's carry chain never waits for the flush
        # decision, which depends on the consumer's `ready`.
        acc_sum = Signal.like(acc)
        m.d.comb += acc_sum.eq(Mux(s2_direct, acc + s2_prod, acc))
        with m.If(advance & s2_valid):
            with m.If(s2_end):
                m.d.sync += [acc_final.eq(acc_sum), acc.eq(bias)]
            with m.Else():
                m.d.sync += acc.eq(acc_sum)

        # ---- toper and result --------------------------------------------------------------------------
        z, z_clamped = saturate_expr(acc_final >> fmts.w.frac, fmts.x)
        m.d.comb += [
            toper.cand.valid.eq(s3_valid & advance & ~s3_off),   # the flush token does not need a candidate
            toper.cand.p.value.eq(s3_value), toper.cand.p.id.eq(s3_id), toper.cand.p.demoted.eq(s3_demoted),
            toper.flush.eq(flush),
            self.o.p.value.eq(z_out), self.o.p.slots.eq(toper.result),
        ]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(toper.done):
            m.d.sync += self.o.valid.eq(1)
        with m.If(flush):
            m.d.sync += z_out.eq(z)

        # The events are registered before they are added up, so `sat` adds no logic behind the z saturation
        # test and the toper's merge adders (their totals are what counts, one cycle later changes nothing).
        # The toper's per-cell merge clamp flags are registered and counted after the register: a count's adder
        # tree behind the merge adders was the longest path of the iCE40 build.
        cand_sat, z_sat, merge_clamps = Signal(), Signal(), Signal.like(toper.merge_clamps)
        m.d.sync += [cand_sat.eq(cand_clamped), z_sat.eq(z_clamped & flush), merge_clamps.eq(toper.merge_clamps)]
        m.d.comb += [
            self.sat.eq(cand_sat + z_sat + count_ones(list(merge_clamps))),
            self.evict.eq(toper.evict),
        ]
        return m
