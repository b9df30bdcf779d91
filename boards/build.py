"""Build (and optionally program) the board top for one core configuration.

Amaranth writes the build scripts into `build/<board>/` and runs them with the target's tools; nextpnr is
asked for its JSON report, which `boards.report` turns into LUTs / DSPs / block RAM / Fmax of the clock the
core runs at (`boards.clocks`: the board oscillator or a PLL output).
"""

import os
import shutil
import subprocess
from pathlib import Path

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import write_text
from dpfm.hw.config import CoreConfig
from dpfm.hw.identity import core_identity

from dpfm.boards.clocks import sync_clock
from dpfm.boards.report import BuildReport, parse_failed_nextpnr_log, parse_nextpnr_report
from dpfm.boards.targets import get_target

TOP_NAME = "dpfm_top"
REPORT_NAME = "nextpnr_report.json"
#: The identity text of the core whose bitstream the build directory holds (written after a build that fits).
IDENTITY_NAME = "dpfm_identity.txt"


def build_board(board: str, cfg: CoreConfig, build_dir: Path | None = None, *, program: bool = False,
                top=None) -> BuildReport:
    """Synthesize, place, route and pack `cfg`'s core for `board`; return its report.

    A design that does not fit still returns a report (`fits` false, nextpnr's error and utilisation);
    other tool failures raise `DpfmError`.
    `top` replaces the board top (used by the flow smoke test); `program` then loads the bitstream with the
    board's programmer.
    """
    from dpfm.boards.top import BoardTop

    target = get_target(board)
    cfg.check_fits(board)
    build_dir = Path(build_dir or Path("build") / board).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, **target.env())
    platform = target.platform()
    overrides = dict(target.overrides)
    overrides["nextpnr_opts"] = (overrides.get("nextpnr_opts", "") + f" --report {REPORT_NAME}").strip()
    clock = sync_clock(board, cfg)
    run_clock_hz, clock_source = clock.sync_hz(platform), clock.describe(platform)
    design = top if top is not None else BoardTop(cfg, baud=target.baud, clock=clock)
    plan = platform.build(design, name=TOP_NAME, build_dir=str(build_dir), do_build=False, **overrides)
    try:
        products = plan.execute_local(str(build_dir), env=env)
    except subprocess.CalledProcessError as exc:
        failed = parse_failed_nextpnr_log(build_dir / f"{TOP_NAME}.tim", target.family, board, clock_source)
        if failed is not None:
            if program:
                raise DpfmError(f"the design does not fit the {board} ({failed.error})",
                                "nothing to program: lower K, lanes or max_batch")
            return failed  # placement/routing failed: report what it needed and why
        raise DpfmError(f"the {board} build failed (exit {exc.returncode})",
                        f"see the logs in {build_dir}") from None
    bitstream = build_dir / f"{TOP_NAME}.{target.bitstream_ext}"
    report = parse_nextpnr_report(build_dir / REPORT_NAME, target.family, board, run_clock_hz, clock_source,
                                  str(bitstream) if bitstream.is_file() else None)
    if top is None and bitstream.is_file():
        write_text(build_dir / IDENTITY_NAME, core_identity(cfg, target.baud).text())
    if program:
        program_board(target, platform, products)
    return report


def built_identity(build_dir: Path) -> str | None:
    """The identity text of the core whose bitstream `build_dir` holds, or None (no finished build there)."""
    path = Path(build_dir) / IDENTITY_NAME
    return path.read_text() if path.is_file() else None


def program_built(board: str, build_dir: Path) -> None:
    """Load the bitstream of an earlier build in `build_dir` onto the board."""
    from amaranth.build.run import LocalBuildProducts
    target = get_target(board)
    program_board(target, target.platform(), LocalBuildProducts(str(Path(build_dir).resolve())))


def program_board(target, platform, products) -> None:
    """Load the bitstream; a missing programmer or board is a user-facing error, not a traceback."""
    tool = os.environ.get(target.programmer.upper(), target.programmer)
    if shutil.which(tool) is None:
        raise DpfmError(f"programmer '{target.programmer}' is not installed",
                        f"install it, or program {products} by hand")
    try:
        platform.toolchain_program(products, TOP_NAME)
    except subprocess.CalledProcessError:
        raise DpfmError(f"{target.programmer} could not program the {target.name} (no board found?)",
                        "connect the board over USB and check its permissions (udev rules)") from None
