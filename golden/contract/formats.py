"""Fixed-point number formats (docs/ARITHMETIC.md section 2): the widths every layer agrees on.

A format is data, not arithmetic: the rounding and saturation that use it are `dpfm.golden.fixedpoint`.
"""

from dataclasses import dataclass, field

from dpfm.golden.contract.errors import DpfmError


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


@dataclass(frozen=True)
class HwFormats:
    """The number formats of one hardware configuration (docs/ARITHMETIC.md, default table)."""

    x: Fmt = field(default_factory=lambda: Fmt(16, 12))
    w: Fmt = field(default_factory=lambda: Fmt(16, 12))
    t: Fmt = field(default_factory=lambda: Fmt(16, 12))
    g: Fmt = field(default_factory=lambda: Fmt(32, 24))
    lr: Fmt = field(default_factory=lambda: Fmt(16, 13, signed=False))
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
        """`x=s16.12,w=s16.12,t=s16.12,g=s32.24,lr=u16.13,lut_bits=10`; omitted names keep defaults."""
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
