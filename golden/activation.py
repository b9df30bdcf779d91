"""The activation unit's model (docs/ARITHMETIC.md section 3.4): the block `hw.activation.Activation` loads the
tables of `activation_luts` into its ROMs, addresses them as `lut_index` does, and must equal
`activation_slots` bit for bit, transaction by transaction.

The tables hold the float functions of golden/activation_functions.py, sampled at the bin centres and
quantized.
"""

import numpy as np

from dpfm.golden.activation_functions import activate
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.contract.net import ACTIVATIONS
from dpfm.golden.fixedpoint import SatCounter, quantize, requantize
from dpfm.golden.toper import Slot


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


def bin_bits(fmts: HwFormats) -> int:
    """`s = x.frac - (lut_bits - 4)`: a table bin spans `2**s` raw values of z."""
    return fmts.x.frac - (fmts.lut_bits - 4)


def lut_index(z_raw, fmts: HwFormats):
    """LUT address of raw pre-activation(s) `z` (format x):
    `clamp((z >> bin_bits) + 2**(lut_bits - 1), 0, 2**lut_bits - 1)` (arithmetic shift)."""
    shift = bin_bits(fmts)
    half, top = 1 << (fmts.lut_bits - 1), (1 << fmts.lut_bits) - 1
    if isinstance(z_raw, np.ndarray):
        return np.clip((z_raw.astype(np.int64) >> shift) + half, 0, top)
    return min(max((int(z_raw) >> shift) + half, 0), top)


def lut_offset(z_raw, fmts: HwFormats):
    """`z`'s raw offset from the centre of its bin, `z - centre(lut_index(z))`, in
    `[-2**(s-1), 2**(s-1))` with `s = bin_bits(fmts)`; 0 where the index is clamped (z outside [-8, 8)) or
    a bin holds one raw value (s = 0)."""
    shift = bin_bits(fmts)
    if shift == 0:
        return np.zeros_like(z_raw) if isinstance(z_raw, np.ndarray) else 0
    half, top = 1 << (fmts.lut_bits - 1), (1 << fmts.lut_bits) - 1
    z = np.asarray(z_raw, dtype=np.int64)
    biased = (z >> shift) + half
    off = np.where((biased >= 0) & (biased <= top), (z & ((1 << shift) - 1)) - (1 << (shift - 1)), 0)
    return off if isinstance(z_raw, np.ndarray) else int(off)


def activation_value(z_raw, F: np.ndarray, D: np.ndarray, fmts: HwFormats, sat: SatCounter | None = None):
    """`a = sat_x(F[idx] + round_x(D[idx] * off))` (section 3.4): the table's value at the bin centre,
    moved along the table's slope to z (`off = lut_offset(z)`), elementwise on an array too."""
    idx = lut_index(z_raw, fmts)
    return requantize(F[idx] * (1 << fmts.x.frac) + D[idx] * lut_offset(z_raw, fmts), 2 * fmts.x.frac, fmts.x, sat)


def activation_slots(z_raw: int, z_slots: list[Slot], kind: str, fmts: HwFormats,
                     sat: SatCounter | None = None) -> tuple[int, list[Slot]]:
    """Activation of one neuron (section 3.4): `(a_raw, slots)` from the pre-activation and its toper slots.

    Identity passes `z` and the slots through unchanged. Otherwise `a = activation_value(z)`, `d = D[idx]`
    from the LUTs and slot j becomes `(round_t(d * v_j), id_j)`, or `None` when that rounds to 0. Slot
    positions are kept. The slots' saturations are counted before `a`'s.
    """
    if kind == "identity":
        return int(z_raw), list(z_slots)
    F, D = activation_luts(kind, fmts)
    d = int(D[lut_index(int(z_raw), fmts)])
    out: list[Slot] = []
    for slot in z_slots:
        if slot is None:
            out.append(None)
            continue
        v = requantize(d * int(slot[0]), fmts.x.frac + fmts.t.frac, fmts.t, sat)
        out.append((v, int(slot[1])) if v != 0 else None)
    return int(activation_value(int(z_raw), F, D, fmts, sat)), out
