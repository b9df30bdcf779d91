"""`Device`: a training core over the link, as a backend of the `golden.trainer.Trainer` protocol.

The host keeps what every trainer keeps on the host side (the shuffle generator, the epoch counter, the
history) and the protocol's epoch driver uses them exactly as for the golden trainer, so with the same seed
the device sees the same initial weights (quantized as `golden.fixed_mlp.FixedModel` does) and the same
batches in the same order as `GoldenTrainer(fixed=..., tangent=<the core's tangent>)`; the weights then
agree bit for bit, and either continues the other's checkpoint. Per batch: upload the samples, run
CTRL_INFER (the batch loss before the update, as golden reports it), then CTRL_TRAIN.

Resident training (`train(..., resident=E)`, docs/ARITHMETIC.md 7) uploads the training set once into the
core's data set memory and starts runs of up to E epochs that the core trains alone; the host polls for the
epochs' loss sums (the progress bar) and checks afterwards that the core's shuffle and dither generators
stand where the golden model's would.
"""

import contextlib
import time

import numpy as np

from dpfm.golden import dither
from dpfm.golden import resident as onchip
from dpfm.golden.contract import regmap as R
from dpfm.golden.contract import wire
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.net import flatten, init_weights, train_mask, unflatten
from dpfm.golden.fixedpoint import to_float
from dpfm.golden.trainer import Trainer, mean_loss
from dpfm.host.core_identity import check_core
from dpfm.host.bus_link import BusClient
from dpfm.host.link import LinkClient, SerialPort


def _values(words) -> np.ndarray:
    """The signed raw values bus words carry (golden/contract/regmap.py)."""
    return R.from_word(np.asarray(words, dtype=np.int64))


class Device(Trainer):
    """A training core behind `client` (a `host.link.LinkClient`), configured as `config` (CoreConfig): a
    fixed-point trainer of one K, in the tangent mode of the core's toper, without momentum."""

    kind = "device"

    def __init__(self, client: LinkClient, config, lr=0.01, batch=10, init="glorot", seed=0, dither=False,
                 train_layers=None, attach: bool = False, poll_timeout: float = 60.0, owned=None):
        """`attach`: take over the core as an earlier host session left it (`_attach`) instead of starting
        it afresh with initial weights and a seeded dither state."""
        from dpfm.golden.fixed_mlp import FixedModel
        super().__init__(config.spec, config.k, lr=lr, batch=batch, init=init, seed=seed, fixed=config.fmts,
                         tangent=config.tangent, dither=dither, train_layers=train_layers,
                         exact_last=config.exact_last)
        self.client = client
        self.config = config
        self.poll_timeout = poll_timeout
        self._owned = owned
        self._model = FixedModel(self.spec, config.k, self.fixed, tangent=config.tangent,
                                 exact_last=config.exact_last)
        self._settings: dict[int, int] = {}
        self._samples_run = 0      # samples of every INFER/TRAIN this host started (SAMPLES_DONE's count)
        self._check_identity()
        if not 1 <= self.batch <= self.max_batch:
            raise DpfmError(f"batch {self.batch} does not fit the core's {self.max_batch}-sample buffer",
                            f"use --batch 1..{self.max_batch} or build the core with a larger max_batch")
        self.attached = attach
        if attach:
            self._attach()
            return
        self._set_reg(R.REG_CTRL, R.CTRL_CLEAR_COUNTERS)   # counters of this trainer's work, as golden's
        self._restore_dither_state(self.dither_state)
        self._set_train_mask()
        self.set_weights(init_weights(self.spec, self._rng, init))

    def _attach(self) -> None:
        """Adopt what the core holds after a host that stopped mid-run (a crash, a pulled cable): an operation
        it started runs to its end, and the core then holds; the weights stay on the core, the dither state
        and the sample count are read from it, and nothing is lost but the host's position in its epoch.
        With `resume`, a checkpoint then gives the epoch, shuffle state and history, not the weights (nor the
        resident shuffle state, which a resident run leaves on the core: its epochs are not in the history)."""
        deadline = time.monotonic() + self.poll_timeout
        while self._reg(R.REG_STATUS) & R.STATUS_BUSY:
            if time.monotonic() > deadline:
                raise DpfmError(f"the core is still busy after {self.poll_timeout:g} s",
                                "check the bitstream; reset the board and resume from the checkpoint")
            time.sleep(0.0005)
        self.dither_state = self._reg(R.REG_DITHER)
        self.dither = self.dither_state != dither.OFF
        self._shuffle_from_core = bool(self.resident_samples and self._reg(R.REG_SHUFFLE))
        if self._shuffle_from_core:   # where a resident run left the generator
            self.shuffle_state = self._reg(R.REG_SHUFFLE)
        self._samples_run = self._reg(R.REG_SAMPLES_DONE)
        self._set_train_mask()

    # --- registers --------------------------------------------------------------------------------------

    def _reg(self, index: int) -> int:
        return self.client.read(R.address(R.REGION_REGS, index), 1)[0]

    def last_op_cycles(self) -> int:
        """The core's busy cycles of its last operation (REG_CYCLES)."""
        return self._reg(R.REG_CYCLES)

    def counters(self) -> dict:
        """The core's counters: cycles and samples of the last operation, and the running totals."""
        return {"last_op_cycles": self.last_op_cycles(),
                "last_op_samples": self._settings.get(R.REG_N_SAMPLES, 0),
                "samples_done": self._reg(R.REG_SAMPLES_DONE), **self.fixed_counters}

    @property
    def fixed_counters(self) -> dict:
        """The core's saturation and eviction counts since this trainer opened it. Its evictions include the
        inference passes (the loss before each update, `predict`): the datapath ranks tangents in every forward
        pass, where the golden trainer evaluates without them, so they exceed the golden count."""
        return {"saturations": self._reg(R.REG_SATURATIONS), "evictions": self._reg(R.REG_EVICTIONS)}

    def _set_reg(self, index: int, value: int) -> None:
        self.client.write(R.address(R.REGION_REGS, index), [value])

    def _set_setting(self, index: int, value: int) -> None:
        """A RW register that only this host writes: skipped when it already holds `value` (saves a
        round trip per batch)."""
        if self._settings.get(index) != value:
            self._set_reg(index, value)
            self._settings[index] = value

    def _check_identity(self):
        self.identity = check_core(self.client, self.config)
        self.max_batch = int(self.identity.max_batch)
        self.resident_samples = int(self.identity.resident)
        self._data_set = None      # a digest of the resident data set the core holds, once uploaded
        self._shuffle_from_core = False   # an attached session adopted the core's resident shuffle state

    def _current_dither_state(self) -> int:
        """The core's dither state, which must be where the host's copy stepped it (docs/ARITHMETIC.md 3d)."""
        state = self._reg(R.REG_DITHER)
        if state != self.dither_state:
            raise DpfmError(f"the core's dither state is {state:#010x}, the host expects {self.dither_state:#010x} "
                            "after the neurons it trained", "the core or link is faulty: resume from the last "
                            "checkpoint")
        return state

    def _restore_dither_state(self, state: int) -> None:
        """Write the dither generator's state and read it back: a core without the generator (an older
        bitstream) would otherwise train without dither while the host believes it dithers. An attached
        session keeps the core's state, which is newer than a checkpoint's."""
        if self.attached:
            return
        self._set_reg(R.REG_DITHER, state)
        back = self._reg(R.REG_DITHER)
        if back != state:
            raise DpfmError(f"the core's dither state reads {back:#010x} after writing {state:#010x}: it has no "
                            "dither generator (docs/ARITHMETIC.md 3d)",
                            "rebuild and load the bitstream with this dpfm, or train with --dither off")
        self.dither_state = state

    def _restore_shuffle_state(self, state: int) -> None:
        """An attached session keeps the resident shuffle state it read from the core (`_attach`)."""
        if not self._shuffle_from_core:
            self.shuffle_state = state

    def _set_train_mask(self) -> None:
        """Write which layers learn (docs/ARITHMETIC.md 3e) and read it back."""
        mask = train_mask(self.spec, self.train_layers)
        self._set_reg(R.REG_TRAIN_MASK, mask)
        back = self._reg(R.REG_TRAIN_MASK)
        if back != mask:
            raise DpfmError(f"the core's train mask reads {back:#x} after writing {mask:#x}",
                            "the core or link is faulty: rebuild and load the bitstream with this dpfm")

    def _run(self, ctrl: int) -> None:
        """Start an operation and wait until the core reports it done."""
        self._set_reg(R.REG_CTRL, ctrl)
        self._samples_run += self._settings[R.REG_N_SAMPLES]
        deadline = time.monotonic() + self.poll_timeout
        while True:
            status = self._reg(R.REG_STATUS)
            if status & R.STATUS_DONE and not status & R.STATUS_BUSY:
                return
            if time.monotonic() > deadline:
                raise DpfmError(f"the core is still busy after {self.poll_timeout:g} s (status {status:#x})",
                                "check the bitstream; reset the board and resume from the checkpoint")
            time.sleep(0.0005)

    # --- weights ----------------------------------------------------------------------------------------

    @property
    def weights_raw(self) -> np.ndarray:
        words = self.client.read(R.address(R.REGION_WEIGHTS, 0), self.spec.n_params)
        raw = _values(words)
        w = self.fixed.w
        if np.any(raw < w.min_raw) or np.any(raw > w.max_raw):
            raise DpfmError(f"the device returned weights outside format {w}", "the core or link is faulty")
        return raw

    def set_weights_raw(self, raw) -> None:
        raw = np.asarray(raw, dtype=np.int64)
        self.client.write(R.address(R.REGION_WEIGHTS, 0), R.to_word(raw).tolist())
        if not np.array_equal(self.weights_raw, raw):
            raise DpfmError("the weights read back differ from those written", "the link or core is faulty")

    @property
    def weights(self) -> list:
        return unflatten(self.spec, to_float(self.weights_raw, self.fixed.w))

    def set_weights(self, layers) -> None:
        self.set_weights_raw(self._model.quantize_weights(flatten(self.spec, layers).astype(np.float64)))

    def _checkpoint_arrays(self) -> dict:
        raw = self.weights_raw
        return {"weights": to_float(raw, self.fixed.w)[None], "weights_raw": raw[None]}

    def _restore_arrays(self, arrays: dict) -> None:
        if not self.attached:       # an attached session keeps the core's weights, newer than the checkpoint's
            self.set_weights_raw(arrays["weights_raw"][0])

    # --- samples ----------------------------------------------------------------------------------------

    def _upload(self, X_raw, Y_raw) -> None:
        rows = np.concatenate([X_raw, Y_raw], axis=1)
        self.client.write(R.address(R.REGION_SAMPLES, 0), R.to_word(rows.ravel()).tolist())
        self._set_setting(R.REG_N_SAMPLES, len(rows))

    def _read_outputs(self, n: int) -> np.ndarray:
        words = self.client.read(R.address(R.REGION_OUTPUTS, 0), n * self.spec.n_outputs)
        return _values(words).reshape(n, self.spec.n_outputs)

    # --- the protocol's backend -------------------------------------------------------------------------

    def _step(self, X, Y, X_raw, Y_raw) -> np.ndarray:
        """Loss as golden computes it: the fixed-point outputs in float against the float targets."""
        if len(X) > self.max_batch:
            raise DpfmError(f"a batch of {len(X)} exceeds the core's {self.max_batch}-sample buffer",
                            f"use batches of at most {self.max_batch}")
        self._upload(X_raw, Y_raw)
        self._run(R.CTRL_INFER)
        outputs = to_float(self._read_outputs(len(X)), self.fixed.x)
        self._set_setting(R.REG_LR, self._model.lr_raw(self.lr, len(X)))
        self._run(R.CTRL_TRAIN)
        self.dither_state = dither.layer_masks(self.dither_state, self.spec.sizes[1:], len(X))[1]
        return mean_loss(self.spec.loss, outputs[None], Y[None])

    def _forward(self, X, X_raw) -> np.ndarray:
        out = [np.zeros((0, self.spec.n_outputs), dtype=np.int64)]
        for start in range(0, len(X_raw), self.max_batch):
            chunk = X_raw[start:start + self.max_batch]
            self._upload(chunk, np.zeros((len(chunk), self.spec.n_outputs), dtype=np.int64))
            self._run(R.CTRL_INFER)
            out.append(self._read_outputs(len(chunk)))
        return to_float(np.concatenate(out), self.fixed.x)[None]

    @contextlib.contextmanager
    def _training_run(self):
        """After a run, the core's sample count and dither state must match the host's."""
        before = (self._reg(R.REG_SAMPLES_DONE), self._samples_run)
        yield
        self._verify_counters(*before)
        self._current_dither_state()

    def _verify_counters(self, device_before: int, host_before: int) -> None:
        """The core processed exactly the samples of the operations the host started (its own count,
        SAMPLES_DONE, wraps at 32 bits): no operation was lost or, through a retried command, run twice."""
        done = (self._reg(R.REG_SAMPLES_DONE) - device_before) & 0xFFFFFFFF
        sent = self._samples_run - host_before
        if done != sent:
            raise DpfmError(f"the core reports {done} samples processed, the host started {sent}",
                            "the link lost or repeated a command: resume from the last checkpoint")

    # --- resident training --------------------------------------------------------------------------------

    def _check_resident_data(self, n: int) -> None:
        super()._check_resident_data(n)
        if not self.resident_samples:
            raise DpfmError("this core was built without resident training",
                            f"rebuild it with --resident-samples {n} (or more), or train without --resident")
        if n > self.resident_samples:
            raise DpfmError(f"the training set has {n} samples, the core's data set memory holds "
                            f"{self.resident_samples}", f"rebuild the core with --resident-samples {n} (or more), "
                            "train on fewer samples, or train without --resident")

    def _upload_data_set(self, X_raw, Y_raw) -> None:
        """The training set into the data set memory, page by page, unless the core already holds it."""
        rows = np.concatenate([X_raw, Y_raw], axis=1)
        digest = (rows.shape, hash(rows.tobytes()))
        if digest != self._data_set:
            words = R.to_word(rows.ravel()).tolist()
            for start in range(0, len(words), R.DATA_PAGE_WORDS):
                self._set_reg(R.REG_DATA_PAGE, 1 + start // R.DATA_PAGE_WORDS)
                self.client.write(R.address(R.REGION_SAMPLES, 0), words[start:start + R.DATA_PAGE_WORDS])
            self._set_reg(R.REG_DATA_PAGE, 0)
            self._data_set = digest
        self._set_setting(R.REG_N_DATA, len(rows))

    def _start_resident_run(self, X_raw, Y_raw, epochs: int) -> int:
        """Upload the data set unless the core holds it, start a run of `epochs` epochs over it, and step the
        host's dither state past it; returns the shuffle state the core must end the run with."""
        n = len(X_raw)
        self._upload_data_set(X_raw, Y_raw)
        tail = n % self.batch
        self._set_setting(R.REG_N_SAMPLES, self.batch)
        self._set_setting(R.REG_LR, self._model.lr_raw(self.lr, self.batch))
        self._set_setting(R.REG_LR_TAIL, self._model.lr_raw(self.lr, tail) if tail else 0)
        self._set_reg(R.REG_SHUFFLE, self.shuffle_state)
        self._set_setting(R.REG_EPOCHS, epochs)
        self._set_reg(R.REG_CTRL, R.CTRL_RESIDENT)
        self._samples_run += epochs * n
        shuffle = self.shuffle_state
        for _ in range(epochs):
            shuffle = onchip.epoch_order(shuffle, n)[1]
        if self.dither_state != dither.OFF:
            self.dither_state = dither.advance(self.dither_state, epochs * n * sum(self.spec.sizes[1:]))
        return shuffle

    def _resident_run(self, X, Y, X_raw, Y_raw, epochs: int, report) -> list:
        n, x = len(X_raw), self.fixed.x
        shuffle = self._start_resident_run(X_raw, Y_raw, epochs)
        losses, deadline = [], time.monotonic() + self.poll_timeout
        while True:
            status = self._reg(R.REG_STATUS)
            finished = self._reg(R.REG_EPOCHS_DONE)
            while len(losses) < finished:
                low, high = self.client.read(R.address(R.REGION_REGS, R.REG_LOSS + 2 * len(losses)), 2)
                losses.append(np.array([onchip.mean_loss(low | high << 32, n, self.spec.n_outputs, x)]))
                report(self._squeeze(losses[-1]))
                deadline = time.monotonic() + self.poll_timeout
            if status & R.STATUS_DONE and not status & R.STATUS_BUSY:
                break
            if time.monotonic() > deadline:
                raise DpfmError(f"the resident run has finished no epoch for {self.poll_timeout:g} s "
                                f"({len(losses)} of {epochs} done)",
                                "check the bitstream; reset the board and resume from the checkpoint")
            time.sleep(0.002)
        if len(losses) != epochs:
            raise DpfmError(f"the core finished its resident run after {len(losses)} of {epochs} epochs",
                            "the core or link is faulty: resume from the last checkpoint")
        state = self._reg(R.REG_SHUFFLE)
        if state != shuffle:
            raise DpfmError(f"the core's shuffle state is {state:#010x} after the run, the host expects "
                            f"{shuffle:#010x}", "the core or link is faulty: resume from the last checkpoint")
        self.shuffle_state = state
        return losses

    def close(self) -> None:
        self.client.close()
        if self._owned is not None:
            self._owned.close()


def open_device(backend: str, config, port: str | None = None, baud: int = wire.BAUD, **trainer) -> Device:
    """A `Device` on the co-simulation, built, started here and stopped by `close` ("sim": behind the
    gateware link's UART; "sim-bus": its word bus over a socket, the transport of a PCIe BAR), or on a board
    behind the serial port `port` ("board"). `trainer` holds lr, batch, init, seed, dither, train_layers."""
    if backend in ("sim", "sim-bus"):
        from dpfm.sim.cosim import Cosim, build, core_slave
        bus = backend == "sim-bus"
        sim = Cosim(build(core_slave(config), "bus" if bus else "uart"))
        try:
            client = BusClient(sim.address) if bus else LinkClient(SerialPort(sim.url))
            return Device(client, config, owned=sim, **trainer)
        except BaseException:
            sim.close()
            raise
    if backend == "board":
        if port is None:
            raise DpfmError("the board backend needs a serial port", "pass --port /dev/ttyUSB1 (see ls /dev/ttyUSB*)")
        return Device(LinkClient(SerialPort(port, baud)), config, **trainer)
    raise DpfmError(f"unknown backend '{backend}'", "use sim, sim-bus or board")
