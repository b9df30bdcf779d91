"""`dpfm bench mutants`: does the test suite kill every named mutant of the gateware, the golden model and the host?

A mutant is one small, deliberate bug (a flipped comparison, rounding half down, wrap-around instead of
saturation, a wrong CRC polynomial, an ignored check), written as one exact substitution in one source file,
with the tests that must fail because of it. Each is applied in a scratch copy of the sources (never in the
working tree), the tests run there (`PYTHONPATH` puts the copy's `dpfm` ahead of the installed one), and the
mutant is *killed* when they fail. Before any mutant, each selection of tests must pass on the unmutated
copy, or a kill would mean nothing. A substitution that no longer matches its file exactly once is an error: the list
below must follow the code.

The gateware mutants simulate Verilog and take minutes; `--fast` runs only the mutants whose tests are pure
Python (tests/test_mutants.py runs those in CI). Writes a JSON and prints a table with the kill rate.
"""

import contextlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import check_writable, write_json

#: The packages of the `dpfm` namespace, copied into the scratch tree.
PACKAGES = ("golden", "hw", "sim", "boards", "host")


@dataclass(frozen=True)
class Mutant:
    """`old` -> `new` in `path` (relative to the repository root); `tests` are pytest arguments that must fail.
    `fast`: the tests are pure Python (seconds)."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    fast: bool = False


MUTANTS = (
    # --- golden model (the arithmetic contract's reference) ---------------------------------------------
    Mutant("golden-tie-rule", "golden/toper.py", "return k1 > k2 or (k1 == k2 and id1 < id2)",
           "return k1 > k2 or (k1 == k2 and id1 > id2)", ("tests/golden/test_toper_model.py",), fast=True),
    Mutant("golden-round-half-down", "golden/fixedpoint.py", "return (int(raw) + (1 << (shift - 1))) >> shift",
           "return (int(raw) + (1 << (shift - 1)) - 1) >> shift", ("tests/golden/test_fixedpoint.py",), fast=True),
    Mutant("golden-saturate-asymmetric", "golden/fixedpoint.py", "clipped = np.clip(arr, fmt.min_raw, fmt.max_raw)",
           "clipped = np.clip(arr, fmt.min_raw - 1, fmt.max_raw)", ("tests/golden/test_fixedpoint.py",), fast=True),
    Mutant("golden-saturation-uncounted", "golden/fixedpoint.py",
           "counter.count += int(np.count_nonzero(clipped != arr))", "counter.count += 0",
           ("tests/golden/test_fixedpoint.py", "tests/golden/test_fixed_mlp.py"), fast=True),
    Mutant("golden-dither-direct-class", "golden/dither.py", "return np.where(direct, h != 0, h == 3)",
           "return h == 3", ("tests/golden/test_dither.py",), fast=True),
    Mutant("golden-activation-offset", "golden/activation.py", "(z & ((1 << shift) - 1)) - (1 << (shift - 1))",
           "(z & ((1 << shift) - 1))", ("tests/golden/test_activation_model.py",), fast=True),
    Mutant("wire-crc-polynomial", "golden/contract/wire.py", "CRC_POLY = 0x1021", "CRC_POLY = 0x1023",
           ("tests/host/test_protocol.py",), fast=True),
    # --- host ------------------------------------------------------------------------------------------
    Mutant("host-identity-unchecked", "host/core_identity.py", "    if diffs:\n", "    if False:\n",
           ("tests/host/test_identity.py",), fast=True),
    Mutant("host-seed-unchecked", "host/commands/train.py", "seed = _number(text, int, name, 0)",
           "seed = _number(text, int, name)", ("tests/test_cli_fuzz.py",), fast=True),
    # --- gateware ----------------------------------------------------------------------------------------
    Mutant("rtl-toper-tie-rule", "hw/toper.py", "return Mux(opposite & (e_demoted == c_demoted), e_id < c_id,",
           "return Mux(opposite & (e_demoted == c_demoted), e_id > c_id,",
           ("tests/sim/test_toper.py", "-k", "matches_golden")),
    Mutant("rtl-toper-demoted-order", "hw/toper.py", "value[:-1] ^ sign.replicate(len(value) - 1), ~demoted)",
           "value[:-1] ^ sign.replicate(len(value) - 1), demoted)", ("tests/sim/test_toper.py", "-k", "matches_golden")),
    Mutant("rtl-round-half-down", "hw/streams.py", "return (value + (1 << (shift - 1))) >> shift",
           "return (value + (1 << (shift - 1)) - 1) >> shift", ("tests/sim/test_streams.py",)),
    Mutant("rtl-dither-direct-class", "hw/streams.py",
           "return both if direct is None else Mux(direct, hash_bit(0) | hash_bit(1), both)", "return both",
           ("tests/sim/test_mac_lane.py", "-k", "matches_golden")),
    Mutant("rtl-activation-clamp", "hw/activation.py", "return Mux(biased < 0, 0, Mux(biased > top, top, biased))",
           "return Mux(biased < 0, 1, Mux(biased > top, top, biased))", ("tests/sim/test_activation.py",)),
    Mutant("rtl-activation-offset", "hw/activation.py", "off = Cat(z[:shift - 1], ~z[shift - 1]).as_signed()",
           "off = Cat(z[:shift - 1], z[shift - 1]).as_signed()", ("tests/sim/test_activation.py", "-k", "matches_golden")),
    Mutant("rtl-activation-a-unclamped", "hw/activation.py", "if self.can_saturate(table_f, table_d):",
           "if False:", ("tests/sim/test_activation.py", "-k", "s8.8")),
    Mutant("rtl-error-sign", "hw/update.py", "e_new, e_sat = saturate_expr(a - y, f.x)",
           "e_new, e_sat = saturate_expr(y - a, f.x)", ("tests/sim/test_core.py::test_training_run_matches_golden[3-2]",)),
    Mutant("rtl-sgd-wraps", "hw/update.py", "return saturate_expr(diff, self.cfg.fmts.w)",
           "return diff[:self.cfg.fmts.w.bits].as_signed(), saturate_expr(diff, self.cfg.fmts.w)[1]",
           ("tests/sim/test_core.py::test_sgd_saturation_mutant_is_caught",)),
    Mutant("rtl-sequencer-samples", "hw/sequencer.py", "with m.If(s_left == 1):", "with m.If(s_left == 2):",
           ("tests/sim/test_core.py::test_training_run_matches_golden[3-2]",)),
    Mutant("rtl-crc-polynomial", "hw/framing.py", "if protocol.CRC_POLY >> bit & 1:",
           "if (protocol.CRC_POLY ^ 2) >> bit & 1:", ("tests/sim/test_link.py", "-k", "commands_and_exactly_once")),
    Mutant("rtl-uart-glitch", "hw/uart.py", "with m.Elif(line):             # a glitch, not a start bit",
           "with m.Elif(0):", ("tests/sim/test_uart.py", "-k", "glitch")),
    Mutant("rtl-identity-address", "hw/core.py", "ident.addr.eq(index),", "ident.addr.eq(index + 1),",
           ("tests/sim/test_core.py::test_training_run_matches_golden[3-2]",)),
)


def repo_root() -> Path:
    """The source tree the installed `dpfm` runs from (its packages' parent, holding tests/ too)."""
    root = Path(importlib.import_module("dpfm.hw").__path__[0]).parent
    if not (root / "tests").is_dir():
        raise DpfmError(f"no tests/ beside the dpfm sources in {root}",
                        "run the mutants from a source checkout installed with `pip install -e .` (setup.sh)")
    return root


def scratch_copy(root: Path, dest: Path) -> None:
    """The sources as `dest/pkg/dpfm/<package>`, with tests/ and pyproject.toml (pytest's settings) in `dest`."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in PACKAGES:
        shutil.copytree(root / package, dest / "pkg" / "dpfm" / package, ignore=ignore)
    shutil.copytree(root / "tests", dest / "tests", ignore=ignore)
    shutil.copy2(root / "pyproject.toml", dest / "pyproject.toml")


def source_path(dest: Path, relative: str) -> Path:
    package, _, rest = relative.partition("/")
    return dest / "pkg" / "dpfm" / package / rest


def run_tests(dest: Path, tests: tuple[str, ...], timeout: float) -> tuple[int, str]:
    """pytest on `tests` in the scratch tree: (exit code, the last lines of its output)."""
    env = {**os.environ, "PYTHONPATH": str(dest / "pkg"), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *tests]
    try:
        done = subprocess.run(cmd, cwd=dest, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {timeout:g} s"
    return done.returncode, "\n".join((done.stdout + done.stderr).strip().splitlines()[-3:])


@contextlib.contextmanager
def applied(dest: Path, mutant: Mutant):
    """The mutant written into the scratch tree for the `with` block, the original restored after it."""
    path = source_path(dest, mutant.path)
    text = path.read_text()
    if text.count(mutant.old) != 1:
        raise DpfmError(f"mutant {mutant.name} no longer applies: {mutant.path} holds its text "
                        f"{text.count(mutant.old)} times, not once", "update MUTANTS in host/bench/mutants.py")
    path.write_text(text.replace(mutant.old, mutant.new))
    try:
        yield
    finally:
        path.write_text(text)


def run_mutants(mutants, timeout: float = 1800.0, progress=None) -> list[dict]:
    """Each mutant's result (`killed`, seconds, the tests' last lines), after the unmutated baseline passes."""
    root = repo_root()
    with tempfile.TemporaryDirectory(prefix="dpfm-mutants-") as tmp:
        dest = Path(tmp)
        scratch_copy(root, dest)
        for mutant in mutants:       # every substitution must apply before anything runs
            with applied(dest, mutant):
                pass
        for tests in dict.fromkeys(m.tests for m in mutants):
            code, tail = run_tests(dest, tests, timeout)
            if code != 0:
                raise DpfmError(f"{' '.join(tests)} fails without any mutant (pytest exit {code}: {tail})",
                                "fix the suite first: a kill means nothing while the tests fail anyway")
        results = []
        for mutant in mutants:
            start = time.monotonic()
            with applied(dest, mutant):
                code, tail = run_tests(dest, mutant.tests, timeout)
            if code not in (0, 1):
                raise DpfmError(f"the tests of mutant {mutant.name} did not run (pytest exit {code}: {tail})",
                                "check the test arguments in host/bench/mutants.py")
            results.append({"name": mutant.name, "file": mutant.path, "tests": " ".join(mutant.tests),
                            "killed": code == 1, "seconds": round(time.monotonic() - start, 1),
                            "output": tail})
            if progress is not None:
                progress(results[-1])
        return results


def select(names: str | None, fast: bool) -> list[Mutant]:
    chosen = [m for m in MUTANTS if m.fast or not fast]
    if names:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        known = {m.name for m in MUTANTS}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise DpfmError(f"unknown mutant(s) {', '.join(unknown)}", f"choose from {', '.join(sorted(known))}")
        chosen = [m for m in chosen if m.name in wanted]
    if not chosen:
        raise DpfmError("no mutants selected", "drop --only or --fast")
    return chosen


def add_arguments(parser) -> None:
    parser.add_argument("--out", metavar="DIR", default=os.path.join("runs", "bench-mutants"),
                        help="directory for mutants.json (default runs/bench-mutants)")
    parser.add_argument("--json", metavar="PATH", help="write the JSON here instead of DIR/mutants.json")
    parser.add_argument("--fast", action="store_true", help="only the mutants whose tests are pure Python")
    parser.add_argument("--only", metavar="NAMES", help="comma-separated mutant names")


def run(args) -> int:
    json_path = args.json or os.path.join(args.out, "mutants.json")
    check_writable(json_path)
    mutants = select(args.only, args.fast)
    print(f"{len(mutants)} mutants; the unmutated tests run first", flush=True)
    results = run_mutants(mutants, progress=lambda r: print(
        f"  {r['name']:<28} {'killed' if r['killed'] else 'SURVIVED':<9} {r['seconds']:>7.1f} s", flush=True))
    killed = sum(r["killed"] for r in results)
    print(f"killed {killed} of {len(results)} ({100 * killed / len(results):.0f}%)")
    survivors = [r["name"] for r in results if not r["killed"]]
    if survivors:
        print("survivors (each needs a test): " + ", ".join(survivors))
    write_json(json_path, {"mutants": results, "killed": killed, "total": len(results),
                           "kill_rate": killed / len(results)})
    return 0 if not survivors else 1
