"""A neuron's activation stage (docs/ARITHMETIC.md section 3.4): `(z, z')` in, `(a, a')` out.

For `kind` in sigmoid / tanh / relu, two ROMs hold the golden tables `F`, `D = golden.fixedpoint.
activation_luts(kind, fmts)` (format x, `2**lut_bits` entries each, bin index
`clamp((z >> (x.frac - (lut_bits - 4))) + 2**(lut_bits-1), 0, 2**lut_bits - 1)`), and

    a = F[idx];   slot j: v_j <- sat_t(round_half_up(D[idx] * v_j, x.frac)),  invalid when that is 0.

Slot positions and ids are kept. `identity` passes `z` and the slots through unchanged (no tables). The
model is `golden.toper.activation_slots`.

Pipeline: two register stages (the ROM read, then the K parallel multiplies into the output register);
one result per cycle with full backpressure: a stalled output holds the stage before it, and the input is
ready whenever that stage can move on.
"""

from amaranth.hdl import Mux, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.errors import DpfmError
from golden.fixedpoint import activation_luts
from golden.net import ACTIVATIONS
from hw.streams import dual_layout, round_shift, saturate


class Activation(wiring.Component):
    """Activation of one neuron's dual, with K parallel tangent multipliers.

    Ports: `i` (in stream, `dual_layout`: `z` and its K slots), `o` (out stream, same layout: `a` and its
    slots), `sat` (out): the number of tangent products clamped to the t range, reported in the cycle their
    result enters the output register. (The sigmoid, tanh and relu slopes are at most 1.0, so with their
    tables no product can clamp; the count is kept because the contract counts every clamp.)
    """

    def __init__(self, kind: str, k: int, fmts, id_bits: int):
        if kind not in ACTIVATIONS:
            raise DpfmError(f"unknown activation '{kind}'", f"choose one of {', '.join(ACTIVATIONS)}")
        self.kind = kind
        self.k = k
        self.fmts = fmts
        layout = dual_layout(k, fmts.x, fmts.t, id_bits)
        super().__init__({
            "i": In(stream.Signature(layout)),
            "o": Out(stream.Signature(layout)),
            "sat": Out(range(k + 1)),
        })

    def lut_index(self, z):
        """The table address of pre-activation `z` (same formula as `golden.fixedpoint.lut_index`)."""
        fmts = self.fmts
        top = (1 << fmts.lut_bits) - 1
        biased = (z >> (fmts.x.frac - (fmts.lut_bits - 4))) + (1 << (fmts.lut_bits - 1))
        return Mux(biased < 0, 0, Mux(biased > top, top, biased))[:fmts.lut_bits]

    def elaborate(self, platform):
        m = Module()
        fmts = self.fmts
        stage = Signal.like(self.i.payload, name="stage")   # stage 1: the input, while its ROM read completes
        stage_valid = Signal()
        out_free = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(~stage_valid | out_free)

        with m.If(self.i.ready):
            m.d.sync += [stage_valid.eq(self.i.valid), stage.eq(self.i.payload)]

        if self.kind == "identity":
            result = stage
            sat_flags = []
        else:
            table_f, table_d = activation_luts(self.kind, fmts)
            m.submodules.rom_f = rom_f = Memory(shape=self.o.p.value.shape(),
                                                depth=len(table_f), init=[int(v) for v in table_f])
            m.submodules.rom_d = rom_d = Memory(shape=self.o.p.value.shape(),
                                                depth=len(table_d), init=[int(v) for v in table_d])
            read_f, read_d = rom_f.read_port(), rom_d.read_port()
            idx = self.lut_index(self.i.p.value)
            m.d.comb += [read_f.addr.eq(idx), read_d.addr.eq(idx), read_f.en.eq(self.i.ready),
                         read_d.en.eq(self.i.ready)]

            result = Signal.like(self.o.payload, name="result")
            m.d.comb += result.value.eq(read_f.data)
            sat_flags = []
            for j in range(self.k):
                slot = stage.slots[j]
                value, clamped = saturate(round_shift(read_d.data * slot.value, fmts.x.frac), fmts.t)
                m.d.comb += [
                    result.slots[j].value.eq(value),
                    result.slots[j].id.eq(slot.id),
                    result.slots[j].valid.eq(slot.valid & (value != 0)),
                ]
                sat_flags.append(slot.valid & clamped)

        with m.If(out_free):
            m.d.sync += self.o.valid.eq(stage_valid)
            with m.If(stage_valid):
                m.d.sync += self.o.payload.eq(result)
                if sat_flags:
                    m.d.comb += self.sat.eq(sum(sat_flags))
        return m
