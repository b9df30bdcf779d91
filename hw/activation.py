"""A neuron's activation stage (docs/ARITHMETIC.md section 3.4): `(z, z')` in, `(a, a')` out.

For `kind` in sigmoid / tanh / relu, two ROMs hold the golden tables `F`, `D = golden.activation.
activation_luts(kind, fmts)` (format x, `2**lut_bits` entries each, bin index
`clamp((z >> (x.frac - (lut_bits - 4))) + 2**(lut_bits-1), 0, 2**lut_bits - 1)`), and

    a = sat_x(F[idx] + round_x(D[idx] * off));   slot j: v_j <- sat_t(round_half_up(D[idx] * v_j, x.frac)),
    invalid when that is 0 (`off`: z's raw offset from its bin's centre, the bin's low bits with the top one
    inverted).

Slot positions and ids are kept. `identity` passes `z` and the slots through unchanged (no tables). The
model is `golden.activation.activation_slots`.

Why one multiplier: a MAC lane delivers a neuron at most every K cycles (its toper read-out takes K), so the
K slot products are done one per cycle through a single registered multiplier and the activation keeps
pace with a lane. Pipeline, with full backpressure:

- accept: the input's slots go into a shift register (`src`) and its table index to both ROMs;
- K product cycles: `prod <- D[idx] * src[0].value` (registered), `src` shifts by one slot; the next input
  is accepted in the cycle the last slot is multiplied, so a neuron occupies the stage exactly K cycles;
- K shift cycles, one behind: the rounded, saturated product enters the output slots at the top and they
  shift down by one, so after K shifts slot j is in place; with the last one `a` is set and the result is
  offered on `o`. `a` has its own small multiplier (`D[idx]` times an offset of `s` bits, a DSP on iCE40),
  fed from the ROMs' outputs and the offset registered at accept; its clamp exists only when the tables
  can reach it (`can_saturate`: only where format x cannot hold the function's values, e.g. sigmoid in s8.8).

A result waiting on `o` holds the shift (and everything before it) until taken. Latency: the result is
offered K + 2 cycles after its input was accepted. `ready` depends on registers only: while a product waits
to shift and a result is offered, no input is accepted even in the cycle that result is taken (so the
consumer's `ready` never reaches the producer's). With the result taken as soon as it is offered this never
costs a cycle for K >= 3 (the stage is next ready K - 2 cycles after the offer); for K <= 2 a neuron can
occupy the stage K + 1 cycles. `identity` is one register stage, ready when it is empty (for the same reason:
a neuron every 2 cycles, never faster than a MAC lane delivers them).

Identity bypass (`bypass=True`, LUT kinds only): a network whose output layer is the identity would otherwise
need a second instance and a 200-bit mux choosing between the two results (about 550 logic cells on the
UP5K at K=8). With the bypass, the `bypass` input (sampled with each accepted input) makes that neuron an
identity through the same pipeline: the slope is 1.0 (so `round_t(1.0 * v) = v` exactly, never clamped),
`a = z`, and a slot keeps its valid bit even when its value is 0 (the identity passes slots unchanged, and an
in-place merge can leave a valid 0). Same latency and occupancy as the table kind. It needs 1.0 in format x
(`x.frac <= x.bits - 2`).
"""

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from dpfm.golden.activation import activation_luts, activation_value, bin_bits
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.net import ACTIVATIONS
from dpfm.golden.fixedpoint import SatCounter
from dpfm.hw.streams import dual_layout, saturate_expr, shift_round_expr


class Activation(wiring.Component):
    """Activation of one neuron's dual through one shared slope multiplier.

    Ports: `i` (in stream, `dual_layout`: `z` and its K slots), `o` (out stream, same layout: `a` and its
    slots; with `slope_out`, `activation_out_layout`: also the slope `d`), `sat` (out): the number of tangent
    products clamped to the t range, reported in the cycle their result enters the output register. (The
    sigmoid, tanh and relu slopes are at most 1.0, so with their tables no product can clamp; the count is
    kept because the contract counts every clamp.)
    """

    def __init__(self, kind: str, k: int, fmts, id_bits: int, bypass: bool = False, slope_out: bool = False):
        if kind not in ACTIVATIONS:
            raise DpfmError(f"unknown activation '{kind}'", f"choose one of {', '.join(ACTIVATIONS)}")
        if bypass and not self.can_bypass(kind, fmts):
            raise DpfmError(f"an identity bypass needs a table kind and 1.0 in format {fmts.x}, got '{kind}'",
                            "use a separate identity activation")
        self.kind = kind
        self.k = k
        self.fmts = fmts
        self.bypass = bypass
        self.slope_out = slope_out
        layout = dual_layout(k, fmts.x, fmts.t, id_bits)
        super().__init__({
            "i": In(stream.Signature(layout)),
            "o": Out(stream.Signature(activation_out_layout(k, fmts, id_bits) if slope_out else layout)),
            "sat": Out(range(k + 2)),
            **({"identity": In(1)} if bypass else {}),
        })

    @staticmethod
    def can_bypass(kind: str, fmts) -> bool:
        """Whether a `kind` unit can also serve identity neurons: a table kind, and 1.0 fits format x."""
        return kind != "identity" and fmts.x.frac <= fmts.x.bits - 2

    def lut_index(self, z):
        """The table address of pre-activation `z` (same formula as `golden.activation.lut_index`)."""
        fmts = self.fmts
        top = (1 << fmts.lut_bits) - 1
        biased = (z >> bin_bits(fmts)) + (1 << (fmts.lut_bits - 1))
        return Mux(biased < 0, 0, Mux(biased > top, top, biased))[:fmts.lut_bits]

    def lut_offset(self, z):
        """`z - centre(bin)` (same formula as `golden.activation.lut_offset`): the bin's low bits with the top
        one inverted, as a signed number; 0 where the index clamps."""
        fmts = self.fmts
        shift = bin_bits(fmts)
        if shift == 0:
            return Const(0, signed(2))
        off = Cat(z[:shift - 1], ~z[shift - 1]).as_signed()
        if fmts.x.bits - 1 - fmts.x.frac <= 3:   # z stays inside [-8, 8): the index never clamps
            return off
        biased = (z >> shift) + (1 << (fmts.lut_bits - 1))
        return Mux((biased >= 0) & (biased <= (1 << fmts.lut_bits) - 1), off, 0)

    def add_rounded(self, f, product):
        """`f + round_x(product)` (product with 2 * x.frac fraction bits) as one adder: with `product = hi *
        2**(x.frac-1) + lo`, `(f * 2**x.frac + 2**(x.frac-1) + product) >> x.frac = (2f + 1 + hi) >> 1`, as `lo`
        stays below half a step. Two adders (the rounding's and the sum's) cost the UP5K core six logic cells
        more, which it does not have."""
        frac = self.fmts.x.frac
        if frac == 0:
            return f + product
        return (Cat(Const(1, 1), f).as_signed() + product[frac - 1:].as_signed()) >> 1

    def can_saturate(self, table_f, table_d) -> bool:
        """Whether the golden `activation_value` clamps for some z that format x holds (a property of the
        tables, known here; within a bin the value is monotonic in z, so each bin's first and last reachable z
        decide): if not, the clamp would be dead logic and is left out."""
        fmts = self.fmts
        shift = bin_bits(fmts)
        starts = (np.arange(1 << fmts.lut_bits, dtype=np.int64) - (1 << (fmts.lut_bits - 1))) << shift
        ends = starts + (1 << shift) - 1
        starts[0], ends[-1] = fmts.x.min_raw, fmts.x.max_raw       # the clamped end bins take every z beyond
        lo, hi = np.maximum(starts, fmts.x.min_raw), np.minimum(ends, fmts.x.max_raw)
        reachable = lo <= hi
        clamps = SatCounter()
        activation_value(np.concatenate([lo[reachable], hi[reachable]]), table_f, table_d, fmts, clamps)
        return clamps.count > 0

    def elaborate(self, platform):
        m = Module()
        if self.kind == "identity":
            m.d.comb += self.i.ready.eq(~self.o.valid)
            with m.If(self.o.ready):
                m.d.sync += self.o.valid.eq(0)
            with m.If(~self.o.valid):
                m.d.sync += self.o.valid.eq(self.i.valid)
                if self.slope_out:
                    m.d.sync += [self.o.p.value.eq(self.i.p.value), self.o.p.slots.eq(self.i.p.slots)]
                else:
                    m.d.sync += self.o.payload.eq(self.i.payload)
            if self.slope_out:
                m.d.comb += self.o.p.d.eq(1 << self.fmts.x.frac)
            return m

        fmts, k = self.fmts, self.k
        slots_t = self.i.p.slots.shape()
        slot_t = slots_t.elem_shape
        slot_w = len(Signal(slot_t).as_value())

        table_f, table_d = activation_luts(self.kind, fmts)
        m.submodules.rom_f = rom_f = Memory(shape=self.o.p.value.shape(), depth=len(table_f),
                                            init=[int(v) for v in table_f])
        m.submodules.rom_d = rom_d = Memory(shape=self.o.p.value.shape(), depth=len(table_d),
                                            init=[int(v) for v in table_d])
        read_f, read_d = rom_f.read_port(), rom_d.read_port()

        src = Signal(slots_t, name="src")         # the slots still to be multiplied, next one in src[0]
        left = Signal(range(k + 1))                # how many of them
        prod = Signal(signed(fmts.x.bits + fmts.t.bits))
        prod_valid, prod_slot, prod_last = Signal(), Signal(), Signal()   # a product / its slot was valid
        prod_id = Signal.like(src[0].id)
        prod_f = Signal.like(read_f.data)
        prod_d = Signal.like(read_d.data)         # the neuron's slope, offered with `a` when `slope_out`
        prod_f_sat = Signal()
        # The neuron being multiplied is an identity (bypass): its slope is 1.0 and its `a` is `z` (`z_in`).
        ident, prod_ident = Signal(), Signal()
        z_in = Signal.like(self.i.p.value)
        # a = sat_x(F[idx] + round_x(D[idx] * off)): the table's slope carries the bin centre's value to z.
        off = Signal(signed(max(2, bin_bits(fmts))))
        a_sum = self.add_rounded(read_f.data, read_d.data * off)
        if self.can_saturate(table_f, table_d):
            a_value, a_clamped = saturate_expr(a_sum, fmts.x)
        else:
            a_value, a_clamped = a_sum[:fmts.x.bits].as_signed(), Const(0)
        slope, value_f, value_sat = read_d.data, a_value, a_clamped
        if self.bypass:
            slope = Mux(ident, 1 << fmts.x.frac, read_d.data)
            value_f, value_sat = Mux(ident, z_in, a_value), a_clamped & ~ident

        # The shift into `o` may not overwrite a result that is offered and not taken: then everything holds.
        hold = Signal()
        m.d.comb += hold.eq(prod_valid & self.o.valid & ~self.o.ready)
        advance = ~hold
        # `ready` is a function of registers only (it assumes a hold whenever the shift would meet an offered
        # result), so the consumer's `ready` does not ripple through here into the MAC lane's flush decision and
        # from there into the sequencer's memory enables: that chain was the iCE40 build's longest path.
        m.d.comb += self.i.ready.eq((left <= 1) & ~(prod_valid & self.o.valid))
        accepted = self.i.valid & self.i.ready
        idx = self.lut_index(self.i.p.value)
        m.d.comb += [read_f.addr.eq(idx), read_d.addr.eq(idx), read_f.en.eq(accepted), read_d.en.eq(accepted)]

        head = src[0]
        with m.If(advance):
            m.d.sync += [
                prod_valid.eq(left != 0), prod_last.eq(left == 1), prod_slot.eq(head.valid),
                prod_id.eq(head.id), prod.eq(slope * head.value), prod_f.eq(value_f), prod_f_sat.eq(value_sat),
                prod_ident.eq(ident),
                src.eq(src.as_value() >> slot_w),
            ]
            if self.slope_out:
                m.d.sync += prod_d.eq(slope)
            with m.If(left != 0):
                m.d.sync += left.eq(left - 1)
            with m.If(accepted):
                m.d.sync += [src.eq(self.i.p.slots), left.eq(k), off.eq(self.lut_offset(self.i.p.value))]
                if self.bypass:
                    m.d.sync += [ident.eq(self.identity), z_in.eq(self.i.p.value)]

        value, clamped = saturate_expr(shift_round_expr(prod, fmts.x.frac), fmts.t)
        # "The slot's value is not 0", tested on the product itself rather than behind the rounding adder
        # and the clamp (a clamp never gives 0): `round_half_up(p, s)` is 0 exactly when
        # `-2**(s-1) <= p < 2**(s-1)`, i.e. when the bits of p from s-1 up are all equal.
        if fmts.x.frac > 0:
            top = prod[fmts.x.frac - 1:]
            nonzero = top.any() & ~top.all()
        else:
            nonzero = prod.any()
        entry = Signal(slot_t, name="entry")
        m.d.comb += [entry.valid.eq(prod_slot & (nonzero | prod_ident)), entry.value.eq(value),
                     entry.id.eq(prod_id)]
        shift = prod_valid & advance
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(shift):
            m.d.sync += self.o.p.slots.eq(Cat(self.o.p.slots.as_value()[slot_w:], entry.as_value()))
            m.d.comb += self.sat.eq((prod_slot & clamped) + (prod_last & prod_f_sat))
            with m.If(prod_last):
                m.d.sync += [self.o.valid.eq(1), self.o.p.value.eq(prod_f)]
                if self.slope_out:
                    m.d.sync += self.o.p.d.eq(prod_d)
        return m


def activation_out_layout(k: int, fmts, id_bits: int) -> data.StructLayout:
    """An activation's result with the neuron's slope `d` (format x; `D[idx]`, 1.0 for the identity): what
    the gradient unit of an exact output layer needs (docs/ARITHMETIC.md 3f). The dual's fields come first,
    so the result's low bits are the `dual_layout` the scratch memory stores."""
    dual = dual_layout(k, fmts.x, fmts.t, id_bits)
    return data.StructLayout({**{name: field.shape for name, field in dual}, "d": signed(fmts.x.bits)})
