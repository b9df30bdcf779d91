"""The host link: UART pins in, word-bus initiator out (UART PHY -> SLIP -> command processor -> SLIP -> UART).

The board top connects `Link.bus` to the training core and `rx`/`tx` to the board's USB UART; the
co-simulation connects the same pins to a TCP socket. golden/contract/wire.py describes what travels on the wire.
`FrameLink` is the same link without the PHY (byte streams), which the frame-level testbench drives directly.
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from dpfm.hw.bus import CoreBusSignature
from dpfm.hw.cmdproc import CommandProcessor
from dpfm.hw.framing import SlipDecoder, SlipEncoder
from dpfm.hw.uart import UartRx, UartTx, bit_divisor

#: Received bytes buffered while the command processor executes or answers a frame. The host keeps one
#: command in flight, so this only holds line noise or an early retry; when it is full, bytes are dropped
#: and the damaged frame fails its CRC.
RX_FIFO_DEPTH = 16


class FrameLink(wiring.Component):
    """Wire bytes in (`i`), reply bytes out (`o`), bus transactions to the core."""

    i: In(stream.Signature(8))
    o: Out(stream.Signature(8))
    bus: Out(CoreBusSignature())

    def elaborate(self, platform):
        m = Module()
        m.submodules.decoder = decoder = SlipDecoder()
        m.submodules.cmdproc = cmdproc = CommandProcessor()
        m.submodules.encoder = encoder = SlipEncoder()
        wiring.connect(m, wiring.flipped(self.i), decoder.i)
        wiring.connect(m, decoder.o, cmdproc.i)
        wiring.connect(m, cmdproc.o, encoder.i)
        wiring.connect(m, encoder.o, wiring.flipped(self.o))
        wiring.connect(m, cmdproc.bus, wiring.flipped(self.bus))
        return m


class Link(wiring.Component):
    """`FrameLink` behind an 8N1 UART at `baud` (clock `clk_freq`; see `hw.uart.bit_divisor`)."""

    rx: In(1, init=1)
    tx: Out(1, init=1)
    bus: Out(CoreBusSignature())

    def __init__(self, clk_freq: int, baud: int):
        self.divisor = bit_divisor(clk_freq, baud)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = uart_rx = UartRx(self.divisor)
        m.submodules.uart_tx = uart_tx = UartTx(self.divisor)
        m.submodules.rx_fifo = rx_fifo = SyncFIFOBuffered(width=8, depth=RX_FIFO_DEPTH)
        m.submodules.frames = frames = FrameLink()

        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]
        wiring.connect(m, uart_rx.o, rx_fifo.w_stream)
        wiring.connect(m, rx_fifo.r_stream, frames.i)
        wiring.connect(m, frames.o, uart_tx.i)
        wiring.connect(m, frames.bus, wiring.flipped(self.bus))
        return m
