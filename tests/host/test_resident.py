"""Resident training (docs/ARITHMETIC.md 7) through `host.device.Device` on the co-simulated board (Verilator,
the gateware UART link): the core shuffles and trains whole epochs by itself, and the weights, the loss
history and both generators' states equal the golden toper trainer's resident epochs bit for bit, across
runs, checkpoints and a switch back to streamed training."""

import numpy as np
import pytest

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.contract.net import flatten
from dpfm.golden.fixedpoint import quantize
from dpfm.golden.mlp import GoldenTrainer
from dpfm.golden.tasks import get_task
from dpfm.host.device import Device
from dpfm.host.link import LinkClient, SerialPort
from dpfm.hw.config import CoreConfig

pytestmark = [pytest.mark.verilator, pytest.mark.slow]

K = 4
TASK = get_task("seed-sum")
CAPACITY = 64
CONFIG = CoreConfig.from_task("seed-sum", K, resident=CAPACITY)


@pytest.fixture(scope="module")
def cosim():
    from dpfm.sim.cosim import Cosim, build, core_slave
    with Cosim(build(core_slave(CONFIG))) as sim:
        yield sim


@pytest.fixture(scope="module")
def data():
    X, Y, X_val, Y_val = TASK.load()
    return X[:57], Y[:57], X_val[:20], Y_val[:20]    # 57 = five batches of 10 and a tail of 7


def device(cosim, **kw):
    kw = {"lr": TASK.lr_for(K), "batch": TASK.batch, "seed": 3, "dither": True, **kw}
    return Device(LinkClient(SerialPort(cosim.url)), CONFIG, **kw)


def golden():
    return GoldenTrainer(TASK.spec, K, lr=TASK.lr_for(K), batch=TASK.batch, seed=3, fixed=HwFormats(),
                         tangent="toper", dither=True)


def raw(layers):
    return quantize(flatten(TASK.spec, layers), HwFormats().w)


def test_resident_runs_equal_golden_and_continue_from_a_checkpoint(cosim, data, tmp_path):
    """Three epochs in runs of two and one (validation after each run), a checkpoint, then one more run on a
    new session resumed from it: losses, weights, shuffle and dither states as golden's."""
    X, Y, X_val, Y_val = data
    gold = golden()
    with device(cosim) as dev:
        got = dev.train(X, Y, 3, X_val, Y_val, progress=False, resident=2, checkpoint=tmp_path / "ck.npz")
        want = gold.train(X, Y, 3, X_val, Y_val, progress=False, resident=2)
        assert got == want
        assert [v is None for v in got["val_loss"]] == [True, False, False]
        assert np.array_equal(dev.weights_raw, raw(gold.weights))
        assert (dev.shuffle_state, dev.dither_state) == (gold.shuffle_state, gold.dither_state)
        first = dev.counters()
    assert first["last_op_cycles"] > 0
    with device(cosim, seed=99) as dev:     # another start, replaced by the checkpoint
        dev.resume(tmp_path / "ck.npz")
        assert dev.epoch == 3 and dev.shuffle_state == gold.shuffle_state
        assert dev.train(X, Y, 1, progress=False, resident=64) == gold.train(X, Y, 1, progress=False, resident=64)
        assert np.array_equal(dev.weights_raw, raw(gold.weights))


def test_streamed_training_goes_on_after_a_resident_run(cosim, data):
    """The batch buffer is still the streamed mode's after a run (REG_DATA_PAGE back at 0), and inference
    over more samples than the buffer holds reads it too."""
    X, Y, X_val, Y_val = data
    gold = golden()
    with device(cosim) as dev:
        for trainer in (dev, gold):
            trainer.train(X, Y, 1, progress=False, resident=1)
        assert dev.train(X, Y, 1, X_val, Y_val, progress=False) == gold.train(X, Y, 1, X_val, Y_val, progress=False)
        assert np.array_equal(dev.predict(X), gold.predict(X))


def test_a_data_set_larger_than_the_memory_is_refused_before_anything_runs(cosim, data):
    X, Y, _, _ = data
    X_big, Y_big = np.concatenate([X, X]), np.concatenate([Y, Y])
    with device(cosim) as dev:
        before = dev.weights_raw
        with pytest.raises(DpfmError, match=f"114 samples, the core's data set memory holds {CAPACITY}") as err:
            dev.train(X_big, Y_big, 1, progress=False, resident=1)
        assert "--resident-samples 114" in err.value.fix
        assert dev.epoch == 0 and np.array_equal(dev.weights_raw, before)


def test_a_new_session_attaches_after_a_resident_run_its_host_left(cosim, data):
    """A host starts a resident run and dies at once. The core trains the run to its end and holds; a new
    session attaches, adopts the weights and both generators' states from it, and trains on exactly as the
    golden model does after the same run."""
    X, Y, _, _ = data
    first = device(cosim)
    first._start_resident_run(first._quantize(X, "inputs"), first._quantize(Y, "targets"), 3)
    first.client.link.close()                    # the host is gone
    gold = golden()
    gold.train(X, Y, 3, progress=False, resident=3)
    with device(cosim, seed=99, attach=True) as second:
        assert np.array_equal(second.weights_raw, raw(gold.weights))
        assert (second.shuffle_state, second.dither_state) == (gold.shuffle_state, gold.dither_state)
        assert second.train(X, Y, 1, progress=False, resident=1) == gold.train(X, Y, 1, progress=False, resident=1)
        assert np.array_equal(second.weights_raw, raw(gold.weights))


def test_the_co_simulated_core_finishes_a_run_with_no_host_connected(cosim, data):
    """As a board's core does: the harness keeps clocking a busy core while no client is connected, so the
    first thing a new session reads is a finished run (the run needs about 40,000 cycles; without a busy
    core's clock the session's first read would find it where the host left it)."""
    import time

    from dpfm.golden.contract import regmap
    X, Y, _, _ = data
    first = device(cosim)
    first._start_resident_run(first._quantize(X, "inputs"), first._quantize(Y, "targets"), 3)
    first.client.link.close()
    time.sleep(2.0)
    with LinkClient(SerialPort(cosim.url)) as client:
        words = client.read(regmap.address(regmap.REGION_REGS, regmap.REG_STATUS),
                            regmap.REG_EPOCHS_DONE - regmap.REG_STATUS + 1)    # STATUS .. EPOCHS_DONE in one read
    assert (words[0], words[-1]) == (regmap.STATUS_DONE, 3)
