"""The MAC lane's toper organisation as one typed value, and the tangent modes named after it.

docs/ARITHMETIC.md defines two organisations of the tangent path: the serial lane (section 3.3: one toper
takes every candidate in emission order) and the parallel lane (section 3b: S source topers take candidate
c into T_{c mod S}, then a merge tree; S = K + 1 unless given). One value, `Organisation`, names them, and
every spelling a user or a report meets is derived from it here and nowhere else:

| organisation | `--toper`    | golden tangent mode   | `bench approx` mode |
| ------------ | ------------ | --------------------- | ------------------- |
| serial       | `serial`     | `toper`               | `hw-toper`          |
| parallel     | `parallel`   | `toper-parallel`      | `hw-parallel`       |
| parallel, S  | `parallel-S` | `toper-parallel-S`    | `hw-parallel-S`     |

The tangent mode `exact` (exact top-K in fixed point) has no organisation: no lane computes it.
"""

from dataclasses import dataclass

from dpfm.golden.contract.errors import DpfmError

#: The tangent modes of the fixed-point models without a source count; `toper-parallel-S` adds S.
TANGENT_MODES = ("exact", "toper", "toper-parallel")
#: The organisations without a source count; `parallel-S` adds S.
TOPERS = ("serial", "parallel", "parallel-S")


def _count(text: str, prefix: str) -> int | None:
    """S of `prefix + S` (a canonical decimal >= 1), else None."""
    if not isinstance(text, str) or not text.startswith(prefix):
        return None
    digits = text[len(prefix):]
    if digits.isdigit() and digits == str(int(digits)) and int(digits) >= 1:
        return int(digits)
    return None


@dataclass(frozen=True)
class Organisation:
    """`parallel=False`: the serial lane. `parallel=True`: `sources` source topers (None: K + 1 of them)."""

    parallel: bool = False
    sources: int | None = None

    def __post_init__(self):
        if not self.parallel and self.sources is not None:
            raise DpfmError("the serial lane has no source topers", "use Organisation(parallel=True, sources=S)")

    # --- spellings ------------------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> "Organisation":
        """`serial`, `parallel` or `parallel-S` (the `--toper` spelling)."""
        if text == "serial":
            return cls()
        if text == "parallel":
            return cls(parallel=True)
        sources = _count(text, "parallel-")
        if sources is None:
            raise DpfmError(f"unknown toper organisation '{text}'", f"use one of {', '.join(TOPERS)}")
        if sources == 1:
            raise DpfmError("parallel-1 would be the serial lane", "use --toper serial for one source")
        return cls(parallel=True, sources=sources)

    @classmethod
    def from_tangent(cls, mode: str) -> "Organisation | None":
        """The organisation whose lane computes golden tangent mode `mode`; None for `exact`.

        `toper-parallel-1` is accepted (it is the serial toper fed through a one-leaf tree, a model the
        tests use), although no core is built with it."""
        if mode == "exact":
            return None
        if mode == "toper":
            return cls()
        if mode == "toper-parallel":
            return cls(parallel=True)
        sources = _count(mode, "toper-parallel-")
        if sources is None:
            raise DpfmError(f"unknown tangent mode '{mode}'",
                            f"use one of {', '.join(TANGENT_MODES)}, or toper-parallel-S for S source topers")
        return cls(parallel=True, sources=sources)

    def __str__(self) -> str:
        if not self.parallel:
            return "serial"
        return "parallel" if self.sources is None else f"parallel-{self.sources}"

    @property
    def tangent(self) -> str:
        """The golden tangent mode this organisation's lane computes bit for bit."""
        return "toper" if not self.parallel else f"toper-{self}"

    @property
    def study_mode(self) -> str:
        """The name of this organisation's rows in `dpfm bench approx`."""
        return "hw-toper" if not self.parallel else f"hw-{self}"

    def sources_at(self, k: int | None) -> int | None:
        """S at K = `k` (None for the serial lane); a parallel lane needs a finite K and S <= K + 1."""
        if not self.parallel:
            return None
        if k is None:
            raise DpfmError(f"the {self.tangent} tangent mode needs a finite K", "give K (e.g. 8)")
        sources = k + 1 if self.sources is None else self.sources
        if sources > k + 1:
            raise DpfmError(f"{self.tangent} has {sources} source topers but a MAC step has only K + 1 = {k + 1} "
                            f"candidates", f"use at most toper-parallel-{k + 1} at K={k}")
        return sources


def check_tangent_mode(mode: str) -> str:
    """`mode` if it names a tangent mode, else `DpfmError`."""
    Organisation.from_tangent(mode)
    return mode


def parallel_sources(mode: str, k: int | None) -> int | None:
    """S of tangent mode `mode` at K = `k`: K + 1 for `toper-parallel`, S for `toper-parallel-S`
    (1 <= S <= K + 1), None for the modes without a parallel lane."""
    org = Organisation.from_tangent(mode)
    return None if org is None else org.sources_at(k)
