"""Fixed-point formats, rounding, saturation and activation LUTs (docs/ARITHMETIC.md sections 2 and 3.4)."""

import numpy as np
import pytest

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import Fmt, HwFormats
from dpfm.golden.fixedpoint import (SatCounter, activation_luts, lut_bin_centres, lut_index, quantize, requantize,
                                    saturate, shift_round, to_float)

S16 = Fmt(16, 12)


@pytest.mark.parametrize("raw, shift, expect", [
    (5, 1, 3),     # 2.5 -> 3
    (-5, 1, -2),   # -2.5 -> -2 (half up, not away from zero)
    (-6, 1, -3),   # exact
    (6, 2, 2),     # 1.5 -> 2
    (-6, 2, -1),   # -1.5 -> -1
    (7, 2, 2),     # 1.75 -> 2
    (-7, 2, -2),   # -1.75 -> -2
    (5, 2, 1),     # 1.25 -> 1
    (-5, 2, -1),   # -1.25 -> -1
    (3, -2, 12),   # gaining bits is exact
    (-3, 0, -3),
])
def test_shift_round_half_up(raw, shift, expect):
    assert shift_round(raw, shift) == expect
    assert shift_round(np.array([raw], dtype=np.int64), shift)[0] == expect


def test_quantize_rounds_half_up_at_exact_half_lsb():
    lsb = 2.0 ** -12
    assert quantize(0.5 * lsb, S16) == 1
    assert quantize(-0.5 * lsb, S16) == 0
    assert quantize(-1.5 * lsb, S16) == -1
    assert quantize(1.5 * lsb, S16) == 2
    assert quantize(-1.25, S16) == -5120


def test_signed_saturation_is_symmetric_and_counted():
    sat = SatCounter()
    assert quantize(8.0, S16, sat) == 32767
    assert quantize(-8.0, S16, sat) == -32767
    assert quantize(7.5, S16, sat) == 30720
    assert sat.count == 2
    out = saturate(np.array([40000, -40000, 5, -32768]), S16, sat)
    assert out.tolist() == [32767, -32767, 5, -32767]
    assert sat.count == 5
    sat.reset()
    assert sat.count == 0


def test_unsigned_saturates_at_zero():
    sat = SatCounter()
    u = Fmt(16, 20, signed=False)
    assert quantize(-1e-3, u, sat) == 0
    assert quantize(1.0, u, sat) == 65535
    assert sat.count == 2


def test_requantize_rounds_then_saturates():
    sat = SatCounter()
    # 0.5 * 0.5 at frac 24 -> frac 12
    assert requantize(2048 * 2048, 24, S16, sat) == 1024
    assert requantize(32767 * 32767, 24, S16, sat) == 32767
    assert requantize(np.array([-(1 << 11), (1 << 11) - 1]), 12 + 12, S16).tolist() == [0, 0]
    assert sat.count == 1


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_quantize_rejects_non_finite(bad):
    with pytest.raises(DpfmError, match="NaN or infinity"):
        quantize(np.array([0.0, bad]), S16)


def test_quantize_keeps_scalar_and_array_shapes():
    assert isinstance(quantize(0.25, S16), int)
    assert quantize(np.array([[0.25]]), S16).shape == (1, 1)
    assert to_float(quantize(np.array([0.25, -1.0]), S16), S16).tolist() == [0.25, -1.0]


@pytest.mark.parametrize("text", ["x16.12", "s16", "s16.x", "", "s.12", "s1.0", "s63.12", "s16.63"])
def test_fmt_parse_errors(text):
    with pytest.raises(DpfmError):
        Fmt.parse(text)


def test_fmt_parse_and_str_round_trip():
    assert Fmt.parse("u16.20") == Fmt(16, 20, signed=False)
    assert str(Fmt.parse("s32.24")) == "s32.24"


@pytest.mark.parametrize("text, problem", [
    ("x=s16.12,foo=s1.2", "unknown format name"),
    ("x", "cannot read format item"),
    ("lut_bits=abc", "lut_bits must be an integer"),
    ("g=s32.20", "gradient format"),
    ("lut_bits=17", "does not fit"),
    ("lut_bits=4", "does not fit"),
    ("x=q16.12", "cannot read fixed-point format"),
])
def test_hwformats_parse_errors(text, problem):
    with pytest.raises(DpfmError, match=problem):
        HwFormats.parse(text)


def test_hwformats_parse_round_trip_and_defaults():
    f = HwFormats.parse("t=s16.10, g=s32.22")
    assert f.t == Fmt(16, 10) and f.x == Fmt(16, 12) and f.lut_bits == 10
    assert HwFormats.parse(str(f)) == f
    assert HwFormats.parse("") == HwFormats()


# --- activation LUTs -------------------------------------------------------------------------------------

FMTS = HwFormats()
Z_RAW = np.arange(-8 << 12, 8 << 12, dtype=np.int64)  # every representable z in [-8, 8)
Z = Z_RAW / 4096.0


def test_lut_index_formula_and_clamping():
    assert lut_index(0, FMTS) == 512
    assert lut_index(-1, FMTS) == 511          # arithmetic shift floors
    assert lut_index(63, FMTS) == 512 and lut_index(64, FMTS) == 513   # bins are 1/64 wide
    assert lut_index(-8 << 12, FMTS) == 0
    assert lut_index(FMTS.x.min_raw, FMTS) == 0
    assert lut_index(FMTS.x.max_raw, FMTS) == 1023
    idx = lut_index(Z_RAW, FMTS)
    assert np.array_equal(idx[::977], [lut_index(int(z), FMTS) for z in Z_RAW[::977]])
    assert np.array_equal(np.bincount(idx), np.full(1024, 64))


def test_lut_index_at_full_resolution_is_identity_offset():
    f = HwFormats(lut_bits=16)  # shift 0
    assert lut_index(0, f) == 1 << 15
    assert lut_index(-5, f) == (1 << 15) - 5


def test_bin_centres_lie_inside_their_bins():
    c = lut_bin_centres(FMTS)
    assert np.array_equal(lut_index(quantize(c, FMTS.x), FMTS), np.arange(1024))


SLOPE_BOUNDS = {"sigmoid": (0.25, 0.0963), "tanh": (1.0, 0.7699), "relu": (1.0, 0.0)}  # max|f'|, max|f''|


def _float_f(kind, z):
    if kind == "sigmoid":
        s = 1 / (1 + np.exp(-z))
        return s, s * (1 - s)
    if kind == "tanh":
        return np.tanh(z), 1 - np.tanh(z) ** 2
    return np.maximum(z, 0), (z >= 0).astype(float)


@pytest.mark.parametrize("kind", ["sigmoid", "tanh", "relu"])
def test_lut_accuracy_against_float(kind):
    """Error <= (max slope) * (half a bin) + half an x LSB, for every representable z in [-8, 8)."""
    F, D = activation_luts(kind, FMTS)
    idx = lut_index(Z_RAW, FMTS)
    f, df = _float_f(kind, Z)
    half_bin, half_lsb = 16 / 1024 / 2, 2.0 ** -13
    s1, s2 = SLOPE_BOUNDS[kind]
    assert np.max(np.abs(F[idx] / 4096 - f)) <= s1 * half_bin + half_lsb
    assert np.max(np.abs(D[idx] / 4096 - df)) <= s2 * half_bin + half_lsb


@pytest.mark.parametrize("kind", ["sigmoid", "tanh", "relu"])
def test_lut_shapes_monotonic_and_read_only(kind):
    F, D = activation_luts(kind, FMTS)
    assert F.shape == D.shape == (1024,) and F.dtype == D.dtype == np.int64
    assert np.all(np.diff(F) >= 0)
    with pytest.raises(ValueError):
        F[0] = 1


@pytest.mark.parametrize("kind", ["sigmoid", "tanh"])
def test_lut_slope_is_unimodal_and_symmetric(kind):
    _, D = activation_luts(kind, FMTS)
    assert np.all(np.diff(D[:512]) >= 0) and np.all(np.diff(D[512:]) <= 0)
    assert np.max(np.abs(D - D[::-1])) <= 1


def test_lut_saturates_in_a_narrow_x_format():
    f = HwFormats(x=Fmt(8, 4), t=Fmt(8, 4), g=Fmt(16, 8), lut_bits=8)
    F, _ = activation_luts("relu", f)
    assert F[-1] == 127  # 7.97 does not fit s8.4 (max 7.9375)


@pytest.mark.parametrize("kind", ["identity", "softmax"])
def test_lut_rejects_kinds_without_a_table(kind):
    with pytest.raises(DpfmError):
        activation_luts(kind, FMTS)
