"""Board tops: the board's USB UART pins -> Link (UART, framing, command processor) -> DpfmCore.

Link and core run in `sync`, made as `boards.clocks` says for the board: the default oscillator with the
platform's power-on reset (iCEBreaker, 12 MHz = 4 x 3 Mbaud), or an ECP5 PLL whose lock releases the reset
(ULX3S, 25 MHz -> 45 MHz = 15 x 3 Mbaud). The UART divisor must be exact at that clock.
"""

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io, wiring

from dpfm.hw.config import CoreConfig
from dpfm.hw.core import DpfmCore
from dpfm.hw.link import Link

from dpfm.boards.clocks import BoardClock, exact_bit_divisor


class BoardTop(Elaboratable):
    """Link + core on a board platform; `uart` resource 0 is the FTDI UART on both supported boards
    (iCEBreaker: FT2232H channel B; ULX3S: the FT231X). `clock` is a `boards.clocks` plan for `sync`."""

    def __init__(self, cfg: CoreConfig, baud: int, clock=BoardClock()):
        self.cfg = cfg
        self.baud = baud
        self.clock = clock

    def elaborate(self, platform):
        sync_hz = self.clock.sync_hz(platform)
        exact_bit_divisor(sync_hz, self.baud)   # refuse an inexact bit time before building anything
        m = Module()
        self.clock.add_sync(m, platform)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buf = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.tx_buf = tx_buf = io.Buffer("o", uart.tx)
        m.submodules.link = link = Link(sync_hz, self.baud)
        m.submodules.core = core = DpfmCore(self.cfg, baud=self.baud)
        wiring.connect(m, link.bus, core.bus)
        m.d.comb += [link.rx.eq(rx_buf.i), tx_buf.o.eq(link.tx)]
        return m
