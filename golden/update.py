"""The gradient unit's model (docs/ARITHMETIC.md section 3.5): `hw.update.GradientUnit` must equal
`accumulate_output_gradient` output neuron by output neuron.

`golden.fixed_mlp.FixedModel.batch_gradient` runs the same step vectorized over a batch;
tests/golden/test_fixed_mlp.py checks it against this one.
"""

from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.fixedpoint import SatCounter, requantize, saturate
from dpfm.golden.toper import Slot


def accumulate_output_gradient(G: list[int], a: int, y: int, slots: list[Slot], c: int, fmts: HwFormats,
                               sat: SatCounter | None = None) -> None:
    """One output neuron's MSE contribution to the accumulator `G` (indexed by weight-id, format g):
    `e = sat_x(a - y)`, `delta = sat_x(round_x(c * e))`, then for each valid slot in slot order
    `G[id] <- sat_g(G[id] + delta * v)` (`c` is the loss scale `quantize(2 / n_out)` in format x)."""
    e = saturate(int(a) - int(y), fmts.x, sat)
    delta = requantize(int(c) * e, 2 * fmts.x.frac, fmts.x, sat)
    for slot in slots:
        if slot is not None:
            v, wid = slot
            G[wid] = saturate(G[wid] + delta * int(v), fmts.g, sat)
