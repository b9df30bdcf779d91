"""The activation stage RTL equals `golden.toper.activation_slots`, over kinds, K and formats."""

import pytest

from golden.fixedpoint import HwFormats
from hw.activation import Activation
from sim.runner import run_cocotb

ID_BITS = 8
NARROW = "x=s12.8,w=s12.8,t=s12.8,g=s24.16,lut_bits=8"


@pytest.mark.parametrize("kind, k, fmts", [
    ("sigmoid", 1, "x=s16.12,t=s16.12"),
    ("tanh", 3, "x=s16.12,t=s12.8,g=s32.20"),
    ("relu", 8, NARROW),
    ("sigmoid", 16, NARROW),
    ("identity", 2, "x=s16.12,t=s16.12"),
])
def test_activation_matches_golden(tmp_path, kind, k, fmts):
    fmts = HwFormats.parse(fmts)
    params = {"kind": kind, "k": k, "fmts": str(fmts), "id_bits": ID_BITS, "n": 300, "seed": k}
    run_cocotb(Activation(kind, k, fmts, ID_BITS), name="activation", test_module="sim.tb_activation",
               build_dir=tmp_path, params=params, seed=k).check()
