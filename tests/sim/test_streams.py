"""The RTL fixed-point expressions of hw/streams.py (rounding shift, saturation) against the golden ones
(docs/ARITHMETIC.md section 2), exhaustively over every value of a signed input, in Amaranth's simulator."""

import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from dpfm.golden.contract.formats import Fmt
from dpfm.golden.fixedpoint import saturate, shift_round
from dpfm.hw.streams import saturate_expr, saturate_fast_expr, shift_round_expr


def exhaustive(in_bits: int, expr) -> list[tuple[int, ...]]:
    """`(v, *outputs)` for every value v of a signed `in_bits` input, `expr(value)` giving the outputs."""
    value = Signal(signed(in_bits))
    outputs = expr(value)
    m = Module()
    wires = [Signal.like(o) for o in outputs]
    m.d.comb += [w.eq(o) for w, o in zip(wires, outputs)]
    got = []

    async def bench(ctx):
        for v in range(-(1 << (in_bits - 1)), 1 << (in_bits - 1)):
            ctx.set(value, v)
            got.append((v, *(ctx.get(w) for w in wires)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("in_bits, shift", [(8, 1), (8, 3), (8, 7), (6, 0), (6, -2), (3, 2)])
def test_rounding_shift_equals_the_golden_one(in_bits, shift):
    """Round half up (ties towards +infinity, so -0.5 LSB rounds to 0 and +0.5 to 1), and an exact left
    shift for a negative `shift`."""
    got = exhaustive(in_bits, lambda v: (shift_round_expr(v, shift),))
    assert got == [(v, shift_round(v, shift)) for v, _ in got]
    if shift == 1:
        assert (-1, 0) in got and (1, 1) in got and (-3, -1) in got


@pytest.mark.parametrize("helper", [saturate_expr, saturate_fast_expr])
@pytest.mark.parametrize("in_bits, fmt", [(10, Fmt(6, 2)), (6, Fmt(6, 2)), (5, Fmt(6, 2)), (9, Fmt(2, 0))])
def test_saturation_equals_the_golden_clamp(helper, in_bits, fmt):
    """Every value of a wider, equal or narrower input: the clamped value and the event flag (the minimum
    `-2**(n-1)`, outside the symmetric range, included)."""
    got = exhaustive(in_bits, lambda v: helper(v, fmt))
    expected = [(v, saturate(v, fmt), int(saturate(v, fmt) != v)) for v, _, _ in got]
    assert got == expected
