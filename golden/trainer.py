"""`Trainer`: the training protocol every backend serves (the golden model, a device), and its one epoch driver.

A backend says how to take one SGD step on a mini-batch (`_step`), how to compute outputs (`_forward`), and
how to read and write its weights (`weights`, `set_weights`, `_checkpoint_arrays`, `_restore_arrays`);
optionally what to check around a training run (`_training_run`) and what to release (`close`). Everything
else is written once here: the data checks, the shuffle (the trainer's own generator, one permutation per
epoch), the epoch loop and its bookkeeping, the loss, progress, and the checkpoint (`golden.checkpoint`).
So two backends with the same seed and arithmetic see the same batches in the same order, report losses
computed by the same function, and can continue each other's checkpoints.

Losses follow Keras: mean over outputs, mean over the batch; an epoch's training loss is the mean over its
samples of the loss computed during the forward passes (before each update), the validation loss is
computed after the epoch. With several K replicas, losses and predictions gain a leading replica axis.
"""

import abc
import contextlib
import sys

import numpy as np
from tqdm import tqdm

from dpfm.golden import dither as dither_bits
from dpfm.golden import resident as onchip
from dpfm.golden.checkpoint import Checkpoint
from dpfm.golden.contract import regmap
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.contract.net import NetSpec, check_train_layers
from dpfm.golden.contract.organisation import check_tangent_mode
from dpfm.golden.dual import BCE_EPS
from dpfm.golden.fixedpoint import SatCounter, quantize


# --------------------------------------------------------------------------------------------------------
# the loss and the data checks every trainer uses
# --------------------------------------------------------------------------------------------------------
def loss_and_slope(loss: str, a: np.ndarray, y: np.ndarray):
    """Per-sample loss (mean over outputs) and dLoss/da, as in `golden.dual.mse` / `golden.dual.bce`."""
    n = a.shape[-1]
    if loss == "mse":
        e = a - y
        return np.mean(e * e, axis=-1), 2.0 * e / n
    p = np.clip(a, BCE_EPS, 1.0 - BCE_EPS)
    per = -(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))
    return np.mean(per, axis=-1), (p - y) / (p * (1.0 - p)) / n


def mean_loss(loss: str, a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean loss over the samples (axis -2) of outputs `a` against targets `y`."""
    return loss_and_slope(loss, a, y)[0].mean(axis=-1)


def check_data(spec: NetSpec, X, Y, what: str) -> tuple[np.ndarray, np.ndarray]:
    """`(X, Y)` as float arrays `(N >= 1, n_in)`, `(N, n_out)` (a 1-D `Y` is one output column), or a
    DpfmError naming `what` (training, validation, ...) data and what is wrong with it."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1 and spec.n_outputs == 1:
        Y = Y[:, None]
    if X.ndim != 2 or X.shape[1] != spec.n_inputs or X.shape[0] == 0:
        raise DpfmError(f"{what} inputs have shape {X.shape}, which does not fit network {list(spec.sizes)}: it "
                        f"needs (N >= 1, {spec.n_inputs})", "match the data to the first layer size")
    if Y.shape != (X.shape[0], spec.n_outputs):
        raise DpfmError(f"{what} targets have shape {Y.shape}, which does not fit network {list(spec.sizes)} "
                        f"with {X.shape[0]} input rows: it needs ({X.shape[0]}, {spec.n_outputs})",
                        "give one target row per input row, one column per output")
    for name, arr in (("inputs", X), ("targets", Y)):
        if not np.all(np.isfinite(arr)):
            raise DpfmError(f"{what} {name} contain NaN or infinity", "clean the data before training")
    if spec.loss == "bce" and np.any((Y < 0) | (Y > 1)):
        raise DpfmError(f"{what} targets must be in [0, 1] for binary cross-entropy", "use 0/1 labels or --loss mse")
    return X, Y


def check_inputs(spec: NetSpec, X) -> np.ndarray:
    """Inputs to predict from: a float array `(N, n_in)`, else a DpfmError."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != spec.n_inputs:
        raise DpfmError(f"inputs have shape {X.shape}; the network needs (N, {spec.n_inputs})",
                        "match the data to the first layer size")
    return X


#: The largest K a trainer takes: more than any network's parameter count, and K indexes int64 arrays.
MAX_K = (1 << 31) - 1


def normalize_ks(k) -> tuple:
    """`k` (int, None = full, or a list of them) -> tuple of K values; anything else is a DpfmError."""
    ks = tuple(k) if isinstance(k, (list, tuple)) else (k,)
    if not ks:
        raise DpfmError("no K values given", "give at least one K, e.g. 8 or full")
    for v in ks:
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
            raise DpfmError(f"K must be a positive integer or full, got {v!r}", "use e.g. --k 8 or --k full")
        if v is not None and v > MAX_K:
            raise DpfmError(f"K={v} is more tangent slots than any network has weights",
                            "use --k full for the exact gradient (K >= the parameter count equals it)")
    return tuple(None if v is None else int(v) for v in ks)


def k_label(k) -> str:
    """A K value as the CLI spells it: `8`, or `full` for None."""
    return "full" if k is None else str(k)


def _arithmetic(spec: NetSpec, ks, fixed, tangent, dither, exact_last) -> str:
    """What a checkpoint and a trainer must agree on, in words."""
    net = f"network {list(spec.sizes)} {','.join(spec.activations)} {spec.loss}, K={','.join(map(k_label, ks))}"
    net += f", dither {'on' if dither else 'off'}, exact last layer {'on' if exact_last else 'off'}"
    return f"{net}, in float" if fixed is None else f"{net}, fixed {fixed}, tangent {tangent}"


# --------------------------------------------------------------------------------------------------------
# the protocol
# --------------------------------------------------------------------------------------------------------
class Trainer(abc.ABC):
    """Mini-batch SGD with top-K forward-mode gradients on some backend, in float or fixed point.

    `k`: K (int >= 1), None for exact forward mode, or a list of those that the backend trains side by side
    as replicas. `fixed` (HwFormats) selects fixed point and `tangent` its tangent model; momentum is float
    only. The generator seeded with `seed` draws the initial weights (`init` scheme) and then every
    epoch's shuffle; a checkpoint stores its state, so save + resume continues exactly. `dither` turns on
    the toper's random demotion (docs/ARITHMETIC.md 3d), its generator starting from
    `golden.dither.seed_state(seed)`; `dither_state` is where it stands (0 when off). `train_layers` (0-based
    layer indices, None for all) freezes the other layers (docs/ARITHMETIC.md 3e): a hyper-parameter like lr,
    stored in a checkpoint but free to change when one is resumed (fine-tuning). `exact_last` makes the
    output layer's gradient exact (docs/ARITHMETIC.md 3f): its neurons form no direct candidates, so the K
    slots carry only the layers below, and its gradient `delta_o * f'(z_o) * [x, 1]` is added in full.
    """

    #: What this backend is, in errors ("not a device checkpoint of this network ...").
    kind = "trainer"
    #: Fixed point: clamp data the x format cannot hold instead of refusing it (`--saturate`).
    saturate = False

    def __init__(self, spec: NetSpec, k, lr=0.01, batch=10, momentum=0.0, init="glorot", seed=0,
                 fixed: HwFormats | None = None, tangent="exact", dither=False, train_layers=None,
                 exact_last=False):
        self.spec = spec
        self.ks = normalize_ks(k)
        self.lr = positive_float(lr, "learning rate", "--lr")
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise DpfmError(f"batch size must be a positive integer, got {batch!r}", "use e.g. --batch 10")
        self.batch = int(batch)
        momentum = float(momentum)
        if not 0.0 <= momentum < 1.0:
            raise DpfmError(f"momentum must be in [0, 1), got {momentum}", "use e.g. --momentum 0.5")
        self.momentum = momentum
        check_tangent_mode(tangent)
        if tangent != "exact" and fixed is None:
            raise DpfmError(f"the {tangent} tangent mode is a fixed-point hardware model",
                            "add --fixed default (or formats) or use --tangent exact")
        if fixed is not None and momentum:
            raise DpfmError("momentum is not part of the fixed-point contract", "use --momentum 0 with --fixed")
        self.tangent = tangent
        self.fixed = fixed
        self.init = init
        self.seed = int(seed)
        self.dither = bool(dither)
        self.train_layers = check_train_layers(spec, train_layers)
        self.exact_last = bool(exact_last)
        self.dither_state = dither_bits.seed_state(self.seed) if self.dither else dither_bits.OFF
        self.shuffle_state = onchip.seed_state(self.seed)
        self._rng = np.random.default_rng(self.seed)
        self.epoch = 0
        self.history = {"train_loss": [], "val_loss": []}
        self.extra = {}

    # -- what a backend implements ----------------------------------------------------------------------
    @abc.abstractmethod
    def _step(self, X, Y, X_raw, Y_raw) -> np.ndarray:
        """One SGD step on one checked mini-batch (`X_raw`, `Y_raw`: its quantized copy in fixed point, else
        None); returns the per-replica mean loss before the update, `(R,)`."""

    @abc.abstractmethod
    def _forward(self, X, X_raw) -> np.ndarray:
        """Float outputs `(R, B, n_out)` on checked inputs (`X_raw`: quantized in fixed point, else None)."""

    @property
    @abc.abstractmethod
    def weights(self) -> list:
        """`[(W, b), ...]` (dequantized in fixed point)."""

    @abc.abstractmethod
    def set_weights(self, layers) -> None:
        """Set the weights to `[(W, b), ...]` (quantized in fixed point)."""

    @abc.abstractmethod
    def _checkpoint_arrays(self) -> dict:
        """The weight arrays a checkpoint stores (`golden.checkpoint`: weights, weights_raw, velocity)."""

    @abc.abstractmethod
    def _restore_arrays(self, arrays: dict) -> None:
        """The inverse of `_checkpoint_arrays`, from the arrays of a checkpoint that matches this trainer."""

    def _current_dither_state(self) -> int:
        """The dither generator's state now (a device reads it back from the core)."""
        return self.dither_state

    def _restore_dither_state(self, state: int) -> None:
        """Continue the dither generator from `state` (a device writes it to the core)."""
        self.dither_state = state

    def _restore_shuffle_state(self, state: int) -> None:
        """Continue the resident shuffle generator (docs/ARITHMETIC.md 7) from `state`."""
        self.shuffle_state = state

    def _training_run(self):
        """A context around one call of `train`, for checks a backend makes once per run."""
        return contextlib.nullcontext()

    @property
    def fixed_counters(self):
        """Saturations and evictions of the fixed-point model, where the backend counts them; else None."""
        return None

    def close(self) -> None:
        """Release what the backend holds (a link, a co-simulation); nothing by default."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- helpers -------------------------------------------------------------------------------------------
    @property
    def n_replicas(self) -> int:
        return len(self.ks)

    def _squeeze(self, arr):
        """Per-replica values as plain floats / lists (JSON-ready); no replica axis for one replica."""
        arr = np.asarray(arr)
        return (arr[0] if self.n_replicas == 1 else arr).tolist()

    def _quantize(self, arr, what):
        """`arr` in the x format in fixed point, None in float. A value the format cannot hold is refused
        with the largest one and the range, unless `saturate` is set: then it is clamped, as before."""
        if self.fixed is None:
            return None
        clamped = SatCounter()
        raw = quantize(arr, self.fixed.x, clamped, what=what)
        if clamped.count and not self.saturate:
            fmt = self.fixed.x
            largest = float(np.max(np.abs(np.asarray(arr, dtype=np.float64))))
            raise DpfmError(f"{clamped.count} values of the {what} lie outside the x format {fmt} "
                            f"([{fmt.min_value:g}, {fmt.max_value:g}]; the largest magnitude is {largest:g})",
                            "scale the data into that range, give an x format with more integer bits, or pass "
                            "--saturate to clamp it")
        return raw

    # -- training ------------------------------------------------------------------------------------------
    def check_training_data(self, X, Y, X_val=None, Y_val=None):
        """What `train` checks before its first step, for callers that must refuse bad data before other
        work: `(X, Y, X_val, Y_val, X_raw, Y_raw)` as float arrays and their quantized copies (None in float),
        or a DpfmError (shapes, NaN, values outside the x format)."""
        X, Y = check_data(self.spec, X, Y, "training")
        if X_val is not None:
            X_val, Y_val = check_data(self.spec, X_val, Y_val, "validation")
        X_raw, Y_raw = self._quantize(X, "training inputs"), self._quantize(Y, "training targets")
        if X_val is not None:   # refused now rather than after the first epoch
            self._quantize(X_val, "validation inputs")
        return X, Y, X_val, Y_val, X_raw, Y_raw

    def train_batch(self, X, Y):
        """One SGD step on the mini-batch `(X, Y)`; returns its mean loss before the update."""
        X, Y = check_data(self.spec, X, Y, "batch")
        X_raw, Y_raw = self._quantize(X, "batch inputs"), self._quantize(Y, "batch targets")
        with np.errstate(over="ignore", invalid="ignore"):
            return self._squeeze(self._step(X, Y, X_raw, Y_raw))

    def train(self, X, Y, epochs, X_val=None, Y_val=None, progress=True, on_epoch=None, checkpoint=None,
              resident: int = 0) -> dict:
        """Train `epochs` more epochs; returns this call's `{"train_loss": [...], "val_loss": [...]}`.

        `self.history` keeps the whole run (also across save/resume). A loss that turns NaN/inf is recorded,
        not raised: callers decide whether a diverged replica is an error. After every epoch,
        `on_epoch(epoch, train, val)` is called (it may raise to stop training), then, if `checkpoint` is a
        path, the trainer is saved there, so an interrupted run loses at most the epoch under way.

        `resident` > 0 trains as a resident core does (docs/ARITHMETIC.md 7, fixed point and MSE only): the
        order from `shuffle_state`'s generator, the core's loss (`golden.resident.mean_loss`), and runs of
        `resident` epochs (at most regmap.LOSS_HISTORY) that the host does not interrupt, so validation,
        `on_epoch` and the checkpoint come after each run (the epochs inside it have no validation loss).
        """
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise DpfmError(f"epochs must be a non-negative integer, got {epochs!r}", "use e.g. --epochs 250")
        self._check_resident(resident)
        X, Y, X_val, Y_val, X_raw, Y_raw = self.check_training_data(X, Y, X_val, Y_val)
        if resident:
            self._check_resident_data(len(X))
        new = {"train_loss": [], "val_loss": []}
        bar = tqdm(total=int(epochs), disable=not progress, file=sys.stderr, unit="epoch",
                   desc=f"K={','.join(map(k_label, self.ks))}", leave=False, dynamic_ncols=True)

        def finish(losses, val_loss):
            for n_epoch, train_loss in enumerate(losses, 1):
                val = val_loss if n_epoch == len(losses) else None
                self.epoch += 1
                for h in (new, self.history):
                    h["train_loss"].append(train_loss)
                    h["val_loss"].append(val)
                if on_epoch is not None:
                    on_epoch(self.epoch, train_loss, val)
            if checkpoint is not None:
                self.save(checkpoint)

        def report(train_loss):
            bar.update()
            if progress:
                bar.set_postfix_str(_postfix(train_loss, None))

        with bar, self._training_run(), np.errstate(over="ignore", invalid="ignore"):
            done = 0
            while done < epochs:
                run = min(resident, regmap.LOSS_HISTORY, epochs - done) if resident else 1
                if resident:
                    losses = [self._squeeze(loss) for loss in self._resident_run(X, Y, X_raw, Y_raw, run, report)]
                else:
                    losses = [self._squeeze(self._streamed_epoch(X, Y, X_raw, Y_raw))]
                    report(losses[0])
                val_loss = self.evaluate(X_val, Y_val) if X_val is not None else None
                if progress and val_loss is not None:
                    bar.set_postfix_str(_postfix(losses[-1], val_loss))
                finish(losses, val_loss)
                done += run
        return new

    def _streamed_epoch(self, X, Y, X_raw, Y_raw) -> np.ndarray:
        """One epoch in the host's order (the trainer's generator): per-replica mean loss `(R,)`."""
        n = len(X)
        order = self._rng.permutation(n)
        total = np.zeros(self.n_replicas)
        for start in range(0, n, self.batch):
            idx = order[start:start + self.batch]
            raw = (None, None) if X_raw is None else (X_raw[idx], Y_raw[idx])
            total += self._step(X[idx], Y[idx], *raw) * len(idx)
        return total / n

    # -- resident training (docs/ARITHMETIC.md 7) ------------------------------------------------------------
    def _check_resident(self, resident) -> None:
        if isinstance(resident, bool) or not isinstance(resident, (int, np.integer)) or resident < 0:
            raise DpfmError(f"resident must be a number of epochs per run (0: streamed), got {resident!r}",
                            f"use --resident 1 .. {regmap.LOSS_HISTORY}")
        if resident and (self.fixed is None or self.spec.loss != "mse"):
            raise DpfmError("resident training is the core's: fixed point and the MSE loss only",
                            "add --fixed default (and --loss mse), or train without --resident")

    def _check_resident_data(self, n: int) -> None:
        """Refuse a data set the resident run cannot take (a backend with a memory adds its capacity)."""
        if n > 1 << onchip.INDEX_BITS:
            raise DpfmError(f"a resident data set of {n} samples is more than {1 << onchip.INDEX_BITS}",
                            "train on fewer samples, or without --resident")

    def _resident_run(self, X, Y, X_raw, Y_raw, epochs: int, report) -> list:
        """`epochs` epochs as a resident core runs them; `report(loss)` after each; returns the per-replica
        mean losses `(R,)` per epoch. Each batch's loss is the core's (its outputs before the batch's update)."""
        n, x = len(X_raw), self.fixed.x
        losses = []
        for _ in range(epochs):
            order, self.shuffle_state = onchip.epoch_order(self.shuffle_state, n)
            total = np.zeros(self.n_replicas, dtype=object)
            for start in range(0, n, self.batch):
                idx = order[start:start + self.batch]
                a_raw = np.rint(self._forward(X[idx], X_raw[idx]) * (1 << x.frac)).astype(np.int64)
                total += [onchip.loss_sum(a, Y_raw[idx], x) for a in a_raw]
                self._step(X[idx], Y[idx], X_raw[idx], Y_raw[idx])
            losses.append(np.array([onchip.mean_loss(t, n, self.spec.n_outputs, x) for t in total]))
            report(self._squeeze(losses[-1]))
        return losses

    # -- inference -----------------------------------------------------------------------------------------
    def predict(self, X) -> np.ndarray:
        """Outputs `(B, n_out)` (or `(R, B, n_out)` for several replicas), in float."""
        X = check_inputs(self.spec, X)
        out = self._forward(X, self._quantize(X, "inputs"))
        return out[0] if self.n_replicas == 1 else out

    def evaluate(self, X, Y):
        """Mean loss over the samples of `(X, Y)`, per replica (a float for one replica)."""
        X, Y = check_data(self.spec, X, Y, "evaluation")
        with np.errstate(over="ignore", invalid="ignore"):
            return self._squeeze(mean_loss(self.spec.loss, self._forward(X, self._quantize(X, "inputs")), Y[None]))

    # -- checkpoints ---------------------------------------------------------------------------------------
    def save(self, path, extra: dict | None = None) -> None:
        """Write settings, weights, epoch, shuffle state and history atomically to `path` (.npz), so that
        `resume` + `train` continues exactly as if training had never stopped. `extra` (default
        `self.extra`: e.g. the task name) is stored alongside."""
        Checkpoint(spec=self.spec, ks=self.ks, lr=self.lr, batch=self.batch, momentum=self.momentum,
                   init=self.init, seed=self.seed, fixed=self.fixed, tangent=self.tangent, dither=self.dither,
                   train_layers=self.train_layers, dither_state=self._current_dither_state(),
                   exact_last=self.exact_last, shuffle_state=self.shuffle_state, epoch=self.epoch,
                   rng=self._rng.bit_generator.state, history=self.history,
                   extra=self.extra if extra is None else extra, arrays=self._checkpoint_arrays()).write(path)

    def resume(self, path) -> None:
        """Continue from a checkpoint of this network, K and arithmetic (whichever backend wrote it): its
        weights, epoch, shuffle state, history and `extra`; this trainer's lr, batch and layers to train stay."""
        checkpoint = Checkpoint.read(path)
        stored = (checkpoint.spec, checkpoint.ks, checkpoint.fixed, checkpoint.tangent, checkpoint.dither,
                  checkpoint.exact_last)
        mine = (self.spec, self.ks, self.fixed, self.tangent, self.dither, self.exact_last)
        if stored != mine:
            raise DpfmError(f"checkpoint {path} is not a {self.kind} checkpoint of this network, K and arithmetic "
                            f"(it holds {_arithmetic(*stored)}; this {self.kind} trains {_arithmetic(*mine)})",
                            "resume with the task, --k, --fixed, --tangent, --dither and --exact-last the "
                            "checkpoint was written with")
        self._restore(path, checkpoint)

    def _restore(self, path, checkpoint: Checkpoint) -> None:
        try:
            self._rng.bit_generator.state = checkpoint.rng
        except (KeyError, TypeError, ValueError) as exc:
            raise DpfmError(f"checkpoint {path} is incomplete or damaged ({exc!r})",
                            "resume from a file written by 'dpfm train --save'") from None
        self._restore_arrays(checkpoint.arrays)
        self._restore_dither_state(checkpoint.dither_state)
        self._restore_shuffle_state(checkpoint.shuffle_state)
        self.epoch = checkpoint.epoch
        self.history = {name: list(values) for name, values in checkpoint.history.items()}
        self.extra = dict(checkpoint.extra)


def _postfix(train_loss, val_loss) -> str:
    def fmt(v):
        return " ".join(f"{x:.4g}" for x in np.atleast_1d(v))
    return f"loss {fmt(train_loss)}" + ("" if val_loss is None else f" val {fmt(val_loss)}")


def positive_float(value, what, flag) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not (np.isfinite(v) and v > 0):
        raise DpfmError(f"{what} must be a positive number, got {value!r}", f"use e.g. {flag} 0.01")
    return v
