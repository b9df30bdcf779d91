"""Vectorized golden trainer: an MLP trained with top-K forward-mode gradients (docs/ARITHMETIC.md §1).

Semantics are exactly those of `golden.dual` (node-level pruning: a neuron's affine map is one node, its
activation one node; the loss is the unpruned sink), computed for a whole mini-batch at once with dense tangents: the
tangent of every value is a row indexed by weight-id, so the forward pass is a handful of batched matrix
products and one vectorized prune per node (layout in `_Plan`). The mini-batch gradient is the mean of the
samples' pruned loss tangents, accumulated without pruning.

The trainer carries a leading *replica* axis: `k` may be a list, and then every K trains side by side from
the same initial weights on the same shuffled batches, in one computation. That is how `dpfm sweep` trains
all K values at the cost of little more than one, and it makes the comparison between K values cleaner.

With `fixed=HwFormats(...)` the arithmetic is delegated to `golden.fixed_mlp.FixedModel` (the fixed-point
contract of §2-6, where the loss is not a pruning point: it follows the hardware's §3.5); data, shuffling,
bookkeeping and checkpoints stay here, and reported losses are computed in float from its dequantized
predictions.
"""

import sys

import numpy as np
from tqdm import tqdm

from dpfm.golden import checkpoint
from dpfm.golden.activations import activate
from dpfm.golden.dual import BCE_EPS
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.fixedpoint import quantize, to_float
from dpfm.golden.contract.net import NetSpec, flatten, init_weights, unflatten
from dpfm.golden.fixed_mlp import FixedModel
from dpfm.golden.contract.organisation import check_tangent_mode
from dpfm.golden.topk import prune_rows
from dpfm.golden import lr_rules, selection as selection_rules


# --------------------------------------------------------------------------------------------------------
# float kernels
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


def forward(spec: NetSpec, flat: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Outputs `(R, B, n_out)` of replicas `flat` `(R, P)` on inputs `X` `(B, n_in)`."""
    a = X[None]
    for l, act in enumerate(spec.activations):
        n_out, n_in = spec.layer_shape(l)
        Wa = flat[:, spec.layer_base(l):spec.layer_base(l + 1)].reshape(len(flat), n_out, n_in + 1)
        a, _ = activate(act, a @ Wa[..., :n_in].transpose(0, 2, 1) + Wa[:, None, :, n_in])
    return a


class _Plan:
    """Per-network constants of the forward-mode pass, and the pass itself.

    Tangent layout. Unit u of layer l has a tangent row over ids `[0, base_{l+1})`: the ids of earlier
    layers, then layer l's own block, in which only u's segment (ids of `W[u, :]`, `b[u]`) can be non-zero
    (d a_u / d W[v, i] = 0 for v != u). So each layer's tangent is kept as two dense arrays, `prev`
    `(R, B, n, base_l)` and `own` `(R, B, n, n_in + 1)` (u's own segment); the row is `[prev | own placed in
    segment u]`. `[prev | own]` has the same entries in the same id order, so prune_K runs on it directly,
    and no block of zeros is ever built or multiplied.
    """

    def __init__(self, spec: NetSpec, ks, selection=None):
        self.spec = spec
        self.selection = selection  # None: the contract's top-K (`prune_rows`); else a `golden.selection` rule
        self.layers = []
        # Bound on the non-zeros of a tangent row, per replica; a node is pruned only for replicas whose K is
        # below it (otherwise prune_K could only drop zeros). Replicas that skip get the row width as "K".
        nnz = np.zeros(len(ks), dtype=np.int64)
        k_arr = np.array([spec.n_params if k is None else k for k in ks], dtype=np.int64)
        for l in range(spec.n_layers):
            n_out, n_in = spec.layer_shape(l)
            base, end = spec.layer_base(l), spec.layer_base(l + 1)
            nnz = np.minimum(base + n_in + 1, n_in * nnz + n_in + 1)
            prune_k = tuple(np.where(k_arr < nnz, k_arr, end).tolist())
            layer_of = np.concatenate([np.repeat(np.arange(l), np.diff([spec.layer_base(j) for j in range(l + 1)])),
                                       np.full(n_in + 1, l)])
            self.layers.append((n_out, n_in, base, end, prune_k, spec.activations[l], layer_of))
            nnz = np.minimum(nnz, k_arr)

    def gradients(self, flat: np.ndarray, X: np.ndarray, Y: np.ndarray, rng=None, dropped=False):
        """Mean top-K gradient `(R, P)` and per-sample losses `(R, B)` of a mini-batch; with `dropped`, also
        the mean of what pruning removed at the output nodes, in gradient units (`(R, P)`, error feedback)."""
        R, B = flat.shape[0], X.shape[0]
        a = np.broadcast_to(X, (R,) + X.shape)
        prev = own = None
        ones = np.ones((R, B, 1))
        for n_out, n_in, base, end, prune_k, act, layer_of in self.layers:
            Wa = flat[:, base:end].reshape(R, n_out, n_in + 1)
            W = Wa[..., :n_in]
            z = a @ W.transpose(0, 2, 1) + Wa[:, None, :, n_in]
            aug = np.concatenate([a, ones], axis=-1)[:, :, None, :]  # direct terms: d z_u/d W[u,i] = x_i, d/db = 1
            if own is None:  # first layer: every unit's row is [x, 1]; prune it once for all units
                row = aug.copy()
            else:  # the dot node: sum_i W[u, i] * x_i' (earlier ids, exact) then the direct terms
                parts = [] if prev is None else [W[:, None] @ prev]
                parts.append((W[:, None, :, :, None] * own[:, :, None, :, :]).reshape(R, B, n_out, -1))
                parts.append(np.broadcast_to(aug, (R, B, n_out, n_in + 1)))
                row = np.concatenate(parts, axis=-1)
            lost = row.copy() if dropped and end == self.spec.n_params else None
            if self.selection is None:
                prune_rows(row, prune_k)
            else:
                self.selection.prune(row, prune_k, layer_of, rng)
            if lost is not None:
                lost -= row
            a, slope = activate(act, z)
            if slope is not None:  # the activation node: f'(z) * z' (prune_K would only drop zeros)
                row = slope[..., None] * row
                if lost is not None:
                    lost = slope[..., None] * lost
            prev, own = (None if base == 0 else row[..., :base]), row[..., base:]
        losses, c = loss_and_slope(self.spec.loss, a, Y[None])
        grad = _sink(c, row, base) / B
        return (grad, losses, _sink(c, lost, base) / B) if dropped else (grad, losses)


def _sink(c: np.ndarray, row: np.ndarray, base: int) -> np.ndarray:
    """The batch sum of the loss tangents `(R, P)` from the output nodes' rows `[earlier ids | own segment]`.

    The loss is the sink and is not pruned (docs/ARITHMETIC.md section 1): sum_o c_o * a_o', assembled
    as [earlier ids | each output's own segment].
    """
    R, B = row.shape[:2]
    parts = [] if base == 0 else [(c[:, :, None, :] @ row[..., :base])[:, :, 0, :]]
    parts.append((c[..., None] * row[..., base:]).reshape(R, B, -1))
    return np.concatenate(parts, axis=-1).sum(axis=1)


# --------------------------------------------------------------------------------------------------------
# the trainer
# --------------------------------------------------------------------------------------------------------
def normalize_ks(k) -> tuple:
    """`k` (int, None = full, or a list of them) -> tuple of K values; anything else is a DpfmError."""
    ks = tuple(k) if isinstance(k, (list, tuple)) else (k,)
    if not ks:
        raise DpfmError("no K values given", "give at least one K, e.g. 8 or full")
    for v in ks:
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
            raise DpfmError(f"K must be a positive integer or full, got {v!r}", "use e.g. --k 8 or --k full")
    return tuple(None if v is None else int(v) for v in ks)


class GoldenTrainer:
    """Mini-batch SGD (optional momentum) with top-K forward-mode gradients, in float or fixed point.

    `k`: K (int >= 1), None for exact forward mode, or a list of those to train side by side as replicas
    (then losses and predictions gain a leading replica axis). Every replica starts from the same weights
    (`init` scheme, `seed`) and sees the same shuffled batches. Losses follow Keras: mean over outputs,
    mean over the batch; an epoch's training loss is the mean over its samples of the loss computed during
    the forward passes (before each update), the validation loss is computed after the epoch.

    Study options (float only): `lr` may be a list with one rate per replica; `selection` names a
    `golden.selection` rule (which entries pruning keeps) and `lr_rule` a `golden.lr_rules` rule (how the
    gradient becomes an update). Their defaults are the contract's top-K and plain SGD, bit for bit; random
    rules draw from their own generator, so every rule sees the same initial weights and batches.
    """

    def __init__(self, spec: NetSpec, k, lr=0.01, batch=10, momentum=0.0, init="glorot", seed=0,
                 fixed: HwFormats | None = None, tangent="exact", selection=selection_rules.DEFAULT,
                 lr_rule=lr_rules.DEFAULT):
        self.spec = spec
        self.ks = normalize_ks(k)
        if isinstance(lr, (list, tuple)):
            if len(lr) != len(self.ks):
                raise DpfmError(f"{len(lr)} learning rates for {len(self.ks)} replicas", "give one per K")
            self.lr = tuple(_positive_float(v, "learning rate", "--lr") for v in lr)
        else:
            self.lr = _positive_float(lr, "learning rate", "--lr")
        self.selection = selection_rules.get_rule(selection)
        self.lr_rule = lr_rules.get_rule(lr_rule)
        self._default_rules = (self.selection.name == selection_rules.DEFAULT and
                               self.lr_rule.name == lr_rules.DEFAULT and not isinstance(self.lr, tuple))
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
        if not self._default_rules and (fixed is not None or momentum):
            raise DpfmError("selection and learning-rate rules and per-replica rates are float-only and replace "
                            "--momentum", "use them without --fixed and --momentum")
        self.tangent = tangent
        self.fixed = fixed
        self.init = init
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        self._plan = _Plan(spec, self.ks, None if self.selection.name == selection_rules.DEFAULT else self.selection)
        self._rule_rng = np.random.default_rng([self.seed, 1])
        self._rule_state = None if self._default_rules else self.lr_rule.init((self.n_replicas, spec.n_params))
        self._flat = np.tile(flatten(spec, init_weights(spec, self._rng, init)), (self.n_replicas, 1))
        self._velocity = np.zeros_like(self._flat)
        self._fixed_models = None
        if fixed is not None:
            self._fixed_models = [FixedModel(spec, k, fixed, tangent=tangent) for k in self.ks]
            self._raw = np.stack([m.quantize_weights(w) for m, w in zip(self._fixed_models, self._flat)])
        self.epoch = 0
        self.history = {"train_loss": [], "val_loss": []}
        self.extra = {}

    # -- shape helpers -------------------------------------------------------------------------------
    @property
    def n_replicas(self) -> int:
        return len(self.ks)

    def _squeeze(self, arr):
        """Per-replica values as plain floats / lists (JSON-ready); no replica axis for one replica."""
        arr = np.asarray(arr)
        return (arr[0] if len(self.ks) == 1 else arr).tolist()

    def _check_data(self, X, Y, what):
        X = np.asarray(X, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        if Y.ndim == 1 and self.spec.n_outputs == 1:
            Y = Y[:, None]
        if X.ndim != 2 or X.shape[1] != self.spec.n_inputs or X.shape[0] == 0:
            raise DpfmError(f"{what} inputs have shape {X.shape}; the network needs (N >= 1, "
                            f"{self.spec.n_inputs})", "match the data to the first layer size")
        if Y.shape != (X.shape[0], self.spec.n_outputs):
            raise DpfmError(f"{what} targets have shape {Y.shape}; the network needs "
                            f"({X.shape[0]}, {self.spec.n_outputs})",
                            "give one target row per input row, one column per output")
        for name, arr in (("inputs", X), ("targets", Y)):
            if not np.all(np.isfinite(arr)):
                raise DpfmError(f"{what} {name} contain NaN or infinity", "clean the data before training")
        if self.spec.loss == "bce" and np.any((Y < 0) | (Y > 1)):
            raise DpfmError(f"{what} targets must be in [0, 1] for binary cross-entropy",
                            "use 0/1 labels or --loss mse")
        return X, Y

    @property
    def fixed_counters(self):
        """Fixed point only: `{"saturations": ..., "evictions": ...}` since construction (lists per replica
        when there are several), as the hardware's counters would report them; None in float."""
        if self._fixed_models is None:
            return None
        return {"saturations": self._squeeze([m.sat.count for m in self._fixed_models]),
                "evictions": self._squeeze([m.evictions for m in self._fixed_models])}

    # -- weights -------------------------------------------------------------------------------------
    def _flat_weights(self) -> np.ndarray:
        if self.fixed is not None:
            return to_float(self._raw, self.fixed.w)
        return self._flat

    def replica_weights(self, r: int) -> list:
        """`[(W, b), ...]` of replica `r` (dequantized in fixed-point mode)."""
        return unflatten(self.spec, self._flat_weights()[r])

    @property
    def weights(self) -> list:
        """`[(W, b), ...]` of a single-K trainer."""
        if self.n_replicas != 1:
            raise ValueError(f"this trainer has {self.n_replicas} replicas; use replica_weights(r)")
        return self.replica_weights(0)

    def set_weights(self, layers) -> None:
        """Set every replica's weights to `layers` (`[(W, b), ...]`) and clear the momentum."""
        flat = flatten(self.spec, layers).astype(np.float64)
        self._flat[:] = flat
        self._velocity[:] = 0.0
        if self.fixed is not None:
            self._raw = np.stack([m.quantize_weights(flat) for m in self._fixed_models])

    # -- training ------------------------------------------------------------------------------------
    def _step(self, X, Y, X_raw=None, Y_raw=None) -> np.ndarray:
        """One SGD step on one mini-batch; returns the per-replica mean loss before the update."""
        if self.fixed is None and not self._default_rules:
            lr = np.array(self.lr if isinstance(self.lr, tuple) else [self.lr] * self.n_replicas)[:, None]
            grad, losses, *dropped = self._plan.gradients(self._flat, X, Y, self._rule_rng,
                                                          dropped=self.lr_rule.needs_dropped)
            update, self._rule_state = self.lr_rule.step(grad, lr, self._rule_state, *dropped)
            self._flat -= update
            return losses.sum(axis=1) / len(X)
        if self.fixed is None:
            grad, losses = self._plan.gradients(self._flat, X, Y)
            if self.momentum:
                self._velocity *= self.momentum
                self._velocity -= self.lr * grad
                self._flat += self._velocity
            else:
                self._flat -= self.lr * grad
            return losses.sum(axis=1) / len(X)
        out = np.empty(self.n_replicas)
        for r, model in enumerate(self._fixed_models):
            out[r] = loss_and_slope(self.spec.loss, to_float(model.predict(self._raw[r], X_raw), self.fixed.x),
                                    Y)[0].mean()
            G = model.batch_gradient(self._raw[r], X_raw, Y_raw)
            self._raw[r] = model.sgd_update(self._raw[r], G, model.lr_raw(self.lr, len(X)))
        return out

    def _quantized(self, X, Y, what):
        if self.fixed is None:
            return None, None
        return (quantize(X, self.fixed.x, what=f"{what} inputs"), quantize(Y, self.fixed.x, what=f"{what} targets"))

    def train_batch(self, X, Y):
        """One SGD step on the mini-batch `(X, Y)`; returns its mean loss before the update."""
        X, Y = self._check_data(X, Y, "batch")
        with np.errstate(over="ignore", invalid="ignore"):
            return self._squeeze(self._step(X, Y, *self._quantized(X, Y, "batch")))

    def train(self, X, Y, epochs, X_val=None, Y_val=None, progress=True, on_epoch=None) -> dict:
        """Train `epochs` more epochs; returns this call's `{"train_loss": [...], "val_loss": [...]}`.

        `self.history` keeps the whole run (also across save/load). A loss that turns NaN/inf is recorded,
        not raised: callers decide whether a diverged replica is an error. `on_epoch(epoch, train, val)`
        is called after every epoch.
        """
        X, Y = self._check_data(X, Y, "training")
        has_val = X_val is not None
        if has_val:
            X_val, Y_val = self._check_data(X_val, Y_val, "validation")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise DpfmError(f"epochs must be a non-negative integer, got {epochs!r}", "use e.g. --epochs 250")
        X_raw, Y_raw = self._quantized(X, Y, "training")
        n = len(X)
        new = {"train_loss": [], "val_loss": []}
        bar = tqdm(range(int(epochs)), disable=not progress, file=sys.stderr, unit="epoch",
                   desc=f"K={self._k_label()}", leave=False, dynamic_ncols=True)
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in bar:
                order = self._rng.permutation(n)
                total = np.zeros(self.n_replicas)
                for start in range(0, n, self.batch):
                    idx = order[start:start + self.batch]
                    if X_raw is None:
                        total += self._step(X[idx], Y[idx]) * len(idx)
                    else:
                        total += self._step(X[idx], Y[idx], X_raw[idx], Y_raw[idx]) * len(idx)
                train_loss = self._squeeze(total / n)
                val_loss = self.evaluate(X_val, Y_val) if has_val else None
                self.epoch += 1
                for h in (new, self.history):
                    h["train_loss"].append(train_loss)
                    h["val_loss"].append(val_loss)
                if progress:
                    bar.set_postfix_str(self._postfix(train_loss, val_loss))
                if on_epoch is not None:
                    on_epoch(self.epoch, train_loss, val_loss)
        bar.close()
        return new

    def _k_label(self) -> str:
        return ",".join("full" if k is None else str(k) for k in self.ks)

    @staticmethod
    def _postfix(train_loss, val_loss) -> str:
        def fmt(v):
            return " ".join(f"{x:.4g}" for x in np.atleast_1d(v))
        return f"loss {fmt(train_loss)}" + ("" if val_loss is None else f" val {fmt(val_loss)}")

    # -- inference -----------------------------------------------------------------------------------
    def predict(self, X) -> np.ndarray:
        """Outputs `(B, n_out)` (or `(R, B, n_out)` for several replicas), in float."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.spec.n_inputs:
            raise DpfmError(f"inputs have shape {X.shape}; the network needs (N, {self.spec.n_inputs})",
                            "match the data to the first layer size")
        if self.fixed is None:
            out = forward(self.spec, self._flat, X)
        else:
            X_raw = quantize(X, self.fixed.x, what="inputs")
            out = np.stack([to_float(m.predict(w, X_raw), self.fixed.x)
                            for m, w in zip(self._fixed_models, self._raw)])
        return out[0] if self.n_replicas == 1 else out

    def evaluate(self, X, Y):
        """Mean loss over the samples of `(X, Y)`, per replica (a float for one replica)."""
        X, Y = self._check_data(X, Y, "evaluation")
        out = self.predict(X)
        if self.n_replicas == 1:
            out = out[None]
        with np.errstate(over="ignore", invalid="ignore"):
            return self._squeeze(loss_and_slope(self.spec.loss, out, Y[None])[0].mean(axis=-1))

    # -- checkpoints ---------------------------------------------------------------------------------
    def save(self, path, extra: dict | None = None) -> None:
        """Write weights, spec, hyper-parameters, epoch, optimizer and shuffle state atomically to `path`
        (.npz) so that `load` + `train` continues exactly as if training had never stopped. `extra` is
        stored alongside (e.g. the task name)."""
        meta = {
            "spec": {"sizes": list(self.spec.sizes), "activations": list(self.spec.activations),
                     "loss": self.spec.loss},
            "ks": list(self.ks), "lr": self.lr, "batch": self.batch, "momentum": self.momentum,
            "init": self.init, "seed": self.seed, "tangent": self.tangent,
            "fixed": None if self.fixed is None else str(self.fixed),
            "epoch": self.epoch, "rng": self._rng.bit_generator.state, "history": self.history,
            "extra": extra or {},
        }
        arrays = {"weights": self._flat_weights(), "velocity": self._velocity}
        if self.fixed is not None:
            arrays["weights_raw"] = self._raw
        if not self._default_rules:
            raise DpfmError("checkpoints of study runs (selection or learning-rate rules) are not supported",
                            "train with the default rules to save a checkpoint")
        checkpoint.write_checkpoint(path, meta, arrays)

    @classmethod
    def load(cls, path) -> "GoldenTrainer":
        """A trainer restored from `save`; `trainer.extra` holds the stored `extra` dict."""
        meta, arrays = checkpoint.read_checkpoint(path)
        try:
            spec = NetSpec(tuple(meta["spec"]["sizes"]), tuple(meta["spec"]["activations"]), meta["spec"]["loss"])
            fixed = None if meta["fixed"] is None else HwFormats.parse(meta["fixed"])
            trainer = cls(spec, list(meta["ks"]), lr=meta["lr"], batch=meta["batch"], momentum=meta["momentum"],
                          init=meta["init"], seed=meta["seed"], fixed=fixed, tangent=meta["tangent"])
            shape = trainer._flat.shape
            for name in ("weights", "velocity") + (("weights_raw",) if fixed is not None else ()):
                if arrays[name].shape != shape:
                    raise DpfmError(f"checkpoint {path}: '{name}' has shape {arrays[name].shape}, expected {shape}",
                                    "the file is damaged; save it again")
            trainer._flat = np.array(arrays["weights"], dtype=np.float64)
            trainer._velocity = np.array(arrays["velocity"], dtype=np.float64)
            if fixed is not None:
                trainer._raw = np.array(arrays["weights_raw"], dtype=np.int64)
            trainer._rng.bit_generator.state = meta["rng"]
            trainer.epoch = int(meta["epoch"])
            trainer.history = {"train_loss": list(meta["history"]["train_loss"]),
                               "val_loss": list(meta["history"]["val_loss"])}
            trainer.extra = dict(meta.get("extra", {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise DpfmError(f"checkpoint {path} is incomplete or damaged ({exc!r})",
                            "resume from a file written by 'dpfm train --save'") from None
        return trainer


def _positive_float(value, what, flag) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not (np.isfinite(v) and v > 0):
        raise DpfmError(f"{what} must be a positive number, got {value!r}", f"use e.g. {flag} 0.01")
    return v
