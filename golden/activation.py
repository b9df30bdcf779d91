"""The activation unit's model (docs/ARITHMETIC.md section 3.4): the block `hw.activation.Activation` must equal
`activation_slots` bit for bit, transaction by transaction.
"""

from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.fixedpoint import SatCounter, activation_luts, lut_index, requantize
from dpfm.golden.toper import Slot


def activation_slots(z_raw: int, z_slots: list[Slot], kind: str, fmts: HwFormats,
                     sat: SatCounter | None = None) -> tuple[int, list[Slot]]:
    """Activation of one neuron (section 3.4): `(a_raw, slots)` from the pre-activation and its toper slots.

    Identity passes `z` and the slots through unchanged. Otherwise `a = F[idx]`, `d = D[idx]` from the LUTs
    and slot j becomes `(round_t(d * v_j), id_j)`, or `None` when that rounds to 0. Slot positions are kept.
    """
    if kind == "identity":
        return int(z_raw), list(z_slots)
    F, D = activation_luts(kind, fmts)
    idx = lut_index(int(z_raw), fmts)
    a, d = int(F[idx]), int(D[idx])
    out: list[Slot] = []
    for slot in z_slots:
        if slot is None:
            out.append(None)
            continue
        v = requantize(d * int(slot[0]), fmts.x.frac + fmts.t.frac, fmts.t, sat)
        out.append((v, int(slot[1])) if v != 0 else None)
    return a, out
