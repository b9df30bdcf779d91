"""Random MAC-step stimulus for the two MAC lanes (hw/mac_lane.py, hw/parallel_lane.py): both take the same
step stream, so their testbenches draw neurons from the same generator and compare against their own
golden neuron."""

from dpfm.golden.contract.formats import HwFormats
from dpfm.hw.streams import slots_from_python

#: The kinds of neuron `NeuronGen.neuron` draws; each stresses one part of the datapath.
KINDS = ("random", "saturating", "zeros", "duplicates", "sparse")


class NeuronGen:
    """Random neurons: `(w, wid, x, slots)` steps, the last one the bias (x = 1.0, empty tangent)."""

    def __init__(self, rng, k: int, fmts: HwFormats, id_bits: int):
        self.rng, self.k, self.fmts, self.id_bits = rng, k, fmts, id_bits

    def _value(self, fmt, kind):
        rng = self.rng
        if kind == "saturating":
            mag = fmt.max_raw - rng.randint(0, 3)
        elif kind == "zeros":
            mag = rng.choice([0, 0, 1, 2])
        else:
            mag = rng.choice([fmt.max_raw, rng.randint(1, 4), rng.randint(1, fmt.max_raw),
                              rng.randint(1, 1 << fmt.frac)])
        return mag if rng.random() < 0.5 else -mag

    def neuron(self, kind: str, n_in: int | None = None):
        """The MAC steps of one neuron of `kind`, with `n_in` inputs (random 1..6 when not given)."""
        rng, k, fmts = self.rng, self.k, self.fmts
        n_in = rng.randint(1, 6) if n_in is None else n_in
        id_pool = {"duplicates": 3, "saturating": 2}.get(kind, 1 << self.id_bits)
        p_valid = {"sparse": 0.15}.get(kind, 0.8)
        wid0 = rng.randrange((1 << self.id_bits) - n_in - 1)
        steps = []
        for i in range(n_in):
            slots = [(self._value(fmts.t, kind), rng.randrange(id_pool)) if rng.random() < p_valid else None
                     for _ in range(k)]
            steps.append((self._value(fmts.w, kind), wid0 + i, self._value(fmts.x, kind), slots))
        bias = self._value(fmts.w, kind)
        steps.append((bias, wid0 + n_in, 1 << fmts.x.frac, [None] * k))
        return steps

    def mask(self) -> int:
        """A neuron's dither mask (docs/ARITHMETIC.md 3d): off (0), all ones (an id is demoted when its parity
        is even), or random."""
        r = self.rng.random()
        return 0 if r < 0.2 else 0xFFFFFFFF if r < 0.35 else self.rng.getrandbits(32)


def step_payloads(steps, mask: int = 0, frozen: bool = False):
    """The lane's input payloads (`hw.streams.mac_step_layout`) of one neuron's steps, `last` on the bias,
    each with the neuron's dither `mask` and whether its layer is `frozen`."""
    return [{"w": w, "wid": wid, "x": x, "slots": slots_from_python(slots), "last": int(i == len(steps) - 1),
             "frozen": int(frozen), "mask": mask} for i, (w, wid, x, slots) in enumerate(steps)]
