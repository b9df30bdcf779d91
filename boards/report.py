"""Resource and timing numbers of a nextpnr run, in board-independent names.

On success nextpnr's `--report` JSON has the utilization and, per constrained clock, the constraint and the
achieved Fmax; the report keeps the clock the core runs at (`sync`: the board oscillator or a PLL output),
found by its constraint, so a constraint that did not reach nextpnr is an error rather than a wrong Fmax.
When the design does not fit, nextpnr stops before writing it, but its log (`<top>.tim`) still lists the
device utilisation and the error; that is what a too-large configuration is reported with.
"""

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from dpfm.golden.contract.errors import DpfmError

# nextpnr cell type -> our name, per FPGA family.
_CELLS = {
    "ice40": {"ICESTORM_LC": "luts", "ICESTORM_DSP": "dsps", "ICESTORM_RAM": "bram", "ICESTORM_SPRAM": "spram"},
    "ecp5": {"TRELLIS_COMB": "luts", "MULT18X18D": "dsps", "DP16KD": "bram", "TRELLIS_FF": "ffs"},
}
_LOG_LINE = re.compile(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")


@dataclass
class Usage:
    used: int
    available: int


@dataclass
class BuildReport:
    """What one board build used and how fast it can run.

    `fmax_mhz` is the achieved Fmax of the core's clock (None when placement failed); `clock_mhz` is the
    clock the core runs at (exact; nextpnr's constraint is that, rounded to whole picoseconds) and
    `clock_source` where it comes from (board oscillator or PLL); `error` is nextpnr's error when the
    design does not fit.
    """

    board: str
    resources: dict          # name -> Usage
    fmax_mhz: float | None
    clock_mhz: float | None
    bitstream: str | None = None
    error: str | None = None
    clock_source: str | None = None

    @property
    def fits(self) -> bool:
        return self.error is None

    @property
    def timing_met(self) -> bool:
        """The core's clock meets its constraint (False when placement failed)."""
        return self.fits and self.fmax_mhz >= self.clock_mhz

    def to_json(self) -> dict:
        out = asdict(self)
        out["resources"] = {k: asdict(v) for k, v in self.resources.items()}
        out["fits"] = self.fits
        out["timing_met"] = self.timing_met
        return out


#: Relative tolerance when matching nextpnr's constraint to the planned clock: nextpnr keeps periods in whole
#: picoseconds (45 MHz -> 22222 ps -> 45.0005 MHz).
_CLOCK_MATCH = 1e-3


def parse_nextpnr_report(path: Path, family: str, board: str, run_clock_hz: int, clock_source: str | None = None,
                         bitstream: str | None = None) -> BuildReport:
    """Read nextpnr's `--report` JSON: utilization per cell type, and the Fmax of the clock constrained at
    `run_clock_hz` (the core's `sync`; the slowest such net if several carry that constraint)."""
    path = Path(path)
    if not path.is_file():
        raise DpfmError(f"nextpnr wrote no report at {path}", "see the build log next to it")
    data = json.loads(path.read_text())
    util = data.get("utilization", {})
    resources = {ours: Usage(int(util[cell]["used"]), int(util[cell]["available"]))
                 for cell, ours in _CELLS[family].items() if cell in util}
    clocks = data.get("fmax", {})
    run_mhz = run_clock_hz / 1e6
    ours = [c for c in clocks.values() if abs(c["constraint"] - run_mhz) <= _CLOCK_MATCH * run_mhz]
    if not ours:
        found = ", ".join(f"{name} at {c['constraint']:g} MHz" for name, c in clocks.items()) or "none"
        raise DpfmError(f"nextpnr report {path} has no clock constrained at {run_mhz:g} MHz (clocks: {found})",
                        "check that the sync domain's clock constraint reaches nextpnr (see the .lpf/.pcf)")
    slowest = min(ours, key=lambda c: c["achieved"])
    return BuildReport(board=board, resources=resources, fmax_mhz=float(slowest["achieved"]),
                       clock_mhz=run_mhz, bitstream=bitstream, clock_source=clock_source)


def parse_failed_nextpnr_log(path: Path, family: str, board: str,
                             clock_source: str | None = None) -> BuildReport | None:
    """The utilisation and first error of a nextpnr run that failed, or None if the log has neither."""
    path = Path(path)
    if not path.is_file():
        return None
    text = path.read_text(errors="replace")
    cells = _CELLS[family]
    resources = {}
    for cell, used, available in _LOG_LINE.findall(text):
        if cell in cells:
            resources[cells[cell]] = Usage(int(used), int(available))  # the last listing wins (after packing)
    errors = [line.strip() for line in text.splitlines() if line.startswith("ERROR:")]
    if not errors:
        return None
    return BuildReport(board=board, resources=resources, fmax_mhz=None, clock_mhz=None, error=errors[0],
                       clock_source=clock_source)
