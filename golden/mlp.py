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
contract of §2-6, where the loss is not a pruning point: it follows the hardware's §3.5), and reported
losses are computed in float from its dequantized predictions. Data checks, shuffling, the epoch loop and
checkpoints are the `golden.trainer.Trainer` protocol's, shared with the device backend.
"""

import functools

import numpy as np

from dpfm.golden.activation_functions import activate
from dpfm.golden.checkpoint import Checkpoint
from dpfm.golden.contract.net import NetSpec, flatten, init_weights, unflatten
from dpfm.golden.fixed_mlp import FixedModel
from dpfm.golden.fixedpoint import to_float
from dpfm.golden.trainer import Trainer, loss_and_slope, mean_loss

_TINY = np.nextafter(0.0, 1.0)  # smallest positive float: "|v| >= _TINY" means "v != 0"


# --------------------------------------------------------------------------------------------------------
# prune_K over dense rows
# --------------------------------------------------------------------------------------------------------
def prune_rows(T: np.ndarray, ks) -> None:
    """prune_K on every row of `T` (last axis = weight-id), in place; `ks[r]` is the K of replica `T[r]`.

    Same rule as `golden.dual.prune`: zeros dropped, then the K highest by (|v| desc, id asc). The K-th
    largest |v| decides almost every entry; only rows where a tie straddles that threshold need the id
    rule, resolved by counting the tied entries in id order. Replicas with K >= row width are skipped.
    """
    plan = _prune_plan(ks if isinstance(ks, tuple) else tuple(int(k) for k in ks), T.shape[-1])
    if plan is None:
        return
    where, ks_active, uniform = plan
    if isinstance(where, slice):
        _prune_block(T[where], ks_active, uniform)
    else:
        sub = T[where]
        _prune_block(sub, ks_active, uniform)
        T[where] = sub


@functools.lru_cache(maxsize=1024)
def _prune_plan(ks: tuple, width: int):
    """Which replicas need pruning at this row width (a slice when they are contiguous), their K values,
    and the common K if they share one; None if none does. Cached: a training run asks the same few."""
    active = [r for r, k in enumerate(ks) if k < width]
    if not active:
        return None
    ks_active = np.array([ks[r] for r in active], dtype=np.int64)
    contiguous = active[-1] - active[0] + 1 == len(active)
    where = slice(active[0], active[-1] + 1) if contiguous else np.array(active)
    return where, ks_active, (int(ks_active[0]) if np.all(ks_active == ks_active[0]) else None)


@functools.lru_cache(maxsize=256)
def _kth_positions(shape: tuple, ks: tuple) -> np.ndarray:
    """Flat positions of each row's K-th largest entry in a row-sorted array of `shape` (K per replica)."""
    width = shape[-1]
    rows = np.arange(int(np.prod(shape[:-1]))).reshape(shape[:-1] + (1,))
    cols = (width - np.array(ks)).reshape((len(ks),) + (1,) * (len(shape) - 1))
    return rows * width + cols


def _prune_block(T: np.ndarray, ks: np.ndarray, uniform: int | None) -> None:
    A = np.abs(T)
    width = T.shape[-1]
    shape_r = (len(ks),) + (1,) * (T.ndim - 1)
    if uniform is not None:
        kth = np.partition(A, width - uniform, axis=-1)[..., width - uniform:width - uniform + 1]
    else:
        kth = np.sort(A, axis=-1).reshape(-1)[_kth_positions(T.shape, tuple(ks.tolist()))]
    thr = np.maximum(kth, _TINY)
    keep = A >= thr
    k_b = ks.reshape(shape_r)
    over = keep.sum(axis=-1, keepdims=True) > k_b
    if over.any():
        above = A > thr
        tied = A == thr
        room = k_b - above.sum(axis=-1, keepdims=True)
        keep = np.where(over, above | (tied & (np.cumsum(tied, axis=-1) <= room)), keep)
    T *= keep


# --------------------------------------------------------------------------------------------------------
# float kernels
# --------------------------------------------------------------------------------------------------------
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

    def __init__(self, spec: NetSpec, ks):
        self.spec = spec
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
            self.layers.append((n_out, n_in, base, end, prune_k, spec.activations[l]))
            nnz = np.minimum(nnz, k_arr)

    def gradients(self, flat: np.ndarray, X: np.ndarray, Y: np.ndarray):
        """Mean top-K gradient `(R, P)` and per-sample losses `(R, B)` of a mini-batch."""
        R, B = flat.shape[0], X.shape[0]
        a = np.broadcast_to(X, (R,) + X.shape)
        prev = own = None
        ones = np.ones((R, B, 1))
        for n_out, n_in, base, end, prune_k, act in self.layers:
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
            prune_rows(row, prune_k)
            a, slope = activate(act, z)
            if slope is not None:  # the activation node: f'(z) * z' (prune_K would only drop zeros)
                row = slope[..., None] * row
            prev, own = (None if base == 0 else row[..., :base]), row[..., base:]
        losses, c = loss_and_slope(self.spec.loss, a, Y[None])
        # The loss is the sink and is not pruned (docs/ARITHMETIC.md section 1): sum_o c_o * a_o', assembled
        # as [earlier ids | each output's own segment].
        parts = [] if prev is None else [(c[:, :, None, :] @ prev)[:, :, 0, :]]
        parts.append((c[..., None] * own).reshape(R, B, -1))
        dL = np.concatenate(parts, axis=-1)
        return dL.sum(axis=1) / B, losses


# --------------------------------------------------------------------------------------------------------
# the trainer
# --------------------------------------------------------------------------------------------------------
class GoldenTrainer(Trainer):
    """The golden backend of `golden.trainer.Trainer`: top-K forward-mode gradients computed here, in float
    (`_Plan`, with optional momentum) or in fixed point (one `golden.fixed_mlp.FixedModel` per K).

    `k` may be a list: every K then trains as a replica from the same initial weights on the same shuffled
    batches, and losses and predictions gain a leading replica axis.
    """

    kind = "golden"

    def __init__(self, spec: NetSpec, k, **settings):
        """`settings`: lr, batch, momentum, init, seed, fixed, tangent, as for `Trainer`."""
        super().__init__(spec, k, **settings)
        self._plan = _Plan(spec, self.ks)
        self._fixed_models = None
        if self.fixed is not None:
            self._fixed_models = [FixedModel(spec, k, self.fixed, tangent=self.tangent) for k in self.ks]
        self.set_weights(init_weights(spec, self._rng, self.init))

    @classmethod
    def load(cls, path) -> "GoldenTrainer":
        """A trainer built and restored from a checkpoint (of any backend); `trainer.extra` holds its `extra`."""
        checkpoint = Checkpoint.read(path)
        trainer = cls(**checkpoint.settings())
        trainer._restore(path, checkpoint)
        return trainer

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
        self._flat = np.tile(flat, (self.n_replicas, 1))
        self._velocity = np.zeros_like(self._flat)
        if self.fixed is not None:
            self._raw = np.stack([m.quantize_weights(flat) for m in self._fixed_models])

    def _checkpoint_arrays(self) -> dict:
        arrays = {"weights": self._flat_weights()}
        if self.fixed is not None:
            arrays["weights_raw"] = self._raw
        if self.momentum:
            arrays["velocity"] = self._velocity
        return arrays

    def _restore_arrays(self, arrays: dict) -> None:
        self._flat = np.array(arrays["weights"], dtype=np.float64)
        # a checkpoint written without momentum has no velocity: it is zero
        self._velocity = np.array(arrays["velocity"], dtype=np.float64) if "velocity" in arrays \
            else np.zeros_like(self._flat)
        if self.fixed is not None:
            self._raw = np.array(arrays["weights_raw"], dtype=np.int64)

    # -- the backend's arithmetic ----------------------------------------------------------------------
    def _step(self, X, Y, X_raw, Y_raw) -> np.ndarray:
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
            out[r] = mean_loss(self.spec.loss, to_float(model.predict(self._raw[r], X_raw), self.fixed.x), Y)
            G = model.batch_gradient(self._raw[r], X_raw, Y_raw)
            self._raw[r] = model.sgd_update(self._raw[r], G, model.lr_raw(self.lr, len(X)))
        return out

    def _forward(self, X, X_raw) -> np.ndarray:
        if self.fixed is None:
            return forward(self.spec, self._flat, X)
        return np.stack([to_float(m.predict(w, X_raw), self.fixed.x) for m, w in zip(self._fixed_models, self._raw)])
