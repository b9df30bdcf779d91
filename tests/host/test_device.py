"""`host.device.Device` on the co-simulated board (Verilator: gateware link + DpfmCore, over socket://):
seed-sum trained through it equals the golden fixed-point toper trainer bit for bit, checkpoints resume
exactly (also across the golden and device backends), and wrong use is refused with a DpfmError."""

import random

import numpy as np
import pytest

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.contract.net import NetSpec, flatten
from dpfm.golden.fixedpoint import quantize
from dpfm.golden.mlp import GoldenTrainer
from dpfm.golden.tasks import get_task
from dpfm.golden.trainer import Trainer
from dpfm.host.device import Device, open_device
from dpfm.host.link import ByteLink, LinkClient, SerialPort
from dpfm.hw.config import CoreConfig
from dpfm.hw.identity import core_identity, source_hash
from dpfm.sim.cosim import SIM_BAUD

K = 4
TASK = get_task("seed-sum")


@pytest.fixture(scope="module")
def cosim():
    from dpfm.sim.cosim import Cosim, build, core_slave
    with Cosim(build(core_slave(CoreConfig.from_task("seed-sum", K)))) as sim:
        yield sim


@pytest.fixture(scope="module")
def data():
    X, Y, X_val, Y_val = TASK.load()
    return X[:60], Y[:60], X_val[:20], Y_val[:20]


def device(cosim, **kw):
    kw = {"lr": TASK.lr, "batch": TASK.batch, "seed": 3, **kw}
    return Device(LinkClient(SerialPort(cosim.url)), CoreConfig.from_task("seed-sum", K), **kw)


def golden(seed=3, dither=False):
    return GoldenTrainer(TASK.spec, K, lr=TASK.lr, batch=TASK.batch, seed=seed, fixed=HwFormats(), tangent="toper",
                         dither=dither)


def raw(layers):
    return quantize(flatten(TASK.spec, layers), HwFormats().w)


@pytest.mark.verilator
@pytest.mark.slow
@pytest.mark.parametrize("dither", [False, True], ids=["plain", "dither"])
def test_training_equals_golden_toper_bit_for_bit(cosim, data, dither):
    X, Y, X_val, Y_val = data
    gold = golden(dither=dither)
    with device(cosim, dither=dither) as dev:
        assert np.array_equal(dev.weights_raw, raw(gold.weights))
        history = dev.train(X, Y, 3, X_val, Y_val, progress=False)
        expected = gold.train(X, Y, 3, X_val, Y_val, progress=False)
        assert np.array_equal(dev.weights_raw, raw(gold.weights))
        assert history == expected
        assert np.array_equal(dev.predict(X_val), gold.predict(X_val))
        assert dev.train_batch(X[:7], Y[:7]) == gold.train_batch(X[:7], Y[:7])
        assert np.array_equal(dev.weights_raw, raw(gold.weights))
        assert dev.dither_state == gold.dither_state
        counted, expected = dev.fixed_counters, gold.fixed_counters
        assert counted["saturations"] == expected["saturations"] and counted["evictions"] > expected["evictions"]
    if dither:   # the dither changed the run, so the comparison above could fail on a core that ignores it
        plain = golden()
        plain.train(X, Y, 3, X_val, Y_val, progress=False)
        assert not np.array_equal(plain._raw, gold._raw)


@pytest.mark.verilator
@pytest.mark.slow
def test_an_exact_output_layer_trains_as_golden_and_only_on_its_core(cosim, data, tmp_path):
    """A core built with the exact output layer (docs/ARITHMETIC.md 3f) trains as the golden toper trainer with
    it, checkpoints included; the run is refused on a core built without it, naming the item."""
    from dpfm.sim.cosim import Cosim, build, core_slave
    X, Y, X_val, Y_val = data
    config = CoreConfig.from_task("seed-sum", K, exact_last=True)
    gold = GoldenTrainer(TASK.spec, K, lr=TASK.lr, batch=TASK.batch, seed=3, fixed=HwFormats(), tangent="toper",
                         dither=True, exact_last=True)
    with Cosim(build(core_slave(config))) as sim:
        with Device(LinkClient(SerialPort(sim.url)), config, lr=TASK.lr, batch=TASK.batch, seed=3, dither=True) as dev:
            assert dev.exact_last
            assert dev.train(X, Y, 2, X_val, Y_val, progress=False) == gold.train(X, Y, 2, X_val, Y_val, progress=False)
            assert np.array_equal(dev.weights_raw, raw(gold.weights))
            dev.save(tmp_path / "ck.npz")
    assert GoldenTrainer.load(tmp_path / "ck.npz").exact_last
    with pytest.raises(DpfmError, match="last_layer exact here, slots on the device"):
        Device(LinkClient(SerialPort(cosim.url)), config, lr=TASK.lr, batch=TASK.batch, seed=3)


@pytest.mark.verilator
@pytest.mark.slow
def test_fine_tuning_the_last_layer_after_full_training_equals_golden(cosim, data, tmp_path):
    """Train every layer, save, resume with only the last layer learning (REG_TRAIN_MASK): the device equals
    the golden toper trainer, and the lower layers keep the checkpoint's weights exactly."""
    X, Y, X_val, Y_val = data
    gold = golden(dither=True)
    gold.train(X, Y, 1, progress=False)
    gold.save(tmp_path / "pre.npz")
    tuned = GoldenTrainer(TASK.spec, K, lr=TASK.lr, batch=TASK.batch, seed=3, fixed=HwFormats(), tangent="toper",
                          dither=True, train_layers=(2,))
    tuned.resume(tmp_path / "pre.npz")
    with device(cosim, dither=True, train_layers=(2,)) as dev:
        dev.resume(tmp_path / "pre.npz")
        assert dev.train_layers == (2,)
        assert dev.train(X, Y, 2, X_val, Y_val, progress=False) == tuned.train(X, Y, 2, X_val, Y_val, progress=False)
        assert np.array_equal(dev.weights_raw, raw(tuned.weights))
    for l, ((W0, b0), (W1, b1)) in enumerate(zip(GoldenTrainer.load(tmp_path / "pre.npz").weights, tuned.weights)):
        assert (np.array_equal(W0, W1) and np.array_equal(b0, b1)) == (l < 2), f"layer {l}"


@pytest.mark.verilator
@pytest.mark.slow
def test_a_new_session_attaches_where_a_dead_host_left_the_core(cosim, data, tmp_path):
    """A host saves a checkpoint at the epoch's end, trains two more batches and dies (its socket closes, no
    clean-up). A new session attaches: it finds those weights and that dither state on the core, takes the
    epoch, shuffle and history from the checkpoint, and trains on exactly as the golden model does from
    the same point; the core's sample count carries over, so the end-of-run check holds."""
    X, Y, X_val, Y_val = data
    first = device(cosim, dither=True)
    first.train(X, Y, 1, progress=False, checkpoint=tmp_path / "ck.npz")
    first.train_batch(X[:10], Y[:10])
    first.train_batch(X[10:20], Y[10:20])
    left, state = first.weights_raw, first.dither_state
    first.client.link.close()                    # the host is gone
    with device(cosim, seed=99, attach=True) as second:
        assert np.array_equal(second.weights_raw, left) and second.dither_state == state
        second.resume(tmp_path / "ck.npz")
        assert second.epoch == 1 and np.array_equal(second.weights_raw, left)
        second.train(X, Y, 1, X_val, Y_val, progress=False)
        after = second.weights_raw
    gold = GoldenTrainer.load(tmp_path / "ck.npz")
    gold._raw[0], gold.dither_state = left, state
    gold.train(X, Y, 1, X_val, Y_val, progress=False)
    assert np.array_equal(after, gold._raw[0])


@pytest.mark.verilator
@pytest.mark.slow
def test_checkpoint_resume_continues_exactly(cosim, data, tmp_path):
    X, Y, _, _ = data
    path = tmp_path / "device.npz"
    with device(cosim) as dev:
        dev.train(X, Y, 1, progress=False, checkpoint=path)
        dev.train(X, Y, 1, progress=False)
        straight = dev.weights_raw
    with device(cosim, seed=99) as dev:          # a different start, replaced by the checkpoint
        dev.resume(path)
        assert dev.epoch == 1
        dev.train(X, Y, 1, progress=False)
        assert np.array_equal(dev.weights_raw, straight)
        assert len(dev.history["train_loss"]) == 2


@pytest.mark.verilator
@pytest.mark.slow
@pytest.mark.parametrize("dither", [False, True], ids=["plain", "dither"])
def test_checkpoints_interchange_with_golden_toper(cosim, data, tmp_path, dither):
    """One checkpoint format: the device continues a golden toper trainer's checkpoint, and the golden
    trainer continues the device's, both bit for bit as if training had never stopped (with the dither, its
    generator's state travels with the checkpoint)."""
    X, Y, X_val, Y_val = data
    straight = golden(dither=dither)
    straight.train(X, Y, 3, X_val, Y_val, progress=False)
    first = golden(dither=dither)
    first.train(X, Y, 1, X_val, Y_val, progress=False)
    first.save(tmp_path / "golden.npz", extra={"task": TASK.name})
    with device(cosim, seed=99, dither=dither) as dev:
        dev.resume(tmp_path / "golden.npz")
        assert (dev.epoch, dev.extra) == (1, {"task": TASK.name})
        dev.train(X, Y, 1, X_val, Y_val, progress=False, checkpoint=tmp_path / "device.npz")
    resumed = GoldenTrainer.load(tmp_path / "device.npz")
    assert (resumed.lr, resumed.batch, resumed.tangent, resumed.fixed) == (TASK.lr, TASK.batch, "toper", HwFormats())
    resumed.train(X, Y, 1, X_val, Y_val, progress=False)
    assert np.array_equal(resumed._raw, straight._raw)
    assert resumed.history == straight.history and resumed.epoch == 3
    assert resumed.dither_state == straight.dither_state


@pytest.mark.verilator
@pytest.mark.slow
def test_wrong_use_is_refused(cosim, tmp_path):
    with pytest.raises(DpfmError, match="sample buffer"):
        device(cosim, batch=17)
    for run, differs in [(CoreConfig.from_task("seed-sum", 3), "k 3 here, 4 on the device"),
                         (CoreConfig.from_task("seed-sum", K, toper="parallel"), "toper parallel-5 here, serial on"),
                         (CoreConfig.from_task("seed-sum", K, HwFormats.parse("x=s16.10,g=s32.22")),
                          "x s16.10 here, s16.12 on the device; g s32.22 here, s32.24 on the device"),
                         (CoreConfig(NetSpec((4, 8, 2, 1), TASK.spec.activations), K), "sizes 4,8,2,1 here, 4,5,5,1 on"),
                         (CoreConfig(NetSpec((4, 5, 5, 1), ("tanh", "tanh", "identity")), K), "act tanh,tanh,identity here")]:
        with pytest.raises(DpfmError, match=differs):
            Device(LinkClient(SerialPort(cosim.url)), run)
    with device(cosim) as dev:
        assert dev.identity.baud == str(SIM_BAUD) and dev.identity.src == source_hash()
        with pytest.raises(DpfmError, match="does not fit network"):
            dev.train(np.zeros((4, 3)), np.zeros(4), 1, progress=False)
        GoldenTrainer(TASK.spec, K, lr=TASK.lr, batch=TASK.batch, seed=3).save(tmp_path / "float.npz")
        with pytest.raises(DpfmError, match="not a device checkpoint .* in float"):
            dev.resume(tmp_path / "float.npz")


@pytest.mark.verilator
def test_info_shows_what_the_core_was_built_for(cosim, tmp_path, capsys):
    import json

    from dpfm.host.cli import main
    assert main(["info", "--port", cosim.url, "--json", str(tmp_path / "info.json")]) == 0
    out = capsys.readouterr().out
    assert "network  4,5,5,1  activations sigmoid,sigmoid,identity" in out and "K=4  toper serial" in out
    assert "built from this dpfm's" in out
    info = json.loads((tmp_path / "info.json").read_text())
    expected = core_identity(CoreConfig.from_task("seed-sum", K), SIM_BAUD)
    assert info["build_id"] == f"{expected.build_id:08x}" and info["x"] == "s16.12" and info["baud"] == str(SIM_BAUD)
    assert set(info["counters"]) == {"samples_done", "saturations", "evictions", "dither_state", "status",
                                     "train_mask"}
    assert info["counters"]["status"] & 1 == 0 and 0 < info["counters"]["train_mask"] <= 0b111


def test_the_device_serves_the_trainer_protocol():
    """Training, losses and checkpoints are the protocol's, not the device's own."""
    assert issubclass(Device, Trainer)
    for name in ("train", "train_batch", "predict", "evaluate", "save", "resume"):
        assert getattr(Device, name) is getattr(Trainer, name), name


def test_open_device_arguments():
    config = CoreConfig.from_task("seed-sum", K)
    with pytest.raises(DpfmError, match="needs a serial port"):
        open_device("board", config)
    with pytest.raises(DpfmError, match="unknown backend"):
        open_device("fpga", config)
    with pytest.raises(DpfmError, match="ttyUSB"):
        open_device("board", config, port="/dev/ttyDPFM-missing")


class FaultyLink(ByteLink):
    """Test fixture: a real port whose traffic is damaged on purpose, reproducibly. Some requests get one
    bit flipped (the device refuses them or never sees their end); some reply chunks are lost (the host
    times out and re-sends a command the device may already have executed)."""

    def __init__(self, port: SerialPort, seed: int, p_corrupt: float, p_drop: float):
        self.port = port
        self.name = port.name
        self.rng = random.Random(seed)
        self.p_corrupt, self.p_drop = p_corrupt, p_drop
        self.corrupted = self.dropped = 0

    def write(self, data: bytes) -> None:
        if self.rng.random() < self.p_corrupt:
            data = bytearray(data)
            data[self.rng.randrange(1, len(data) - 1)] ^= 1 << self.rng.randrange(8)
            self.corrupted += 1
        self.port.write(bytes(data))

    def read(self, timeout: float) -> bytes:
        chunk = self.port.read(timeout)
        if chunk and self.rng.random() < self.p_drop:
            self.dropped += 1
            return b""
        return chunk

    def close(self) -> None:
        self.port.close()


@pytest.mark.verilator
@pytest.mark.slow
def test_training_over_a_damaged_link_runs_every_command_once(cosim, data):
    """Lost replies make the host re-send CTRL_TRAIN writes; the sequence rule must keep each training
    step single (weights equal golden, SAMPLES_DONE equals what the host started)."""
    X, Y, _, _ = data
    link = FaultyLink(SerialPort(cosim.url), seed=5, p_corrupt=0.08, p_drop=0.08)
    client = LinkClient(link, timeout=0.3, retries=8)
    gold = golden()
    with Device(client, CoreConfig.from_task("seed-sum", K), lr=TASK.lr, batch=TASK.batch, seed=3) as dev:
        dev.train(X, Y, 2, progress=False)
        gold.train(X, Y, 2, progress=False)
        assert np.array_equal(dev.weights_raw, raw(gold.weights))
    assert link.corrupted >= 2 and link.dropped >= 2
    assert client.stats.retries >= link.corrupted
    assert client.stats.duplicates >= 1, "no executed WRITE was re-sent: the test did not exercise the rule"


@pytest.mark.verilator
@pytest.mark.slow
def test_resident_training_is_refused_on_a_core_without_a_data_set_memory(cosim, data):
    X, Y, _, _ = data
    with device(cosim) as dev:
        with pytest.raises(DpfmError, match="built without resident training") as err:
            dev.train(X, Y, 1, progress=False, resident=4)
        assert "--resident-samples 60" in err.value.fix and dev.epoch == 0
