"""Board tops: the board's USB UART pins -> Link (UART, framing, command processor) -> DpfmCore.

The core runs in the board's default clock domain (12 MHz on iCEBreaker, 25 MHz on ULX3S), which Amaranth
creates with a power-on reset; nextpnr's Fmax says how much faster a PLL could clock the same netlist.
"""

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io, wiring

from hw.config import CoreConfig
from hw.core import DpfmCore
from hw.link import Link


class BoardTop(Elaboratable):
    """Link + core on a board platform; `uart` resource 0 is the FTDI UART on both supported boards
    (iCEBreaker: FT2232H channel B; ULX3S: the FT231X)."""

    def __init__(self, cfg: CoreConfig, baud: int):
        self.cfg = cfg
        self.baud = baud

    def elaborate(self, platform):
        m = Module()
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buf = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.tx_buf = tx_buf = io.Buffer("o", uart.tx)
        m.submodules.link = link = Link(int(platform.default_clk_frequency), self.baud)
        m.submodules.core = core = DpfmCore(self.cfg)
        wiring.connect(m, link.bus, core.bus)
        m.d.comb += [link.rx.eq(rx_buf.i), tx_buf.o.eq(link.tx)]
        return m
