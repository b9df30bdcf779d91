"""Fixed-point formats with explicit rounding and saturation (docs/ARITHMETIC.md section 2).

Raw values are Python/NumPy integers (int64 arrays); every operation that drops fraction bits or can leave
the range says so by name, so the order of rounding points in a model reads like the hardware's datapath.
"""

from dataclasses import dataclass, field

import numpy as np

from golden.activations import activate
from golden.errors import DpfmError


@dataclass(frozen=True)
class Fmt:
    """`bits` total bits, `frac` fraction bits; a raw integer r means r / 2**frac.

    Signed ranges are symmetric, [-(2**(bits-1) - 1), 2**(bits-1) - 1], so |r| always fits.
    """

    bits: int
    frac: int
    signed: bool = True

    def __post_init__(self):
        if not (2 <= self.bits <= 62):
            raise DpfmError(f"fixed-point width {self.bits} is out of range", "use 2..62 bits")
        if not (0 <= self.frac <= 62):
            raise DpfmError(f"fixed-point fraction bits {self.frac} is out of range", "use 0..62")

    @property
    def max_raw(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def min_raw(self) -> int:
        return -self.max_raw if self.signed else 0

    @property
    def resolution(self) -> float:
        return 2.0 ** -self.frac

    @property
    def max_value(self) -> float:
        return self.max_raw * self.resolution

    @property
    def min_value(self) -> float:
        return self.min_raw * self.resolution

    def __str__(self):
        return f"{'s' if self.signed else 'u'}{self.bits}.{self.frac}"

    @classmethod
    def parse(cls, text: str) -> "Fmt":
        """`s16.12` / `u16.20`."""
        try:
            sign, rest = text[0], text[1:]
            bits, frac = rest.split(".")
            if sign not in "su":
                raise ValueError
            return cls(int(bits), int(frac), sign == "s")
        except (ValueError, IndexError):
            raise DpfmError(f"cannot read fixed-point format '{text}'",
                            "write it as s<bits>.<frac> or u<bits>.<frac>, e.g. s16.12") from None


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


@dataclass(frozen=True)
class HwFormats:
    """The number formats of one hardware configuration (docs/ARITHMETIC.md, default table)."""

    x: Fmt = field(default_factory=lambda: Fmt(16, 12))
    w: Fmt = field(default_factory=lambda: Fmt(16, 12))
    t: Fmt = field(default_factory=lambda: Fmt(16, 12))
    g: Fmt = field(default_factory=lambda: Fmt(32, 24))
    lr: Fmt = field(default_factory=lambda: Fmt(16, 16, signed=False))
    lut_bits: int = 10

    def __post_init__(self):
        if self.g.frac != self.x.frac + self.t.frac:
            raise DpfmError(f"gradient format {self.g} must have x.frac + t.frac = "
                            f"{self.x.frac + self.t.frac} fraction bits", "adjust the g format")
        if not (4 < self.lut_bits <= 4 + self.x.frac):
            raise DpfmError(f"lut_bits={self.lut_bits} does not fit x format {self.x}",
                            f"use 5..{4 + self.x.frac}")

    @classmethod
    def parse(cls, text: str) -> "HwFormats":
        """`x=s16.12,w=s16.12,t=s16.12,g=s32.24,lr=u16.16,lut_bits=10`; omitted names keep defaults."""
        kwargs = {}
        for item in filter(None, (s.strip() for s in text.split(","))):
            if "=" not in item:
                raise DpfmError(f"cannot read format item '{item}'", "write name=format, e.g. x=s16.12")
            name, value = (s.strip() for s in item.split("=", 1))
            if name == "lut_bits":
                try:
                    kwargs[name] = int(value)
                except ValueError:
                    raise DpfmError(f"lut_bits must be an integer, got '{value}'", "e.g. lut_bits=10") from None
            elif name in ("x", "w", "t", "g", "lr"):
                kwargs[name] = Fmt.parse(value)
            else:
                raise DpfmError(f"unknown format name '{name}'", "use x, w, t, g, lr or lut_bits")
        return cls(**kwargs)

    def __str__(self):
        return f"x={self.x},w={self.w},t={self.t},g={self.g},lr={self.lr},lut_bits={self.lut_bits}"


# ----------------------------------------------------------------------------------------------------------
# Activation LUTs (docs/ARITHMETIC.md section 3.4). The hardware activation unit loads exactly these tables.

LUT_ACTIVATIONS = ("sigmoid", "tanh", "relu")
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
