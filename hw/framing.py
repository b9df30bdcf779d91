"""SLIP frame decoder/encoder and the CRC-16 step, in gateware (golden/contract/wire.py defines the format).

The decoder turns the received byte stream into tokens: frame bytes, then one end token per non-empty frame
carrying `bad` if the frame had an invalid escape. The encoder does the reverse for replies. Both pass one
token per cycle with no buffering, so they cost a few LUTs and never hold a frame.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from dpfm.golden.contract import wire as protocol

#: A decoded frame byte (`end` = 0), or the end of a non-empty frame (`end` = 1; `bad` = invalid escape seen).
RxToken = data.StructLayout({"data": 8, "end": 1, "bad": 1})
#: A reply frame byte to send (`end` = 0), or the end of the reply frame (`end` = 1).
TxToken = data.StructLayout({"data": 8, "end": 1})


def _crc16_step_terms():
    """For each bit of the next CRC register, the set of inputs it XORs: ("c", i) crc bit i, ("b", i) byte bit
    i. The CRC step is linear over GF(2), so running the bit-serial algorithm on sets of symbols gives it."""
    c = [{("c", i)} for i in range(16)]
    for i in range(8):
        c[8 + i] = c[8 + i] ^ {("b", i)}
    for _ in range(8):
        top = c[15]
        c = [set()] + c[:15]
        for bit in range(16):
            if protocol.CRC_POLY >> bit & 1:
                c[bit] = c[bit] ^ top
    return c


_CRC_TERMS = _crc16_step_terms()


def crc16_step(crc, byte):
    """The CRC-16/CCITT-FALSE register after shifting in `byte`: one XOR tree per bit, matching
    `golden.contract.wire.crc16` one byte at a time."""
    src = {"c": crc, "b": byte}
    bits = []
    for terms in _CRC_TERMS:
        expr = Const(0, 1)
        for kind, i in sorted(terms):
            expr = expr ^ src[kind][i]
        bits.append(expr)
    return Cat(*bits)


class SlipDecoder(wiring.Component):
    """Bytes in, `RxToken`s out. Empty frames (END END, or a lone END) produce nothing."""

    i: In(stream.Signature(8))
    o: Out(stream.Signature(RxToken))

    def elaborate(self, platform):
        m = Module()
        esc = Signal()       # previous byte was ESC
        bad = Signal()       # this frame had an invalid escape
        nonempty = Signal()  # this frame has produced a byte
        b = self.i.payload
        emit = Signal()
        take = self.i.valid & self.i.ready

        with m.If(b == protocol.END):
            m.d.comb += [emit.eq(nonempty | bad | esc), self.o.payload.end.eq(1),
                         self.o.payload.bad.eq(bad | esc)]
            with m.If(take):
                m.d.sync += [esc.eq(0), bad.eq(0), nonempty.eq(0)]
        with m.Elif(esc):
            valid_escape = (b == protocol.ESC_END) | (b == protocol.ESC_ESC)
            m.d.comb += [emit.eq(valid_escape),
                         self.o.payload.data.eq(Mux(b == protocol.ESC_END, protocol.END, protocol.ESC))]
            with m.If(take):
                m.d.sync += [esc.eq(0), nonempty.eq(nonempty | valid_escape), bad.eq(bad | ~valid_escape)]
        with m.Elif(b == protocol.ESC):
            with m.If(take):
                m.d.sync += esc.eq(1)
        with m.Else():
            m.d.comb += [emit.eq(1), self.o.payload.data.eq(b)]
            with m.If(take):
                m.d.sync += nonempty.eq(1)

        m.d.comb += [self.o.valid.eq(self.i.valid & emit), self.i.ready.eq(~emit | self.o.ready)]
        return m


class SlipEncoder(wiring.Component):
    """`TxToken`s in, bytes out: END and ESC inside a frame become two-byte escapes; an end token sends END."""

    i: In(stream.Signature(TxToken))
    o: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        second = Signal()    # the ESC of a two-byte escape has been sent
        t = self.i.payload
        special = ~t.end & ((t.data == protocol.END) | (t.data == protocol.ESC))
        m.d.comb += self.o.valid.eq(self.i.valid)

        with m.If(t.end):
            m.d.comb += [self.o.payload.eq(protocol.END), self.i.ready.eq(self.o.ready)]
        with m.Elif(special & ~second):
            m.d.comb += self.o.payload.eq(protocol.ESC)
            with m.If(self.o.valid & self.o.ready):
                m.d.sync += second.eq(1)
        with m.Elif(special):
            m.d.comb += [self.o.payload.eq(Mux(t.data == protocol.END, protocol.ESC_END, protocol.ESC_ESC)),
                         self.i.ready.eq(self.o.ready)]
            with m.If(self.o.valid & self.o.ready):
                m.d.sync += second.eq(0)
        with m.Else():
            m.d.comb += [self.o.payload.eq(t.data), self.i.ready.eq(self.o.ready)]
        return m
