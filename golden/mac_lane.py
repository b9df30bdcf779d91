"""The serial MAC lane's model (docs/ARITHMETIC.md sections 3.1 - 3.3): the block `hw.mac_lane.MacLane` must
equal `MacLaneModel` bit for bit, neuron by neuron.

A neuron is a list of MAC steps `(w, wid, x, x_slots)` (raw w and x, the weight-id, the input's tangent as
K slots), bias last with `x = 1.0` and an empty tangent. Its primal is `z = sat_x(round(sum_i w_i x_i))`
(`neuron_primal`) and its tangent the read-out of one toper fed the steps' candidates in emission order
(`mac_candidates`). `round_t(p)` below means: round the exact product `p` half up to format t, then saturate
to t; every clamp counts in the optional `SatCounter`.

The parallel lane's model (golden/parallel_lane.py) is this one with another toper behind `_insert`.
"""

from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.dither import flags
from dpfm.golden.fixedpoint import SatCounter, requantize
from dpfm.golden.toper import Slot, ToperModel

#: One MAC step of a neuron: `(w_raw, wid, x_raw, x_slots)`.
MacStep = tuple[int, int, int, list[Slot]]


def neuron_primal(steps: list[MacStep], fmts: HwFormats, sat: SatCounter | None = None) -> int:
    """A neuron's pre-activation (section 3.1): `acc = sum w * x` exactly, then `z = sat_x(round(acc))`."""
    acc = sum(int(w) * int(x) for w, _, x, _ in steps)
    return requantize(acc, fmts.w.frac + fmts.x.frac, fmts.x, sat)


def indexed_mac_candidates(w_raw: int, wid: int, x_raw: int, x_slots: list[Slot], fmts: HwFormats,
                           sat: SatCounter | None = None, frozen: bool = False) -> list[tuple[int, int, int]]:
    """The toper candidates of one MAC step `w * x` (section 3.2) as `(c, value, id)`, in emission order.

    `c` is the candidate's index in the step: 0 for the direct term `(conv_t(x), wid)` (d(w x)/dw = x), `j + 1`
    for valid input slot j's `(round_t(w * v_j), id_j)`. Candidates whose value is 0 are left out (every toper
    ignores them anyway). The serial lane feeds them in this order into its one toper; the parallel lane
    (section 3b) feeds candidate c into source toper `T_{c mod S}`. In a `frozen` layer (section 3e) the
    direct candidate is not formed: it is neither rounded nor counted.
    """
    out = [] if frozen else [(0, requantize(int(x_raw), fmts.x.frac, fmts.t, sat), int(wid))]
    for j, slot in enumerate(x_slots):
        if slot is not None:
            v, sid = slot
            out.append((j + 1, requantize(int(w_raw) * int(v), fmts.w.frac + fmts.t.frac, fmts.t, sat), int(sid)))
    return [c for c in out if c[1] != 0]


def mac_candidates(w_raw: int, wid: int, x_raw: int, x_slots: list[Slot], fmts: HwFormats,
                   sat: SatCounter | None = None) -> list[tuple[int, int]]:
    """The candidates of `indexed_mac_candidates` as `(value, id)`, in the order the serial lane emits them."""
    return [(v, i) for _, v, i in indexed_mac_candidates(w_raw, wid, x_raw, x_slots, fmts, sat)]


class MacLaneModel:
    """The serial lane: per neuron, every step's candidates in emission order into one K-cell toper, cleared
    at the start of the neuron (section 3.3), each with the dither flag of its id under the neuron's mask
    (section 3d, the direct candidate c = 0 with its own rate; mask 0: plain top-K). Saturations of
    candidates, merges and `z` count in `sat`; `evictions` runs over all neurons, as the lane's eviction
    counter does."""

    def __init__(self, k: int, fmts: HwFormats, sat: SatCounter | None = None):
        self.fmts = fmts
        self.sat = sat
        self.toper = ToperModel(k, fmts.t, sat)

    @property
    def evictions(self) -> int:
        return self.toper.evictions

    def neuron(self, steps: list[MacStep], mask: int = 0, frozen: bool = False) -> tuple[int, list[Slot]]:
        """`(z, z_slots)` of the neuron made of `steps` under dither mask `mask`, in a `frozen` layer or not:
        what the lane emits after the step marked last."""
        self.toper.clear()
        for w, wid, x, x_slots in steps:
            for c, value, cid in indexed_mac_candidates(w, wid, x, x_slots, self.fmts, self.sat, frozen):
                self._insert(c, value, cid, int(flags(cid, mask, direct=c == 0)))
        return neuron_primal(steps, self.fmts, self.sat), self.toper.slots()

    def _insert(self, c: int, value: int, cid: int, d: int) -> None:
        """Candidate `c` of a step into the lane's toper: the serial lane has one, fed in emission order."""
        self.toper.insert(value, cid, d)
