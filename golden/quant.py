"""Uniform-SYMM and Uniform-ASYMM n-bit weight quantizers (SPEC section 5), for quantized-training studies.

These are the two quantizers of seed 003 (its `SYMMf` / `ASYMMf`), stated as functions of NumPy arrays:

- **Uniform-SYMM**, range `m = max|x|`: `q = rint(x / m * L)` with `L = 2**(n-1) - 1`, codes in `[-L, L]`,
  value `q * m / L`. Zero is exact, the grid is symmetric (q(-x) = -q(x)), `2**n - 1` levels.
- **Uniform-ASYMM**, range `[lo, hi] = [min x, max x]`: `q = rint((x - lo) / (hi - lo) * L)` with
  `L = 2**n - 1`, codes in `[0, L]`, value `lo + q * (hi - lo) / L`. Both ends are exact, `2**n` levels;
  zero is generally not exact (no zero-point snapping, as in the seed).

Rounding is `np.rint` (half to even), as `torch.round` in the seed. A range of zero width leaves the values
unchanged (there is nothing to quantize). Scope `global` uses one range for the whole network, `layer`
one range per layer (its W and b together).

These quantizers model weight storage formats for studies; the hardware's own arithmetic is the fixed
point of `golden.fixedpoint` (docs/ARITHMETIC.md), not this.
"""

from dataclasses import dataclass

import numpy as np

from dpfm.golden.contract.errors import DpfmError

SCHEMES = ("symm", "asymm")
SCOPES = ("global", "layer")


def _check_bits(n_bits: int, scheme: str) -> None:
    low = 2 if scheme == "symm" else 1
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) or not (low <= n_bits <= 32):
        raise DpfmError(f"{scheme} quantization with {n_bits!r} bits is not possible", f"use {low}..32 bits")


def _finite(x, what="weights") -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise DpfmError(f"{what} contain NaN or infinity", "fix the training run that produced them")
    return arr


def symm_codes(x, n_bits: int, max_abs: float) -> np.ndarray:
    """Integer codes in `[-(2**(n-1) - 1), 2**(n-1) - 1]` of `x` on the symmetric grid of range `max_abs`."""
    _check_bits(n_bits, "symm")
    levels = 2 ** (n_bits - 1) - 1
    x = np.clip(_finite(x), -max_abs, max_abs)
    return np.rint(x / max_abs * levels).astype(np.int64)


def symm(x, n_bits: int, max_abs: float | None = None) -> np.ndarray:
    """`x` rounded to the n-bit symmetric grid of range `max_abs` (default `max|x|`)."""
    x = _finite(x)
    m = float(np.max(np.abs(x), initial=0.0)) if max_abs is None else float(max_abs)
    if m == 0.0:
        return x.copy()
    # codes / levels first, then * m: the range end is exactly m, even for a subnormal m (where m / levels
    # would round to 0)
    return symm_codes(x, n_bits, m) / (2 ** (n_bits - 1) - 1) * m


def asymm_codes(x, n_bits: int, lo: float, hi: float) -> np.ndarray:
    """Integer codes in `[0, 2**n - 1]` of `x` on the grid from `lo` to `hi`."""
    _check_bits(n_bits, "asymm")
    levels = 2 ** n_bits - 1
    x = np.clip(_finite(x), lo, hi)
    return np.rint((x - lo) / (hi - lo) * levels).astype(np.int64)


def asymm(x, n_bits: int, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """`x` rounded to the n-bit grid from `lo` to `hi` (default: its min and max); both ends exact."""
    x = _finite(x)
    lo = float(np.min(x, initial=np.inf)) if lo is None else float(lo)
    hi = float(np.max(x, initial=-np.inf)) if hi is None else float(hi)
    if not hi > lo:
        return x.copy()
    codes = asymm_codes(x, n_bits, lo, hi)
    out = lo + codes * ((hi - lo) / (2 ** n_bits - 1))
    return np.where(codes == 2 ** n_bits - 1, hi, out)  # hi exactly, not lo + L * step rounded


def quantize_layers(layers, n_bits: int, scheme: str = "symm", scope: str = "global") -> list:
    """`[(W, b), ...]` -> the same structure with every value on an n-bit `scheme` grid, one range for the
    whole net (`scope="global"`) or one per layer (`"layer"`, W and b together). Returns new arrays."""
    if scheme not in SCHEMES:
        raise DpfmError(f"unknown quantizer '{scheme}'", f"use one of {', '.join(SCHEMES)}")
    if scope not in SCOPES:
        raise DpfmError(f"unknown quantization scope '{scope}'", f"use one of {', '.join(SCOPES)}")
    _check_bits(n_bits, scheme)
    layers = [(_finite(W), _finite(b)) for W, b in layers]
    if not layers:
        return []
    groups = [np.concatenate([W.ravel(), b.ravel()]) for W, b in layers]
    if scope == "global":
        groups = [np.concatenate(groups)] * len(layers)
    ranges = [(g.min(initial=np.inf), g.max(initial=-np.inf), np.abs(g).max(initial=0.0)) for g in groups]
    out = []
    for (W, b), (lo, hi, m) in zip(layers, ranges):
        if scheme == "symm":
            out.append((symm(W, n_bits, m), symm(b, n_bits, m)))
        else:
            out.append((asymm(W, n_bits, lo, hi), asymm(b, n_bits, lo, hi)))
    return out


@dataclass(frozen=True)
class WeightQuant:
    """n-bit weight storage for quantized training (source note 003): the weights are put on the `scheme`
    grid (one range for the net or one per layer, `scope`) at initialisation and again after every update, in
    place, with no float master copy, as a memory of n-bit words would hold them. The gradient is computed
    at the stored weights and passes the quantizer unchanged (straight-through), so an update smaller than
    half a grid step is lost: that is the effect the note measures."""

    bits: int
    scheme: str = "symm"
    scope: str = "global"

    def __post_init__(self):
        if self.scheme not in SCHEMES:
            raise DpfmError(f"unknown quantizer '{self.scheme}'", f"use one of {', '.join(SCHEMES)}")
        if self.scope not in SCOPES:
            raise DpfmError(f"unknown quantization scope '{self.scope}'", f"use one of {', '.join(SCOPES)}")
        _check_bits(self.bits, self.scheme)

    @property
    def label(self) -> str:
        return f"{self.scheme}{self.bits}-{self.scope}"

    def layers(self, layers) -> list:
        """`[(W, b), ...]` on the grid; a diverged network (a NaN or infinite weight) is left as it is, so its
        loss says so instead of the quantizer refusing it."""
        if not all(np.all(np.isfinite(W)) and np.all(np.isfinite(b)) for W, b in layers):
            return layers
        return quantize_layers(layers, self.bits, self.scheme, self.scope)

    def rows(self, spec, flat: np.ndarray) -> np.ndarray:
        """Flat weight rows `(R, P)` (the golden trainer's replicas), each on the grid on its own."""
        from dpfm.golden.contract.net import flatten, unflatten
        return np.stack([flatten(spec, self.layers(unflatten(spec, row))) for row in flat])
