"""The whole training core, through its bus only, equals the hardware-exact golden model bit for bit.

For seed-sum (real data, Glorot weights) at K in {1, 3, 8} and 1, 2 or 5 lanes: a short training run of several batches, each
followed by a read-back of every weight, then an inference over validation samples; the weights, the
outputs and the SATURATIONS / EVICTIONS / SAMPLES_DONE counters must equal `golden.fixed_mlp.FixedModel(
tangent="toper")` exactly (sim/tb_core.py). A core with the SGD rounding off by one must fail the same
comparison. The CYCLES register is checked against the testbench's own cycle count and a hard floor.
With a non-zero dither state in REG_DITHER (docs/ARITHMETIC.md 3d) training must also equal the model, and
REG_DITHER must read the model's `dither_state` after every operation (inference leaves it alone).
"""

import dataclasses
import json

import pytest

from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.fixed_mlp import FixedModel
from dpfm.hw.config import CoreConfig
from dpfm.hw.core import DpfmCore
from dpfm.hw.update import SgdUnit
from dpfm.sim.core_cycles import core_plan, run_core_sim

pytestmark = [pytest.mark.iverilog, pytest.mark.slow]   # each run simulates thousands of core cycles

BATCH = 10
LR = 0.1


#: A non-zero dither generator state for the dithered runs.
DITHER = 0x2545F491


def plan(cfg: CoreConfig, n_batches: int, n_infer: int, seed: int, dither_state: int = 0) -> dict:
    return core_plan(cfg, "seed-sum", n_batches=n_batches, batch=BATCH, n_infer=n_infer, seed=seed, lr=LR,
                     dither_state=dither_state)


def dithered_plan(cfg: CoreConfig, seed: int) -> dict:
    """A plan with dithering on, which must differ from the same plan with dithering off in the weights or
    the eviction count (else the run could not tell a core that ignores the dither state)."""
    on, off = plan(cfg, 2, 8, seed, DITHER), plan(cfg, 2, 8, seed)
    assert [op.get("expect_w") for op in on["ops"]] != [op.get("expect_w") for op in off["ops"]] \
        or on["expect_evictions"] != off["expect_evictions"], "dithering changes nothing: the check is vacuous"
    assert on["ops"][-1]["expect_dither"] != DITHER
    return on


def cycle_floor(cfg: CoreConfig, samples: int, train: bool) -> int:
    """Every MAC step of a unit group takes at least one cycle and the SGD pass one cycle per weight."""
    steps = sum(-(-n_out // cfg.lanes) * (n_in + 1)
                for n_out, n_in in (cfg.spec.layer_shape(l) for l in range(cfg.spec.n_layers)))
    return samples * steps + (cfg.n_params if train else 0)


@pytest.mark.parametrize("k, lanes", [(1, 1), (8, 1), (3, 2), (8, 5)])
def test_training_run_matches_golden(tmp_path, k, lanes):
    """Lanes 2 (groups of 2, 2, 1 units: an idle lane in the last group) and 5 (one group per layer, and
    four idle lanes for the single output) exercise the lane fork and the round-robin result order."""
    cfg = CoreConfig.from_task("seed-sum", k, max_batch=16, lanes=lanes)
    run_core_sim(DpfmCore(cfg), tmp_path, plan(cfg, n_batches=2, n_infer=8, seed=k), seed=k).check()
    for entry in json.loads((tmp_path / "cycles.json").read_text()):
        assert cycle_floor(cfg, entry["samples"], entry["op"] == "train") <= entry["cycles"], entry


@pytest.mark.parametrize("k, lanes", [(3, 1), (3, 2), (8, 5)])
def test_dithered_training_run_matches_golden(tmp_path, k, lanes):
    """Lanes 2 and 5 take the masks of a unit group side by side, with partial groups counting only their
    units."""
    cfg = CoreConfig.from_task("seed-sum", k, max_batch=16, lanes=lanes)
    run_core_sim(DpfmCore(cfg), tmp_path, dithered_plan(cfg, seed=k), seed=k).check()


@pytest.mark.parametrize("k, lanes, toper, train", [(8, 1, "serial", (2,)), (3, 2, "serial", (0, 2)),
                                                    (3, 1, "parallel", (1, 2))])
def test_frozen_layers_train_as_golden_and_cost_fewer_cycles(tmp_path, k, lanes, toper, train):
    """REG_TRAIN_MASK (docs/ARITHMETIC.md 3e): the frozen layers' weights stay as they were, the rest equal
    the model's (dithered), and a serial core frozen below its last layer spends fewer cycles per sample."""
    from dpfm.golden.contract.organisation import Organisation
    cfg = CoreConfig.from_task("seed-sum", k, max_batch=16, lanes=lanes, toper=Organisation.parse(toper))
    frozen = core_plan(cfg, "seed-sum", n_batches=2, batch=BATCH, n_infer=8, seed=k, lr=LR, dither_state=DITHER,
                       train_layers=train)
    spec = cfg.spec
    for l in range(spec.n_layers):
        ids = slice(spec.layer_base(l), spec.layer_base(l + 1))
        moved = frozen["ops"][1]["expect_w"][ids] != frozen["w0"][ids]
        assert moved == (l in train), f"layer {l}: the plan itself must freeze exactly the frozen layers"
    run_core_sim(DpfmCore(cfg), tmp_path / "frozen", frozen, seed=k).check()
    if toper == "serial" and train == (2,):
        every = core_plan(cfg, "seed-sum", n_batches=2, batch=BATCH, n_infer=8, seed=k, lr=LR, dither_state=DITHER)
        run_core_sim(DpfmCore(cfg), tmp_path / "every", every, seed=k).check()
        cycles = [json.loads((tmp_path / d / "cycles.json").read_text())[0]["cycles"] for d in ("frozen", "every")]
        assert cycles[0] < cycles[1], cycles


@pytest.mark.parametrize("k, lanes", [(8, 1), (3, 2)])
def test_ice40_block_rams_match_golden(tmp_path, k, lanes):
    """Elaborated for the iCEBreaker, the core's memories are SB_RAM40_4K instances (hw/bram.py), not
    Amaranth memories: run on yosys' cell models, the bitstream's netlist must train bit for bit too."""
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    cfg = CoreConfig.from_task("seed-sum", k, max_batch=16, lanes=lanes)
    result = run_core_sim(DpfmCore(cfg), tmp_path, plan(cfg, n_batches=2, n_infer=8, seed=k), seed=k,
                          platform=ICEBreakerPlatform())
    assert "SB_RAM40_4K" in (tmp_path / "dpfm_core.v").read_text()
    result.check()


class OffByOneSgd(SgdUnit):
    """MUTANT for the test below only: the SGD step rounds with one extra LSB."""

    def round_step(self, product):
        return super().round_step(product) + 1


class OffByOneCore(DpfmCore):
    sgd_unit = OffByOneSgd


def test_sgd_rounding_mutant_is_caught(tmp_path):
    """The comparison must fail on a core whose SGD rounding is off by one: proof that it can fail."""
    cfg = CoreConfig.from_task("seed-sum", 3, max_batch=16)
    result = run_core_sim(OffByOneCore(cfg), tmp_path, plan(cfg, n_batches=1, n_infer=2, seed=5), seed=5)
    assert result.tests and not result.passed, "the core testbench passed on a core with wrong SGD rounding"
    assert "weights after op 0" in next(iter(result.failures.values()))


class WrappingSgd(SgdUnit):
    """MUTANT for the test below only: the new weight wraps around format w instead of saturating (the
    clamp is still reported, so only the weights can tell)."""

    def clamp_weight(self, diff):
        _, clamped = super().clamp_weight(diff)
        return diff[:self.cfg.fmts.w.bits].as_signed(), clamped


class WrappingCore(DpfmCore):
    sgd_unit = WrappingSgd


class SgdClampCount(FixedModel):
    """The golden core, counting the clamps of its SGD step apart from every other saturation."""

    sgd_clamps = 0

    def sgd_update(self, w_raw, G_raw, lr_raw):
        before = self.sat.count
        w = super().sgd_update(w_raw, G_raw, lr_raw)
        SgdClampCount.sgd_clamps += self.sat.count - before
        return w


def test_sgd_saturation_mutant_is_caught(tmp_path):
    """A core whose SGD step wraps instead of saturating must fail, on a run where the golden SGD step
    does clamp (weights in s12.10, |w| < 2, at lr 1: without this run the mutant survived every test)."""
    cfg = CoreConfig.from_task("seed-sum", 3, HwFormats.parse("w=s12.10"), max_batch=16)
    SgdClampCount.sgd_clamps = 0
    plan = core_plan(cfg, "seed-sum", n_batches=2, batch=BATCH, n_infer=2, seed=5, lr=1.0, model_cls=SgdClampCount)
    assert SgdClampCount.sgd_clamps > 0, "the golden SGD step never clamps: the check would be vacuous"
    run_core_sim(DpfmCore(cfg), tmp_path / "core", plan, seed=5).check()
    result = run_core_sim(WrappingCore(cfg), tmp_path / "mutant", plan, seed=5)
    assert result.tests and not result.passed, "the core testbench passed on a core whose SGD step wraps"
    assert "weights after op" in next(iter(result.failures.values()))


@pytest.mark.parametrize("task, k, lanes, toper, train", [
    ("seed-sum", 3, 1, "serial", None), ("seed-sum", 3, 2, "parallel", None), ("seed-sum", 8, 1, "serial", (0, 1)),
    ("digits", 4, 1, "serial", None)])
def test_an_exact_output_layer_trains_as_golden(tmp_path, task, k, lanes, toper, train):
    """docs/ARITHMETIC.md 3f: the output neurons form no direct candidates, and the gradient unit adds their
    exact direct entries from the sequencer's copy of the layer's inputs (dithered runs; digits has ten
    output rows; a frozen output layer gets none)."""
    from dpfm.golden.contract.organisation import Organisation
    cfg = CoreConfig.from_task(task, k, max_batch=16, lanes=lanes, toper=Organisation.parse(toper), exact_last=True)
    exact = core_plan(cfg, task, n_batches=2, batch=BATCH, n_infer=4, seed=k, lr=LR, dither_state=DITHER,
                      train_layers=train)
    slots = core_plan(dataclasses.replace(cfg, exact_last=False), task, n_batches=2, batch=BATCH, n_infer=4, seed=k,
                      lr=LR, dither_state=DITHER, train_layers=train)
    differs = [op.get("expect_w") for op in exact["ops"]] != [op.get("expect_w") for op in slots["ops"]]
    assert differs == (train is None), "the exact output layer must change the run exactly when that layer learns"
    run_core_sim(DpfmCore(cfg), tmp_path, exact, seed=k).check()


@pytest.mark.parametrize("k, lanes, toper, n_data, dither", [
    (8, 1, "serial", 23, 0), (3, 2, "parallel", 20, DITHER)])
def test_a_resident_run_trains_as_golden(tmp_path, k, lanes, toper, n_data, dither):
    """docs/ARITHMETIC.md 7: epochs over the on-chip data set in the shuffle generator's order, with a
    shorter last batch (23 samples in batches of 10) or none (20), equal the golden model's weights, loss
    sums and generator states; a streamed inference afterwards still reads the batch buffer."""
    from dpfm.golden.contract.organisation import Organisation
    from dpfm.sim.core_cycles import resident_plan
    cfg = CoreConfig.from_task("seed-sum", k, max_batch=16, lanes=lanes, toper=Organisation.parse(toper), resident=32)
    plan = resident_plan(cfg, "seed-sum", n_data=n_data, batch=BATCH, epochs=2, seed=k, lr=LR,
                         shuffle_state=0x1234567, dither_state=dither)
    losses = plan["ops"][0]["expect_losses"]
    assert losses[0] != losses[1], "both epochs' losses are equal: the check could not tell them apart"
    run_core_sim(DpfmCore(cfg), tmp_path, plan, seed=k).check()


def test_a_resident_data_set_in_the_up5k_sprams_trains_as_golden(tmp_path):
    """Elaborated for the iCEBreaker, the data set memory is SB_SPRAM256KA instances (hw/bram.py
    SinglePortRam): run on yosys' cell models, a resident run equals golden bit for bit too."""
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    from dpfm.sim.core_cycles import resident_plan
    cfg = CoreConfig.from_task("seed-sum", 4, max_batch=16, resident=32)
    plan = resident_plan(cfg, "seed-sum", n_data=23, batch=BATCH, epochs=2, seed=4, lr=LR, shuffle_state=0x1234567)
    result = run_core_sim(DpfmCore(cfg), tmp_path, plan, seed=4, platform=ICEBreakerPlatform())
    assert "SB_SPRAM256KA" in (tmp_path / "dpfm_core.v").read_text()
    result.check()
