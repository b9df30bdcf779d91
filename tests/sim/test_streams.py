"""The RTL saturation expressions of hw/streams.py against the golden clamp (docs/ARITHMETIC.md section 2),
exhaustively over every value of a signed input, in Amaranth's simulator."""

import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from dpfm.golden.contract.formats import Fmt
from dpfm.golden.fixedpoint import saturate
from dpfm.hw.streams import saturate_expr, saturate_fast_expr


@pytest.mark.parametrize("helper", [saturate_expr, saturate_fast_expr])
@pytest.mark.parametrize("in_bits, fmt", [(10, Fmt(6, 2)), (6, Fmt(6, 2)), (5, Fmt(6, 2)), (9, Fmt(2, 0))])
def test_saturation_equals_the_golden_clamp(helper, in_bits, fmt):
    """Every value of a wider, equal or narrower input: the clamped value and the event flag (the minimum
    `-2**(n-1)`, outside the symmetric range, included)."""
    value = Signal(signed(in_bits))
    m = Module()
    clamped, flag = helper(value, fmt)
    out, sat = Signal(signed(fmt.bits)), Signal()
    m.d.comb += [out.eq(clamped), sat.eq(flag)]
    got = []

    async def bench(ctx):
        for v in range(-(1 << (in_bits - 1)), 1 << (in_bits - 1)):
            ctx.set(value, v)
            got.append((v, ctx.get(out), ctx.get(sat)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    expected = [(v, saturate(v, fmt), int(saturate(v, fmt) != v)) for v, _, _ in got]
    assert got == expected
