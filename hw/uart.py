"""8N1 UART PHY: a receiver with a 2-FF synchronizer and mid-bit sampling, and a transmitter.

Both run on a fixed integer number of clock cycles per bit (`bit_divisor`), a few cycles in simulation and
e.g. 100 MHz / 3 Mbaud = 33 cycles on a board. Bytes are LSB first, one start bit (0), one stop bit (1): the
character of `golden.uart.frame_bits`, the PHY's model.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from dpfm.golden.contract.errors import DpfmError

#: Fewest cycles per bit the receiver handles: start detection through the synchronizer (2 cycles) must
#: leave the sample point inside the bit.
MIN_DIVISOR = 4
#: Largest baud-rate error (from rounding the divisor) an 8N1 frame tolerates with margin on both ends.
MAX_BAUD_ERROR = 0.02


def bit_divisor(clk_freq: int, baud: int) -> int:
    """Clock cycles per bit for `baud` at `clk_freq`; refuses rates the PHY cannot meet."""
    if clk_freq <= 0 or baud <= 0:
        raise DpfmError(f"clock {clk_freq} Hz and baud rate {baud} must be positive", "give positive rates")
    div = round(clk_freq / baud)
    if div < MIN_DIVISOR:
        raise DpfmError(f"{clk_freq} Hz gives {clk_freq / baud:.2f} cycles per bit at {baud} baud, the UART "
                        f"needs >= {MIN_DIVISOR}", f"use a baud rate <= {clk_freq // MIN_DIVISOR}")
    error = abs(clk_freq / div - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise DpfmError(f"{baud} baud at {clk_freq} Hz is off by {error:.1%} (divisor {div})",
                        f"pick a baud rate close to {clk_freq} / n for an integer n")
    return div


def _checked_divisor(divisor: int) -> int:
    if divisor < MIN_DIVISOR:
        raise ValueError(f"divisor {divisor} < {MIN_DIVISOR}")
    return divisor


class UartRx(wiring.Component):
    """Receiver. `rx` is the asynchronous pin; each received byte appears on `o` (valid until taken or
    replaced by the next byte: the consumer must keep up, e.g. through a FIFO). A byte whose stop bit is 0 is
    dropped and pulses `frame_error`; the receiver then waits for the line to go idle (high) again."""

    rx: In(1, init=1)
    o: Out(stream.Signature(8))
    frame_error: Out(1)

    def __init__(self, divisor: int):
        self.divisor = _checked_divisor(divisor)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)

        count = Signal(range(d))
        bits = Signal(range(8))
        shift = Signal(8)

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        m.d.sync += self.frame_error.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += count.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(count != 0):
                    m.d.sync += count.eq(count - 1)
                with m.Elif(line):             # a glitch, not a start bit
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [count.eq(d - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(count != 0):
                    m.d.sync += count.eq(count - 1)
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], line)),
                                 count.eq(d - 1), bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(count != 0):
                    m.d.sync += count.eq(count - 1)
                with m.Elif(line):
                    m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += self.frame_error.eq(1)
                    m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    """Transmitter: takes a byte from `i` when idle and shifts out start, 8 data bits, stop. `tx` idles
    high (also during reset, so the host never sees a spurious start bit)."""

    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor: int):
        self.divisor = _checked_divisor(divisor)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        shift = Signal(10, init=0x3FF)
        bits = Signal(range(11))
        count = Signal(range(d))

        m.d.comb += [self.tx.eq(shift[0]), self.i.ready.eq(bits == 0)]
        with m.If(bits == 0):
            with m.If(self.i.valid):
                m.d.sync += [shift.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))), bits.eq(10), count.eq(d - 1)]
        with m.Elif(count != 0):
            m.d.sync += count.eq(count - 1)
        with m.Else():
            m.d.sync += [shift.eq(Cat(shift[1:], Const(1, 1))), bits.eq(bits - 1), count.eq(d - 1)]
        return m
