"""One MAC lane: a neuron's affine map with its pruned tangent (docs/ARITHMETIC.md sections 3.1 - 3.3).

The lane takes the neuron's MAC steps `(w, wid, x, x', last)` in order and, after the step marked `last`,
emits `(z, z')`:

- primal: `acc += w * x` exactly (`w.frac + x.frac` fraction bits, `w.bits + x.bits + acc_guard_bits` wide,
  so any neuron of up to `2**acc_guard_bits` steps is exact), then `z = sat_x(round_half_up(acc, w.frac))`;
- candidates of a step, in this order: the direct one `(wid, sat_t(round(x, x.frac - t.frac)))`, then for
  each valid input slot j `(x'[j].id, sat_t(round_half_up(w * x'[j].v, w.frac)))`; those whose value is 0
  are not inserted;
- the candidates go through the lane's own `Toper`, empty at the start of each neuron; `z'` is its read-out.

The model is `golden.toper.mac_candidates` plus `golden.toper.Toper`.

Timing (the lane's throughput is the machine's): a step is accepted in the cycle its predecessor's last
candidate goes into the toper, all its candidates are computed in parallel in that cycle (K + 1
multipliers), and they enter the toper one per cycle, so a step costs `max(1, n)` cycles, `n <= K + 1`
being its number of nonzero candidates. The toper's flush token rides with the neuron's last candidate
(or follows the last step alone if it had none) and reads the slots out cell by cell while the next
neuron's candidates already follow it; `z` is latched in that cycle. The result is offered on `o` once the
token has passed the last cell (K cycles later), and holds there until taken. A neuron whose steps have
`n_i` nonzero candidates therefore costs exactly `max(sum_i max(1, n_i), K)` cycles when the output is
taken at once: the flush waits only for the previous neuron's token to finish its K-cycle walk and for
its result to be taken.

`sat` counts saturation events per cycle (candidate roundings, `z`, toper merges); `evict` is the toper's
eviction pulse.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.streams import dual_layout, entry_layout, mac_step_layout, round_shift, saturate
from hw.toper import Toper


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

    def candidates(self, m, step):
        """The step's K + 1 candidates (direct first) as entry signals, their nonzero flags (slot valid and
        value != 0) and their saturation flags (only for candidates that exist)."""
        fmts = self.fmts
        layout = entry_layout(fmts.t, self.id_bits)
        entries, nonzero, clamps = [], [], []

        direct, direct_clamped = saturate(round_shift(step.x, fmts.x.frac - fmts.t.frac), fmts.t)
        cand = Signal(layout, name="cand_direct")
        m.d.comb += [cand.value.eq(direct), cand.id.eq(step.wid)]
        entries.append(cand)
        nonzero.append(cand.value != 0)
        clamps.append(direct_clamped)

        for j in range(self.k):
            slot = step.slots[j]
            value, clamped = saturate(round_shift(step.w * slot.value, fmts.w.frac), fmts.t)
            cand = Signal(layout, name=f"cand_slot{j}")
            m.d.comb += [cand.value.eq(value), cand.id.eq(slot.id)]
            entries.append(cand)
            nonzero.append(slot.valid & (cand.value != 0))
            clamps.append(slot.valid & clamped)
        return entries, Cat(nonzero), clamps

    def elaborate(self, platform):
        m = Module()
        fmts = self.fmts
        n = self.k + 1
        m.submodules.toper = toper = Toper(self.k, fmts.t, self.id_bits)

        layout = entry_layout(fmts.t, self.id_bits)
        buffer = [Signal(layout, name=f"buf{i}") for i in range(n)]   # the current step's candidates
        pending = Signal(n)         # which of them still have to enter the toper
        ending = Signal()           # the neuron's last step has been accepted
        acc = Signal(signed(self.acc_bits))
        z_out = Signal(signed(fmts.x.bits))   # z of the neuron whose read-out the toper is producing

        # Emit the lowest pending candidate (one-hot select, AND-OR mux).
        lowest = Signal(n)
        m.d.comb += lowest.eq(pending & (~pending + 1))
        remaining = pending & ~lowest
        selected = 0
        for i, b in enumerate(buffer):
            selected = selected | (b.as_value() & lowest[i].replicate(len(b.as_value())))
        m.d.comb += [toper.cand.valid.eq(pending.any()), toper.cand.payload.eq(selected)]

        # Finish a neuron: its last candidate goes into the toper now (the flush token rides with it) or has
        # gone already; the previous read-out has been taken (or is being taken) and its token has arrived.
        out_free = ~self.o.valid | self.o.ready
        finishing = Signal()
        m.d.comb += finishing.eq(ending & ~remaining.any() & ~toper.flushing & out_free)
        m.d.comb += self.i.ready.eq(~remaining.any() & (~ending | finishing))

        z, z_clamped = saturate(round_shift(acc, fmts.w.frac), fmts.x)
        m.d.comb += [toper.flush.eq(finishing), self.o.p.value.eq(z_out), self.o.p.slots.eq(toper.result)]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(toper.done):
            m.d.sync += self.o.valid.eq(1)
        with m.If(finishing):
            m.d.sync += [z_out.eq(z), acc.eq(0), ending.eq(0)]

        entries, nonzero, clamps = self.candidates(m, self.i.p)
        accepted = self.i.valid & self.i.ready
        with m.If(accepted):
            base = Mux(finishing, 0, acc)
            m.d.sync += [pending.eq(nonzero), acc.eq(base + self.i.p.w * self.i.p.x), ending.eq(self.i.p.last)]
            m.d.sync += [b.eq(e) for b, e in zip(buffer, entries)]
        with m.Else():
            m.d.sync += pending.eq(remaining)

        m.d.comb += [
            self.sat.eq(sum(c & accepted for c in clamps) + (z_clamped & finishing) + toper.merge_sat),
            self.evict.eq(toper.evict),
        ]
        return m
