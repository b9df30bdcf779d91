"""Resource and timing numbers of a nextpnr run, in board-independent names.

On success nextpnr's `--report` JSON has the utilization and the achieved Fmax. When the design does not
fit, nextpnr stops before writing it, but its log (`<top>.tim`) still lists the device utilisation and the
error; that is what a too-large configuration is reported with.
"""

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from golden.errors import DpfmError

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
    clock the board top runs at; `error` is nextpnr's error when the design does not fit.
    """

    board: str
    resources: dict          # name -> Usage
    fmax_mhz: float | None
    clock_mhz: float | None
    bitstream: str | None = None
    error: str | None = None

    @property
    def fits(self) -> bool:
        return self.error is None

    def to_json(self) -> dict:
        out = asdict(self)
        out["resources"] = {k: asdict(v) for k, v in self.resources.items()}
        out["fits"] = self.fits
        return out


def parse_nextpnr_report(path: Path, family: str, board: str, bitstream: str | None = None) -> BuildReport:
    """Read nextpnr's `--report` JSON: utilization per cell type and the achieved Fmax per clock
    (the slowest clock if there are several)."""
    path = Path(path)
    if not path.is_file():
        raise DpfmError(f"nextpnr wrote no report at {path}", "see the build log next to it")
    data = json.loads(path.read_text())
    util = data.get("utilization", {})
    resources = {ours: Usage(int(util[cell]["used"]), int(util[cell]["available"]))
                 for cell, ours in _CELLS[family].items() if cell in util}
    clocks = data.get("fmax", {})
    if not clocks:
        raise DpfmError(f"nextpnr report {path} has no clock", "check that the design has a clock")
    slowest = min(clocks.values(), key=lambda c: c["achieved"])
    return BuildReport(board=board, resources=resources, fmax_mhz=float(slowest["achieved"]),
                       clock_mhz=float(slowest["constraint"]), bitstream=bitstream)


def parse_failed_nextpnr_log(path: Path, family: str, board: str) -> BuildReport | None:
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
    return BuildReport(board=board, resources=resources, fmax_mhz=None, clock_mhz=None, error=errors[0])
