"""Fixed-point formats with explicit rounding and saturation (docs/ARITHMETIC.md section 2).

Raw values are Python/NumPy integers (int64 arrays); every operation that drops fraction bits or can leave
the range says so by name, so the order of rounding points in a model reads like the hardware's datapath.
"""

import numpy as np

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import Fmt


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
