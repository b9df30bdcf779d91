"""Fixed-point formats with explicit rounding and saturation (docs/ARITHMETIC.md section 2).

Raw values are Python/NumPy integers (int64 arrays); every operation that drops fraction bits or can leave
the range says so by name, so the order of rounding points in a model reads like the hardware's datapath.
"""

import numpy as np

from dpfm.golden.activations import activate
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import Fmt, HwFormats
from dpfm.golden.contract.net import ACTIVATIONS


class SatCounter:
    """Counts saturation events, as the hardware's saturation counter does."""

    def __init__(self):
        self.count = 0

    def reset(self):
        self.count = 0


def saturate(raw, fmt: Fmt, counter: SatCounter | None = None):
    """Clamp raw integers to `fmt`'s range; each clamped element increments `counter`."""
    arr = np.asarray(raw, dtype=np.int64)
    clipped = np.clip(arr, fmt.min_raw, fmt.max_raw)
    if counter is not None:
        counter.count += int(np.count_nonzero(clipped != arr))
    return clipped if isinstance(raw, np.ndarray) else int(clipped)


def shift_round(raw, shift: int):
    """Change the number of fraction bits by `-shift`: drop `shift > 0` bits rounding half up
    (`(r + 2**(shift-1)) >> shift`, floor shift), or gain `-shift` bits exactly."""
    if shift > 0:
        if isinstance(raw, np.ndarray):
            return (raw + (np.int64(1) << (shift - 1))) >> shift
        return (int(raw) + (1 << (shift - 1))) >> shift
    if shift < 0:
        return raw << (-shift)
    return raw


def requantize(raw, from_frac: int, fmt: Fmt, counter: SatCounter | None = None):
    """A raw value with `from_frac` fraction bits -> `fmt`: round half up, then saturate."""
    return saturate(shift_round(raw, from_frac - fmt.frac), fmt, counter)


def quantize(x, fmt: Fmt, counter: SatCounter | None = None, what: str = "value"):
    """Float(s) -> raw integers in `fmt`: floor(x * 2**frac + 0.5), then saturate.

    NaN or infinity is an input error, never a value.
    """
    arr = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise DpfmError(f"{what} contains NaN or infinity", "clean the data before training")
    raw = np.floor(arr * (2.0 ** fmt.frac) + 0.5).astype(np.int64)
    out = saturate(raw, fmt, counter)
    return out if isinstance(x, np.ndarray) or np.ndim(x) else int(out)


def to_float(raw, fmt_or_frac) -> np.ndarray:
    frac = fmt_or_frac.frac if isinstance(fmt_or_frac, Fmt) else int(fmt_or_frac)
    return np.asarray(raw, dtype=np.float64) * (2.0 ** -frac)


# ----------------------------------------------------------------------------------------------------------
# Activation LUTs (docs/ARITHMETIC.md section 3.4). The hardware activation unit loads exactly these tables.

#: The activations with tables: every activation but identity, whose tangent passes unchanged.
LUT_ACTIVATIONS = tuple(a for a in ACTIVATIONS if a != "identity")
LUT_Z_RANGE = 8.0  # the tables cover z in [-8, 8)


def _activation_and_slope(kind: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if kind not in LUT_ACTIVATIONS:
        raise DpfmError(f"activation '{kind}' has no lookup table",
                        f"use one of {', '.join(LUT_ACTIVATIONS)} (identity needs no table)")
    return activate(kind, z)


def lut_bin_centres(fmts: HwFormats) -> np.ndarray:
    """The z value (float) at the centre of each of the `2**lut_bits` bins over [-8, 8)."""
    n = 1 << fmts.lut_bits
    width = 2.0 * LUT_Z_RANGE / n
    return -LUT_Z_RANGE + (np.arange(n) + 0.5) * width


_LUT_CACHE: dict = {}


def activation_luts(kind: str, fmts: HwFormats) -> tuple[np.ndarray, np.ndarray]:
    """`(F, D)`: f and f' at each bin centre, quantized to format `x` (int64, read-only, cached).

    Bin `idx` covers z in `[-8 + idx * w, -8 + (idx + 1) * w)` with `w = 16 / 2**lut_bits`, which is what
    `lut_index` addresses. Table values that do not fit `x` (only relu near 8 in narrow formats) saturate;
    that is a property of the table, not a runtime event, so it is not counted.
    """
    key = (kind, fmts)
    if key not in _LUT_CACHE:
        f, df = _activation_and_slope(kind, lut_bin_centres(fmts))
        F, D = quantize(f, fmts.x), quantize(df, fmts.x)
        F.setflags(write=False)
        D.setflags(write=False)
        _LUT_CACHE[key] = (F, D)
    return _LUT_CACHE[key]


def lut_index(z_raw, fmts: HwFormats):
    """LUT address of raw pre-activation(s) `z` (format x):
    `clamp((z >> (x.frac - (lut_bits - 4))) + 2**(lut_bits - 1), 0, 2**lut_bits - 1)` (arithmetic shift)."""
    shift = fmts.x.frac - (fmts.lut_bits - 4)
    half, top = 1 << (fmts.lut_bits - 1), (1 << fmts.lut_bits) - 1
    if isinstance(z_raw, np.ndarray):
        return np.clip((z_raw.astype(np.int64) >> shift) + half, 0, top)
    return min(max((int(z_raw) >> shift) + half, 0), top)
