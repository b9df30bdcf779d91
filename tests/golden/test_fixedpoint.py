"""Fixed-point formats, rounding and saturation (docs/ARITHMETIC.md section 2)."""

import numpy as np
import pytest

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import Fmt, HwFormats
from dpfm.golden.fixedpoint import SatCounter, quantize, requantize, saturate, shift_round, to_float

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
