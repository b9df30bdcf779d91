"""The CLI's co-simulation backend with the parallel toper (docs/ARITHMETIC.md 3b): `dpfm train --backend sim
--tangent toper-parallel` (or `toper-parallel-S`) builds the parallel core, trains seed-sum through the UART
link, and its weights equal the golden trainer of the same tangent bit for bit; it also continues a golden
checkpoint of that tangent. (On seed-sum the serial and parallel tangents happen to train identically; what
tells them apart is the core's identity block, which the Device checks against the parallel configuration before
training, and tests/sim/test_parallel_lane.py, test_core_parallel.py.)"""

import json

import numpy as np
import pytest

from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.contract.net import flatten
from dpfm.golden.fixedpoint import quantize
from dpfm.golden.mlp import GoldenTrainer
from dpfm.golden.tasks import get_task
from dpfm.host.cli import main

pytestmark = [pytest.mark.verilator, pytest.mark.slow]


@pytest.mark.parametrize("tangent", ["toper-parallel", "toper-parallel-2"])   # at K=2: 3 sources, and 2
def test_cli_trains_the_parallel_core_bit_exactly(tmp_path, capsys, tangent):
    task = get_task("seed-sum")
    out = tmp_path / "par.npz"
    assert main(["train", "--task", "seed-sum", "--k", "2", "--backend", "sim", "--tangent", tangent,
                 "--epochs", "2", "--save", str(out)]) == 0
    # the CLI's defaults: the task's rate for K=2 and the dither on
    gold = GoldenTrainer(task.spec, 2, lr=task.lr_for(2), batch=task.batch, init=task.init, seed=0,
                         fixed=HwFormats(), tangent=tangent, dither=True)
    X, Y, X_val, Y_val = task.load()
    gold.train(X, Y, 2, X_val, Y_val, progress=False)
    assert f"tangent {tangent}  " in capsys.readouterr().out
    assert np.array_equal(np.load(out)["weights_raw"][0], quantize(flatten(task.spec, gold.weights), HwFormats().w))


def test_cli_resumes_a_golden_checkpoint_on_the_parallel_core(tmp_path):
    """`--resume` reads the one checkpoint format on every backend: a golden toper-parallel run continued on
    the co-simulated parallel core has the loss curve of one uninterrupted golden run."""
    ck, resumed, straight = tmp_path / "ck.npz", tmp_path / "resumed.json", tmp_path / "straight.json"
    golden = ["train", "--task", "seed-sum", "--k", "2", "--fixed", "default", "--tangent", "toper-parallel"]
    assert main([*golden, "--epochs", "1", "--save", str(ck)]) == 0
    assert main(["train", "--backend", "sim", "--resume", str(ck), "--epochs", "1", "--json", str(resumed)]) == 0
    assert main([*golden, "--epochs", "2", "--json", str(straight)]) == 0
    a, b = json.loads(resumed.read_text()), json.loads(straight.read_text())
    assert (a["backend"], a["epochs"]) == ("sim", 2)
    assert a["loss_curve"] == b["loss_curve"] and a["train_loss"] == b["train_loss"]
