"""The training core with parallel lanes (docs/ARITHMETIC.md 3b) equals `FixedModel(tangent=cfg.tangent)`
(`toper-parallel`, or `toper-parallel-S` with S source topers) bit for bit through its bus (sim/tb_core.py).

The serial core's tests (tests/sim/test_core.py) cover the bus, the SGD pass and the lane fork; these add
the parallel lane inside the whole core: the merge tree's latency in the per-layer drains, its eviction and
saturation counts in the core's counters, and the identity block's source count that tells the host which
toper it talks to. With dithering on, the merge tree must rank by the flags the source topers drew.
"""

import json

import pytest

from dpfm.hw.config import CoreConfig
from dpfm.hw.core import DpfmCore
from dpfm.sim.core_cycles import core_plan, run_core_sim
from tests.sim.test_core import cycle_floor, dithered_plan

pytestmark = [pytest.mark.iverilog, pytest.mark.slow]   # each run simulates thousands of core cycles


@pytest.mark.parametrize("k, lanes, toper", [(1, 1, "parallel"), (8, 1, "parallel"), (3, 2, "parallel"),
                                            (8, 1, "parallel-3"), (3, 2, "parallel-2")])
def test_parallel_training_run_matches_golden(tmp_path, k, lanes, toper):
    cfg = CoreConfig.from_task("seed-sum", k, max_batch=16, lanes=lanes, toper=toper)
    plan = core_plan(cfg, "seed-sum", n_batches=2, batch=10, n_infer=8, seed=k, lr=0.1)
    assert plan["expect_evictions"] > 0 or k == 8   # the comparison covers evictions, not only their absence
    run_core_sim(DpfmCore(cfg), tmp_path, plan, seed=k).check()
    for entry in json.loads((tmp_path / "cycles.json").read_text()):
        assert cycle_floor(cfg, entry["samples"], entry["op"] == "train") <= entry["cycles"], entry


@pytest.mark.parametrize("k, lanes, toper", [(3, 2, "parallel"), (8, 1, "parallel-3")])
def test_dithered_parallel_training_run_matches_golden(tmp_path, k, lanes, toper):
    cfg = CoreConfig.from_task("seed-sum", k, max_batch=16, lanes=lanes, toper=toper)
    run_core_sim(DpfmCore(cfg), tmp_path, dithered_plan(cfg, seed=k), seed=k).check()
