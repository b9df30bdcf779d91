"""The CLI's co-simulation backend with the parallel toper (docs/ARITHMETIC.md 3b): `dpfm train --backend sim
--tangent toper-parallel` (or `toper-parallel-S`) builds the parallel core, trains seed-sum through the UART
link, and its weights equal the golden trainer of the same tangent bit for bit. (On seed-sum the serial and parallel tangents happen to
train identically; what tells them apart is the core's CONFIG0, which the Device checks against the parallel
configuration before training, and tests/sim/test_parallel_lane.py, test_core_parallel.py.)"""

import numpy as np
import pytest

from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.fixedpoint import quantize
from dpfm.golden.mlp import GoldenTrainer
from dpfm.golden.contract.net import flatten
from dpfm.golden.tasks import get_task
from dpfm.host.cli import main

pytestmark = [pytest.mark.verilator, pytest.mark.slow]


@pytest.mark.parametrize("tangent", ["toper-parallel", "toper-parallel-2"])   # at K=2: 3 sources, and 2
def test_cli_trains_the_parallel_core_bit_exactly(tmp_path, capsys, tangent):
    task = get_task("seed-sum")
    out = tmp_path / "par.npz"
    assert main(["train", "--task", "seed-sum", "--k", "2", "--backend", "sim", "--tangent", tangent,
                 "--epochs", "2", "--save", str(out)]) == 0
    gold = GoldenTrainer(task.spec, 2, lr=task.lr, batch=task.batch, init=task.init, seed=0, fixed=HwFormats(),
                         tangent=tangent)
    X, Y, X_val, Y_val = task.load()
    gold.train(X, Y, 2, X_val, Y_val, progress=False)
    assert f"tangent {tangent}  " in capsys.readouterr().out
    assert np.array_equal(np.load(out)["weights_raw"], quantize(flatten(task.spec, gold.weights), HwFormats().w))
