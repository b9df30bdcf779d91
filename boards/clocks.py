"""How each board makes the `sync` domain the link and core run in, and the UART divisor it gives.

A board either runs `sync` straight from its oscillator (`BoardClock`: Amaranth's platform creates the
domain) or from a PLL: the ULX3S's 25 MHz has no integer divisor within 2% of 3 Mbaud, so an ECP5 PLL
(`Ecp5Pll`) multiplies it to 45 MHz = 15 x 3 Mbaud. The iCEBreaker's streamed cores run from its 12 MHz
oscillator, since the UART bounds their throughput; a resident core (docs/ARITHMETIC.md 7) bounds its own,
so it runs from the iCE40 PLL (`Ice40Pll`) at 18 MHz = 6 x 3 Mbaud: the next multiple, 21 MHz, left the
UP5K resident core (nextpnr Fmax 22.2-24.1 MHz over its builds) 6% in one of them, too little to rely on.
The PLLs' dividers are checked here, in exact arithmetic, against the vendors' limits (Lattice TN1263 for
the ECP5, as Project Trellis' `ecppll` uses them; the iCE40 sysCLOCK PLL guide, as icestorm's `icepll`
does), and every board's UART divisor must be exact, so host and board agree on the bit time to the cycle.
"""

from dataclasses import dataclass
from fractions import Fraction

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from dpfm.golden.contract.errors import DpfmError
from dpfm.hw.uart import bit_divisor

# ECP5 EHXPLLL limits (TN1263; the same numbers as ecppll's INPUT/OUTPUT/PFD/VCO_MIN/MAX), in Hz.
CLKI_RANGE = (8_000_000, 400_000_000)
CLKOP_RANGE = (10_000_000, 400_000_000)
PFD_RANGE = (3_125_000, 400_000_000)
VCO_RANGE = (400_000_000, 800_000_000)
DIVIDER_RANGE = (1, 128)    # CLKI_DIV, CLKFB_DIV, CLKOP_DIV (TN1263)

#: Stages of the reset synchronizer after lock: the sync reset rises asynchronously whenever LOCK is low and
#: falls on the RESET_STAGES-th sync edge after lock, so no flop sees reset release near its clock edge.
RESET_STAGES = 2


def _mhz(hz) -> str:
    return f"{float(hz) / 1e6:g} MHz"


def exact_bit_divisor(clk_hz, baud: int) -> int:
    """Cycles per UART bit at `clk_hz`, refusing a clock that is not an exact multiple of `baud`."""
    clk_hz = Fraction(clk_hz)
    if clk_hz.denominator != 1 or clk_hz.numerator % baud:
        raise DpfmError(f"{_mhz(clk_hz)} is not a whole multiple of {baud} baud",
                        f"run sync at n x {baud} Hz (a PLL or a baud rate that divides the clock)")
    return bit_divisor(clk_hz.numerator, baud)


@dataclass(frozen=True)
class BoardClock:
    """`sync` is the board's default oscillator, with the platform's power-on reset."""

    def sync_hz(self, platform) -> int:
        return int(platform.default_clk_frequency)

    def describe(self, platform) -> str:
        return f"board clock {platform.default_clk} {_mhz(self.sync_hz(platform))}"

    def add_sync(self, m, platform) -> None:
        """Nothing to add: Amaranth's platform creates `sync` from the default clock when it is missing."""


class _PllPlan:
    """What the PLL plans share: the output, a whole number of Hz from the board's own oscillator; its
    description; and `sync` defined in the top module `m` (where Amaranth wants a domain its whole design
    uses), its clock and reset driven by the family's elaboratable (`_sync`)."""

    FAMILY = ""
    #: How to pick dividers with a whole-Hz output, for the error.
    WHOLE_HZ_FIX = ""

    def _check_dividers(self, limits) -> None:
        """Each `(name, lo, hi)` of `limits`: the field `name` is an integer in lo..hi."""
        for name, lo, hi in limits:
            value = getattr(self, name)
            if not isinstance(value, int) or not lo <= value <= hi:
                raise DpfmError(f"PLL {name} {value!r} is outside the {self.FAMILY} range {lo}..{hi}",
                                f"pick an integer {name} in {lo}..{hi}")

    def _check_ranges(self, ranges, fix: str) -> None:
        for name, value, (lo, hi) in ranges:
            if not lo <= value <= hi:
                raise DpfmError(f"PLL {name} {_mhz(value)} ({self.dividers}) is outside the {self.FAMILY} range "
                                f"{_mhz(lo)}..{_mhz(hi)}", fix)

    def sync_hz(self, platform) -> int:
        """The PLL output, which must be a whole number of Hz from the platform's own oscillator."""
        board_hz = int(platform.default_clk_frequency)
        if board_hz != self.input_hz:
            raise DpfmError(f"PLL planned for a {_mhz(self.input_hz)} input but the board clock is "
                            f"{_mhz(board_hz)}", f"set {type(self).__name__}.input_hz to the board's oscillator")
        if self.output_hz.denominator != 1:
            raise DpfmError(f"PLL output {float(self.output_hz)} Hz is not a whole number of Hz", self.WHOLE_HZ_FIX)
        return self.output_hz.numerator

    def describe(self, platform) -> str:
        return (f"{self.FAMILY} PLL {_mhz(self.sync_hz(platform))} from {platform.default_clk} "
                f"{_mhz(self.input_hz)} ({self.dividers}, VCO {_mhz(self.vco_hz)})")

    def add_sync(self, m, platform) -> None:
        m.domains.sync = ClockDomain("sync")
        m.submodules.clocks = self._sync(self.sync_hz(platform))


@dataclass(frozen=True)
class Ecp5Pll(_PllPlan):
    """`sync` = CLKOP of an EHXPLLL fed by the board oscillator (`input_hz`), with feedback from CLKOP:
    PFD = input / clki_div, CLKOP = PFD x clkfb_div, VCO = CLKOP x clkop_div. Construction checks the limits
    and raises DpfmError for dividers the ECP5 cannot run."""

    FAMILY = "ECP5"
    WHOLE_HZ_FIX = "pick dividers with input x clkfb_div divisible by clki_div"

    input_hz: int
    clki_div: int
    clkfb_div: int
    clkop_div: int

    def __post_init__(self):
        self._check_dividers((name, *DIVIDER_RANGE) for name in ("clki_div", "clkfb_div", "clkop_div"))
        self._check_ranges((("input clock", self.input_hz, CLKI_RANGE), ("PFD frequency", self.pfd_hz, PFD_RANGE),
                            ("VCO frequency", self.vco_hz, VCO_RANGE), ("output clock", self.output_hz, CLKOP_RANGE)),
                           "pick clki_div / clkfb_div / clkop_div that keep PFD, VCO and output in range")

    @property
    def dividers(self) -> str:
        return f"CLKI_DIV={self.clki_div} CLKFB_DIV={self.clkfb_div} CLKOP_DIV={self.clkop_div}"

    @property
    def pfd_hz(self) -> Fraction:
        return Fraction(self.input_hz, self.clki_div)

    @property
    def output_hz(self) -> Fraction:
        return self.pfd_hz * self.clkfb_div

    @property
    def vco_hz(self) -> Fraction:
        return self.output_hz * self.clkop_div

    def _sync(self, sync_hz: int):
        return Ecp5PllSync(self, sync_hz)


class Ecp5PllSync(Elaboratable):
    """Drives `sync` from the PLL: EHXPLLL on the default clock pin, its output constrained for nextpnr,
    and the domain reset held from configuration until the PLL locks (then released synchronously)."""

    def __init__(self, pll: Ecp5Pll, sync_hz: int):
        self.pll = pll
        self.sync_hz = sync_hz

    def elaborate(self, platform):
        pll = self.pll
        m = Module()
        clk_pin = platform.request(platform.default_clk, dir="-")
        m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_pin)
        pll_clk = Signal()
        locked = Signal()
        m.submodules.pll = Instance(
            "EHXPLLL",
            # Diamond's frequency annotations, and the loop-filter settings ecppll writes: nextpnr takes them
            # from these attributes and writes 0 (a loop filter that does not lock) when they are missing.
            a_FREQUENCY_PIN_CLKI=f"{pll.input_hz / 1e6:g}",
            a_FREQUENCY_PIN_CLKOP=f"{self.sync_hz / 1e6:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_FEEDBK_PATH="CLKOP",
            p_CLKI_DIV=pll.clki_div, p_CLKFB_DIV=pll.clkfb_div,
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=pll.clkop_div,
            # No phase shift: CPHASE = DIV - 1, as LiteX's ECP5PLL sets it for 0 degrees.
            p_CLKOP_CPHASE=pll.clkop_div - 1, p_CLKOP_FPHASE=0,
            i_CLKI=clk_buf.i, i_CLKFB=pll_clk, o_CLKOP=pll_clk, o_LOCK=locked,
            i_RST=0, i_STDBY=0, i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1,
            i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0)
        platform.add_clock_constraint(pll_clk, self.sync_hz)
        m.d.comb += ClockSignal("sync").eq(pll_clk)
        m.submodules.reset_sync = ResetSynchronizer(~locked, domain="sync", stages=RESET_STAGES)
        return m


# iCE40 SB_PLL40 limits with simple feedback (iCE40 sysCLOCK PLL design guide, FPGA-TN-02052; the numbers
# icestorm's icepll checks), in Hz.
ICE40_REF_RANGE = (10_000_000, 133_000_000)
ICE40_PFD_RANGE = (10_000_000, 133_000_000)
ICE40_VCO_RANGE = (533_000_000, 1_066_000_000)
ICE40_OUT_RANGE = (16_000_000, 275_000_000)
#: The SB_PLL40 divider fields, (name, lowest, highest): 4-bit DIVR, 7-bit DIVF, DIVQ 1..6, 3-bit FILTER_RANGE.
ICE40_DIVIDERS = (("divr", 0, 15), ("divf", 0, 127), ("divq", 1, 6), ("filter_range", 0, 7))
#: Time from the PLL's lock to the release of `sync`'s reset: more than the 3 us for which the iCE40's block
#: RAMs read as zeroes after configuration (see Amaranth's SiliconBluePlatform), with margin.
ICE40_POR_SECONDS = 15e-6


@dataclass(frozen=True)
class Ice40Pll(_PllPlan):
    """`sync` = SB_PLL40_PAD fed by the board oscillator's pad (`input_hz`), simple feedback: PFD = input /
    (divr + 1), VCO = PFD x (divf + 1), output = VCO / 2**divq. `filter_range` is icepll's for that PFD.
    Construction checks the limits and raises DpfmError for dividers the iCE40 cannot run."""

    FAMILY = "iCE40"
    WHOLE_HZ_FIX = "pick dividers whose output is a whole number of Hz"

    input_hz: int
    divr: int
    divf: int
    divq: int
    filter_range: int

    def __post_init__(self):
        self._check_dividers(ICE40_DIVIDERS)
        self._check_ranges((("input clock", self.input_hz, ICE40_REF_RANGE),
                            ("PFD frequency", self.pfd_hz, ICE40_PFD_RANGE),
                            ("VCO frequency", self.vco_hz, ICE40_VCO_RANGE),
                            ("output clock", self.output_hz, ICE40_OUT_RANGE)),
                           "pick dividers with icepll -i IN -o OUT")

    @property
    def dividers(self) -> str:
        return f"DIVR={self.divr} DIVF={self.divf} DIVQ={self.divq}"

    @property
    def pfd_hz(self) -> Fraction:
        return Fraction(self.input_hz, self.divr + 1)

    @property
    def vco_hz(self) -> Fraction:
        return self.pfd_hz * (self.divf + 1)

    @property
    def output_hz(self) -> Fraction:
        return self.vco_hz / (1 << self.divq)

    def _sync(self, sync_hz: int):
        return Ice40PllSync(self, sync_hz)


class Ice40PllSync(Elaboratable):
    """Drives `sync` from SB_PLL40_PAD on the default clock's pad (no input buffer: the PLL takes the pad
    itself), its output constrained for nextpnr; the domain reset is held until the PLL has been locked for
    ICE40_POR_SECONDS (the block RAMs' start-up time), then released synchronously."""

    def __init__(self, pll: Ice40Pll, sync_hz: int):
        self.pll = pll
        self.sync_hz = sync_hz

    def elaborate(self, platform):
        pll = self.pll
        m = Module()
        clk_pin = platform.request(platform.default_clk, dir="-")
        pll_clk = Signal()
        locked = Signal()
        m.submodules.pll = Instance(
            "SB_PLL40_PAD", p_FEEDBACK_PATH="SIMPLE", p_PLLOUT_SELECT="GENCLK",
            p_DIVR=pll.divr, p_DIVF=pll.divf, p_DIVQ=pll.divq, p_FILTER_RANGE=pll.filter_range,
            i_PACKAGEPIN=clk_pin.io, i_RESETB=1, i_BYPASS=0, o_PLLOUTGLOBAL=pll_clk, o_LOCK=locked)
        platform.add_clock_constraint(pll_clk, self.sync_hz)
        m.d.comb += ClockSignal("sync").eq(pll_clk)
        # the start-up timer counts in a reset-less domain of the PLL clock, from 0 whenever the lock is lost
        m.domains.pll_por = ClockDomain("pll_por", reset_less=True, local=True)
        m.d.comb += ClockSignal("pll_por").eq(pll_clk)
        delay = int(ICE40_POR_SECONDS * self.sync_hz)
        timer = Signal(range(delay + 1))
        with m.If(~locked):
            m.d.pll_por += timer.eq(0)
        with m.Elif(timer != delay):
            m.d.pll_por += timer.eq(timer + 1)
        m.submodules.reset_sync = ResetSynchronizer(timer != delay, domain="sync", stages=RESET_STAGES)
        return m


#: How `sync` is made, per board (boards.targets names), for streamed cores; a board not listed runs on its
#: default clock.
SYNC_CLOCKS = {
    "ulx3s-85f": Ecp5Pll(input_hz=25_000_000, clki_div=5, clkfb_div=9, clkop_div=12),   # 45 MHz, VCO 540
}
#: ... and for resident cores (docs/ARITHMETIC.md 7), which the UART no longer bounds.
RESIDENT_SYNC_CLOCKS = {
    **SYNC_CLOCKS,
    "icebreaker": Ice40Pll(input_hz=12_000_000, divr=0, divf=47, divq=5, filter_range=1),   # 18 MHz, VCO 576
}


def sync_clock(board: str, cfg=None):
    """The clock plan of `board` for a core of `cfg` (a `CoreConfig`; None: a streamed core)."""
    plans = RESIDENT_SYNC_CLOCKS if cfg is not None and cfg.resident else SYNC_CLOCKS
    return plans.get(board, BoardClock())
