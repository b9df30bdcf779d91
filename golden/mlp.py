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

import numpy as np

from dpfm.golden import dither
from dpfm.golden import lr_rules
from dpfm.golden import selection as selection_rules
from dpfm.golden.activation_functions import activate
from dpfm.golden.checkpoint import Checkpoint
from dpfm.golden.contract.net import NetSpec, flatten, init_weights, learning_layers, unflatten
from dpfm.golden.fixed_mlp import FixedModel
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.fixedpoint import to_float
from dpfm.golden.quant import WeightQuant
from dpfm.golden.slots import SlotPlan
from dpfm.golden.topk import prune_rows
from dpfm.golden.trainer import Trainer, loss_and_slope, mean_loss, positive_float

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


def last_layer_gradient(spec: NetSpec, flat: np.ndarray, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """The output layer's exact mean gradient `(R, n_out * (n_in + 1))`, in weight-id order: `delta_o * [a, 1]`
    with `delta_o = dL/da_o * f'(z_o)` and `a` the layer's inputs. It is local to the output neurons (no
    tangent carries it), so an `exact_last` trainer spends no tangent slots on it."""
    a = X[None]
    for l, act in enumerate(spec.activations):
        n_out, n_in = spec.layer_shape(l)
        Wa = flat[:, spec.layer_base(l):spec.layer_base(l + 1)].reshape(len(flat), n_out, n_in + 1)
        inputs = a
        a, slope = activate(act, inputs @ Wa[..., :n_in].transpose(0, 2, 1) + Wa[:, None, :, n_in])
    _, c = loss_and_slope(spec.loss, a, Y[None])
    delta = c if slope is None else c * slope
    aug = np.concatenate([np.broadcast_to(inputs, delta.shape[:2] + inputs.shape[-1:]),
                          np.ones(delta.shape[:2] + (1,))], axis=-1)
    return np.einsum("rbo,rbi->roi", delta, aug).reshape(len(flat), -1) / len(X)


class _Plan:
    """Per-network constants of the forward-mode pass, and the pass itself.

    Tangent layout. Unit u of layer l has a tangent row over ids `[0, base_{l+1})`: the ids of earlier
    layers, then layer l's own block, in which only u's segment (ids of `W[u, :]`, `b[u]`) can be non-zero
    (d a_u / d W[v, i] = 0 for v != u). So each layer's tangent is kept as two dense arrays, `prev`
    `(R, B, n, base_l)` and `own` `(R, B, n, n_in + 1)` (u's own segment); the row is `[prev | own placed in
    segment u]`. `[prev | own]` has the same entries in the same id order, so prune_K runs on it directly,
    and no block of zeros is ever built or multiplied.
    """

    def __init__(self, spec: NetSpec, ks, selection=None, train_layers=None):
        self.spec = spec
        self.selection = selection  # None: the contract's top-K (`prune_rows`); else a `golden.selection` rule
        self.trains = learning_layers(spec, train_layers)
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
            prunes = bool(np.any(k_arr < nnz))
            layer_of = np.concatenate([np.repeat(np.arange(l), np.diff([spec.layer_base(j) for j in range(l + 1)])),
                                       np.full(n_in + 1, l)])
            self.layers.append((n_out, n_in, base, end, prune_k, prunes, spec.activations[l], layer_of))
            nnz = np.minimum(nnz, k_arr)

    def gradients(self, flat: np.ndarray, X: np.ndarray, Y: np.ndarray, rng=None, dropped=False, masks=None):
        """Mean top-K gradient `(R, P)` and per-sample losses `(R, B)` of a mini-batch; with `dropped`, also
        the mean of what pruning removed at the output nodes, in gradient units (`(R, P)`, error feedback).
        `masks` (per layer `(B, n_out)`, docs/ARITHMETIC.md 3d): the neurons' dither masks, None for none."""
        R, B = flat.shape[0], X.shape[0]
        a = np.broadcast_to(X, (R,) + X.shape)
        prev = own = None
        ones = np.ones((R, B, 1))
        for layer, (n_out, n_in, base, end, prune_k, prunes, act, layer_of) in enumerate(self.layers):
            Wa = flat[:, base:end].reshape(R, n_out, n_in + 1)
            W = Wa[..., :n_in]
            z = a @ W.transpose(0, 2, 1) + Wa[:, None, :, n_in]
            aug = np.concatenate([a, ones], axis=-1)[:, :, None, :]  # direct terms: d z_u/d W[u,i] = x_i, d/db = 1
            if not self.trains[layer]:   # a frozen layer forms no direct candidates (docs/ARITHMETIC.md 3e)
                aug = np.zeros_like(aug)
            if own is None and (masks is None or not prunes):  # first layer: every unit's row is [x, 1];
                row = aug.copy()                                  # prune it once for all ...
            elif own is None:                  # ... unless each unit has its own dither mask
                row = np.broadcast_to(aug, (R, B, n_out, n_in + 1)).copy()
            else:  # the dot node: sum_i W[u, i] * x_i' (earlier ids, exact) then the direct terms
                parts = [] if prev is None else [W[:, None] @ prev]
                parts.append((W[:, None, :, :, None] * own[:, :, None, :, :]).reshape(R, B, n_out, -1))
                parts.append(np.broadcast_to(aug, (R, B, n_out, n_in + 1)))
                row = np.concatenate(parts, axis=-1)
            lost = row.copy() if dropped and end == self.spec.n_params else None
            if self.selection is not None:   # a study rule (it may draw from rng even when nothing is pruned)
                self.selection.prune(row, prune_k, layer_of, rng)
            elif not prunes:                 # K covers every row's non-zeros: nothing to rank
                pass
            elif masks is not None:
                _prune_demoted(row, prune_k, self._row_ids(layer, n_out), masks[layer], base)
            else:
                prune_rows(row, prune_k)
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

    def _row_ids(self, layer: int, n_out: int) -> np.ndarray:
        """The weight-id of every column of unit u's row `[earlier ids | u's own segment]`, `(n_out, width)`."""
        _, n_in, base, *_ = self.layers[layer]
        own = base + np.arange(n_out)[:, None] * (n_in + 1) + np.arange(n_in + 1)
        return np.concatenate([np.broadcast_to(np.arange(base), (n_out, base)), own], axis=1)


def _prune_demoted(row: np.ndarray, ks, ids: np.ndarray, masks: np.ndarray, base: int) -> None:
    """prune_K with the dither of docs/ARITHMETIC.md 3d on rows `(R, B, n_out, width)`: not demoted first,
    then |v|, then the lower id (column order is id order); ids from `base` on are the layer's own weights,
    the direct candidates."""
    up = dither.flags(ids[None], masks[:, :, None], direct=ids >= base) == 0
    selection_rules.keep_top_ranked_up(row, up, ks)


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
# which pass serves which replicas
# --------------------------------------------------------------------------------------------------------
#: `layout="auto"` uses slots from this many parameters on (digits and MNIST; slots are 4-5x faster on
#: digits). Below it the dense pass is as fast, and it keeps the seed-sum figures reproducible bit for bit:
#: the two passes keep the same entries but may sum them in another order.
SLOTS_FROM_PARAMS = 1024
LAYOUTS = ("auto", "dense", "slots")
#: Tangent entries one dense call may hold at once (R x B x units x row width); larger batches are split.
DENSE_BUDGET = 1 << 24
#: Samples per slot-pass call: larger batches run in chunks of this size, which keeps the arrays in cache.
SLOT_CHUNK = 50


class _Passes:
    """The float forward-mode passes of a trainer's replicas: one `SlotPlan` per pruned K in the slot layout,
    and the dense `_Plan` for the rest (every replica in the dense layout; full and K >= P in the slot one).
    A dense call that would hold more than `DENSE_BUDGET` entries runs the batch in chunks (only large nets
    need it, so small ones compute exactly as before)."""

    def __init__(self, spec: NetSpec, ks, layout: str, train_layers=None):
        if layout not in LAYOUTS:
            raise DpfmError(f"unknown tangent layout '{layout}'", f"use one of {', '.join(LAYOUTS)}")
        slots = layout == "slots" or (layout == "auto" and spec.n_params >= SLOTS_FROM_PARAMS)
        pruned = [r for r, k in enumerate(ks) if slots and k is not None and k < spec.n_params]
        self.spec = spec
        self.groups = []
        for k in sorted({ks[r] for r in pruned}):
            self.groups.append((np.array([r for r in pruned if ks[r] == k]), SlotPlan(spec, k, train_layers)))
        dense = [r for r in range(len(ks)) if r not in pruned]
        if dense:
            self.groups.append((np.array(dense), _Plan(spec, tuple(ks[r] for r in dense), train_layers=train_layers)))
        widest = max(n_out * (spec.layer_base(l) + n_in + 1)
                     for l in range(spec.n_layers) for n_out, n_in in [spec.layer_shape(l)])
        self.dense_chunk = max(1, DENSE_BUDGET // (len(dense) * widest)) if dense else None

    def gradients(self, flat: np.ndarray, X: np.ndarray, Y: np.ndarray, masks=None):
        """`_Plan.gradients` (mean gradient `(R, P)`, losses `(R, B)`) over all replicas."""
        rows, plan = self.groups[0]
        if len(self.groups) == 1 and len(X) <= (SLOT_CHUNK if isinstance(plan, SlotPlan) else self.dense_chunk):
            return plan.gradients(flat, X, Y, masks=masks)
        grad = np.empty_like(flat)
        losses = np.empty((len(flat), len(X)))
        for rows, plan in self.groups:
            step = SLOT_CHUNK if isinstance(plan, SlotPlan) else self.dense_chunk
            grad[rows] = 0.0
            for start in range(0, len(X), step):
                part = slice(start, start + step)
                sub = None if masks is None else [m[part] for m in masks]
                g, losses[rows, part] = plan.gradients(flat[rows], X[part], Y[part], masks=sub)
                grad[rows] += g * len(X[part])
            grad[rows] /= len(X)
        return grad, losses


# --------------------------------------------------------------------------------------------------------
# the trainer
# --------------------------------------------------------------------------------------------------------
class GoldenTrainer(Trainer):
    """The golden backend of `golden.trainer.Trainer`: top-K forward-mode gradients computed here, in float
    (`_Plan`, with optional momentum) or in fixed point (one `golden.fixed_mlp.FixedModel` per K).

    `k` may be a list: every K then trains as a replica from the same initial weights on the same shuffled
    batches, and losses and predictions gain a leading replica axis.

    Study options (float only): `lr` may be a list with one rate per replica; `selection` names a
    `golden.selection` rule (which entries pruning keeps) and `lr_rule` a `golden.lr_rules` rule (how the
    gradient becomes an update). Their defaults are the contract's top-K and plain SGD, bit for bit; random
    rules draw from their own generator, so every rule sees the same initial weights and batches.
    """

    kind = "golden"

    def __init__(self, spec: NetSpec, k, selection=selection_rules.DEFAULT, lr_rule=lr_rules.DEFAULT,
                 layout="auto", quant: WeightQuant | None = None, **settings):
        """`settings`: lr, batch, momentum, init, seed, fixed, tangent, dither, train_layers, exact_last, as
        for `Trainer`. `layout` picks the float pass of the contract's rule: `dense` rows, K `slots` per value
        (`golden.slots`: cost grows with K), or `auto` (slots from `SLOTS_FROM_PARAMS` parameters on). Both
        keep the same entries. `quant` (float only) stores the weights on an n-bit grid after every update
        (`golden.quant.WeightQuant`).
        The study's selection `demote-hw-el` turns on the dither and `exact_last`; in float the output layer's
        gradient is then `last_layer_gradient`."""
        lrs = settings.get("lr")
        if isinstance(lrs, (list, tuple)):   # one rate per replica: checked here, the first stands for them
            settings["lr"] = lrs[0] if lrs else None
        super().__init__(spec, k, **settings)
        if isinstance(lrs, (list, tuple)):
            if len(lrs) != len(self.ks):
                raise DpfmError(f"{len(lrs)} learning rates for {len(self.ks)} replicas", "give one per K")
            self.lr = tuple(positive_float(v, "learning rate", "--lr") for v in lrs)
        self.selection = selection_rules.get_rule(selection)
        self.lr_rule = lr_rules.get_rule(lr_rule)
        if getattr(self.selection, "contract_dither", False):   # the study's name for the trainer's own dither
            self.dither, self.dither_state = True, dither.seed_state(self.seed)
            self.exact_last = self.exact_last or self.selection.exact_last
            self.selection = selection_rules.get_rule(selection_rules.DEFAULT)
        learns = learning_layers(spec, self.train_layers)
        self._exact_last = self.exact_last and learns[-1]   # the output layer learns, by its exact gradient
        # the layers whose weights the tangent passes carry: all that learn, less an exactly computed output layer
        tangent_layers = self.train_layers
        if self._exact_last:
            tangent_layers = tuple(l for l in range(spec.n_layers - 1) if learns[l])
        self._default_rules = (self.selection.name == selection_rules.DEFAULT and
                               self.lr_rule.name == lr_rules.DEFAULT and not isinstance(self.lr, tuple))
        if not self._default_rules and (self.fixed is not None or self.momentum):
            raise DpfmError("selection and learning-rate rules and per-replica rates are float-only and replace "
                            "--momentum", "use them without --fixed and --momentum")
        if self.dither and self.selection.name != selection_rules.DEFAULT:
            raise DpfmError(f"the selection rule '{self.selection.name}' replaces the contract's dither",
                            "use it with --dither off")
        self._plan = _Plan(spec, self.ks, None if self.selection.name == selection_rules.DEFAULT else self.selection,
                           tangent_layers)
        self._passes = _Passes(spec, self.ks, layout, tangent_layers)
        self._rule_rng = np.random.default_rng([self.seed, 1])
        self._rule_state = None if self._default_rules else self.lr_rule.init((self.n_replicas, spec.n_params))
        if quant is not None and self.fixed is not None:
            raise DpfmError("n-bit weight quantizers are a float study: the fixed-point formats are their own "
                            "storage", "use a quantizer without --fixed")
        self.quant = quant
        self._fixed_models = None
        if self.fixed is not None:
            self._fixed_models = [FixedModel(spec, k, self.fixed, tangent=self.tangent, train_layers=self.train_layers,
                                             exact_last=self.exact_last) for k in self.ks]
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
        self._flat = self._stored(np.tile(flat, (self.n_replicas, 1)))
        self._velocity = np.zeros_like(self._flat)
        if self.fixed is not None:
            self._raw = np.stack([m.quantize_weights(flat) for m in self._fixed_models])

    def _stored(self, flat: np.ndarray) -> np.ndarray:
        """`flat` as the weight memory holds it: on the quantizer's grid (a diverged replica as it is)."""
        return flat if self.quant is None else self.quant.rows(self.spec, flat)

    def _checkpoint_arrays(self) -> dict:
        if self.quant is not None:
            raise DpfmError("checkpoints of quantized study runs are not supported",
                            "train without a weight quantizer to save a checkpoint")
        if not self._default_rules:
            raise DpfmError("checkpoints of study runs (selection or learning-rate rules) are not supported",
                            "train with the default rules to save a checkpoint")
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
        if not self._default_rules:
            lr = np.array(self.lr if isinstance(self.lr, tuple) else [self.lr] * self.n_replicas)[:, None]
            masks = self._batch_masks(len(X))
            if self._plan.selection is None and not self.lr_rule.needs_dropped:   # the contract's selection
                grad, losses = self._passes.gradients(self._flat, X, Y, masks=masks)
                dropped = []
            else:
                grad, losses, *dropped = self._plan.gradients(self._flat, X, Y, self._rule_rng,
                                                              dropped=self.lr_rule.needs_dropped, masks=masks)
            self._add_exact_last(grad, X, Y)
            update, self._rule_state = self.lr_rule.step(grad, lr, self._rule_state, *dropped)
            self._flat = self._stored(self._flat - update)
            return losses.sum(axis=1) / len(X)
        if self.fixed is None:
            grad, losses = self._passes.gradients(self._flat, X, Y, masks=self._batch_masks(len(X)))
            self._add_exact_last(grad, X, Y)
            if self.momentum:
                self._velocity *= self.momentum
                self._velocity -= self.lr * grad
                self._flat += self._velocity
            else:
                self._flat -= self.lr * grad
            self._flat = self._stored(self._flat)
            return losses.sum(axis=1) / len(X)
        out = np.empty(self.n_replicas)
        state = self.dither_state
        for r, model in enumerate(self._fixed_models):
            out[r] = mean_loss(self.spec.loss, to_float(model.predict(self._raw[r], X_raw), self.fixed.x), Y)
            model.dither_state = state          # every replica sees the same masks
            G = model.batch_gradient(self._raw[r], X_raw, Y_raw)
            self._raw[r] = model.sgd_update(self._raw[r], G, model.lr_raw(self.lr, len(X)))
            self.dither_state = model.dither_state
        return out

    def _add_exact_last(self, grad: np.ndarray, X, Y) -> None:
        """With `exact_last`, the output layer's part of `grad` (zero from the tangent passes, which leave
        that layer frozen) becomes its exact gradient."""
        if self._exact_last:
            grad[:, self.spec.layer_base(self.spec.n_layers - 1):] = last_layer_gradient(self.spec, self._flat, X, Y)

    def _batch_masks(self, batch: int):
        """The float path's dither masks for one batch, per layer `(B, n_out)` (None when off), stepping the
        generator as the fixed-point model and the core do (docs/ARITHMETIC.md 3d)."""
        if not self.dither:
            return None
        masks, self.dither_state = dither.layer_masks(self.dither_state, self.spec.sizes[1:], batch)
        return masks

    def _forward(self, X, X_raw) -> np.ndarray:
        if self.fixed is None:
            return forward(self.spec, self._flat, X)
        return np.stack([to_float(m.predict(w, X_raw), self.fixed.x) for m, w in zip(self._fixed_models, self._raw)])
