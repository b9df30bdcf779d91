"""The activation stage RTL equals its model `golden.activation.activation_slots`, over kinds, K and formats."""

import gc

import pytest
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.data import StructLayout
from amaranth.lib.wiring import In, Out

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import HwFormats
from dpfm.hw.activation import Activation
from dpfm.hw.streams import dual_layout
from dpfm.sim.runner import run_cocotb

ID_BITS = 8
NARROW = "x=s12.8,w=s12.8,t=s12.8,g=s24.16,lut_bits=8"


@pytest.mark.iverilog
@pytest.mark.parametrize("kind, k, fmts", [
    ("sigmoid", 1, "x=s16.12,t=s16.12"),
    ("tanh", 3, "x=s16.12,t=s12.8,g=s32.20"),
    ("relu", 8, NARROW),
    ("sigmoid", 16, NARROW),
    ("identity", 2, "x=s16.12,t=s16.12"),
    # z reaches below -8 only with more integer bits than s16.12, and a coarse table makes the clamped end's
    # entry differ from its neighbour's (at lut_bits=10 they quantize alike, so a wrong clamp goes unseen)
    ("sigmoid", 2, "x=s16.10,t=s16.12,g=s32.22,lut_bits=5"),
    # s8.8 holds less than sigmoid's 0.5 at z = 0: F is clamped, and moving along the slope passes the largest
    # value, so the unit's clamp of `a` and its count exist and are exercised
    ("sigmoid", 2, "x=s8.8,w=s8.8,t=s8.8,g=s16.16,lut_bits=6"),
])
def test_activation_matches_golden(tmp_path, kind, k, fmts):
    fmts = HwFormats.parse(fmts)
    params = {"kind": kind, "k": k, "fmts": str(fmts), "id_bits": ID_BITS, "n": 300, "seed": k}
    run_cocotb(Activation(kind, k, fmts, ID_BITS), name="activation", test_module="dpfm.sim.tb_activation",
               build_dir=tmp_path, params=params, seed=k).check()


class BypassHarness(wiring.Component):
    """An Activation with the identity bypass whose `identity` flag travels in the input payload, so the
    testbench's stream driver presents flag and dual in the same cycle, as the sequencer does."""

    def __init__(self, kind: str, k: int, fmts, id_bits: int):
        self.act = Activation(kind, k, fmts, id_bits, bypass=True)
        layout = dual_layout(k, fmts.x, fmts.t, id_bits)
        super().__init__({
            "i": In(stream.Signature(StructLayout({"dual": layout, "identity": 1}))),
            "o": Out(stream.Signature(layout)),
            "sat": Out(range(k + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.act = act = self.act
        m.d.comb += [
            act.i.valid.eq(self.i.valid), self.i.ready.eq(act.i.ready),
            act.i.p.eq(self.i.p.dual), act.identity.eq(self.i.p.identity),
            self.sat.eq(act.sat),
        ]
        wiring.connect(m, act.o, wiring.flipped(self.o))
        return m


@pytest.mark.iverilog
@pytest.mark.parametrize("kind, k, fmts", [
    ("sigmoid", 8, "x=s16.12,t=s16.12"),
    ("relu", 1, NARROW),
])
def test_identity_bypass_matches_golden(tmp_path, kind, k, fmts):
    """Table and identity neurons interleaved through one unit (the seed-sum output layer's path)."""
    fmts = HwFormats.parse(fmts)
    params = {"kind": kind, "k": k, "fmts": str(fmts), "id_bits": ID_BITS, "n": 300, "seed": k + 100,
              "bypass": True}
    run_cocotb(BypassHarness(kind, k, fmts, ID_BITS), name="activation", test_module="dpfm.sim.tb_activation",
               build_dir=tmp_path, params=params, seed=k).check()


# The refused unit exists (its __init__ raised), so Amaranth warns that it was never elaborated; it is
# collected inside the test, where that warning is filtered.
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("kind, fmts", [("identity", "x=s16.12"), ("sigmoid", "x=s8.7,t=s8.7,g=s16.14")])
def test_identity_bypass_needs_a_table_and_one(kind, fmts):
    with pytest.raises(DpfmError, match="identity bypass") as refused:
        Activation(kind, 4, HwFormats.parse(fmts), ID_BITS, bypass=True)
    del refused
    gc.collect()
