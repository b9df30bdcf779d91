"""The gradient unit's model (docs/ARITHMETIC.md sections 3.5 and 3f): `hw.update.GradientUnit` must equal
`accumulate_output_gradient` output neuron by output neuron, given an exact output layer's `direct_slots`
after the neuron's own slots.

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


def direct_slots(d: int | None, inputs: list[int], row_id: int, fmts: HwFormats,
                 sat: SatCounter | None = None) -> list[Slot]:
    """An exact output layer's direct entries for one output neuron (section 3f), in input order with the
    bias last: `(round_t(d * conv_t(x_i)), row_id + i)`, as the activation node would turn an unpruned direct
    candidate into a slot (`d` the neuron's slope `D[idx]`; None for the identity, which passes `conv_t(x_i)`);
    None where that is 0. `inputs` are the layer's inputs (format x); `row_id` is the id of `W[o, 0]`."""
    out: list[Slot] = []
    for i, x in enumerate(list(inputs) + [1 << fmts.x.frac]):
        v = requantize(int(x), fmts.x.frac, fmts.t, sat)
        if d is not None:
            v = requantize(int(d) * v, fmts.x.frac + fmts.t.frac, fmts.t, sat)
        out.append((v, row_id + i) if v != 0 else None)
    return out
