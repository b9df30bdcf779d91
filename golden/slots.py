"""The golden trainer's pruned forward pass in slots: a cost that grows with K, not with the parameter count.

The dense pass (`golden.mlp._Plan`) gives every unit a tangent row over all earlier weight-ids, which is
exact and simple but costs B x units x P per layer: on MNIST's 784-16-16-10 (P = 13,002) a K=8 step is
slower than the full gradient. The hardware carries K (weight-id, value) slots per value instead, and so
does this pass:

- a unit of the first layer has its direct candidates only (`[x, 1]`, of which only the non-zero inputs
  can be kept), pruned to K slots;
- a unit above it gathers the slots of its inputs: the ids the inputs hold, per sample, are sorted and made
  unique (an id held by two inputs is one candidate, its values summed, as the dense row sums them), giving
  a compact `(inputs, columns)` block of at most inputs x K columns; `W @ block` is every unit's inherited
  candidates, followed by its direct ones. In the second layer every input holds only its own weights, so
  no id is shared and the products `W[v, u] * slot` are the candidates as they are;
- the same prune as the dense pass (top-K by |v|, ties to the lower id, or the dither's ranking) keeps K,
  which are packed back into slots;
- the loss sink scatters the output units' slots, times dL/da, into the gradient.

Candidates keep the dense row's id order (inherited ids ascending, then the unit's own segment), and empty
slots hold the id `P` with value 0, which is never kept; so the kept entries, their ranking and the tie rule
are those of the dense pass, and only the float sums' order can differ. Only the contract's rule is served
here (plain top-K and the dither masks); the study's other rules use the dense pass.
"""

import numpy as np

from dpfm.golden import dither
from dpfm.golden import selection as selection_rules
from dpfm.golden.activation_functions import activate
from dpfm.golden.contract.net import NetSpec, learning_layers
from dpfm.golden.topk import prune_rows
from dpfm.golden.trainer import loss_and_slope


class SlotPlan:
    """The slot pass for replicas that all prune to the same `k` (< P)."""

    def __init__(self, spec: NetSpec, k: int, train_layers=None):
        self.spec = spec
        self.k = int(k)
        self.trains = learning_layers(spec, train_layers)
        self.empty = spec.n_params  # the id of an empty slot

    def gradients(self, flat: np.ndarray, X: np.ndarray, Y: np.ndarray, masks=None):
        """Mean top-K gradient `(R, P)` and per-sample losses `(R, B)`, as `_Plan.gradients` computes them
        for replicas `flat` `(R, P)` of this K; `masks` are the dither masks per layer `(B, n_out)`, or None."""
        spec, k = self.spec, self.k
        R, B = flat.shape[0], X.shape[0]
        a = np.broadcast_to(X, (R,) + X.shape)
        ids = vals = None
        ones = np.ones((R, B, 1))
        for layer, act in enumerate(spec.activations):
            n_out, n_in = spec.layer_shape(layer)
            base = spec.layer_base(layer)
            Wa = flat[:, base:spec.layer_base(layer + 1)].reshape(R, n_out, n_in + 1)
            z = a @ Wa[..., :n_in].transpose(0, 2, 1) + Wa[:, None, :, n_in]
            if ids is None:
                inputs, x = self._nonzero_inputs(X)
                if not self.trains[layer]:   # frozen: no direct candidates (docs/ARITHMETIC.md 3e)
                    inputs, x = inputs[:, -1:], np.zeros((B, 1))
                row = np.broadcast_to(x[None, :, None, :], (R, B, n_out, x.shape[-1])).copy()
                row_ids = base + np.arange(n_out)[:, None] * (n_in + 1) + inputs[:, None, :]
            else:
                direct = np.broadcast_to(np.concatenate([a, ones], axis=-1)[:, :, None, :] * self.trains[layer],
                                         (R, B, n_out, n_in + 1))
                own = base + np.arange(n_out)[:, None] * (n_in + 1) + np.arange(n_in + 1)
                if layer == 1:   # the inputs' ids are their own weights: disjoint, and unit-major is id order
                    col_ids = ids.reshape(R, B, -1)
                    inherited = (Wa[:, None, :, :n_in, None] * vals[:, :, None]).reshape(R, B, n_out, -1)
                else:
                    col_ids, block = self._gather(ids, vals)
                    inherited = Wa[:, None, :, :n_in] @ block
                row = np.concatenate([inherited, direct], axis=-1)
                row_ids = np.concatenate([np.broadcast_to(col_ids[:, :, None, :], (R, B, n_out, col_ids.shape[-1])),
                                          np.broadcast_to(own, (R, B, n_out, n_in + 1))], axis=-1)
            if row.shape[-1] > k:
                if masks is None:
                    prune_rows(row, (k,) * R)
                else:
                    up = dither.flags(row_ids, masks[layer][:, :, None], direct=row_ids >= base) == 0
                    selection_rules.keep_top_ranked_up(row, up, (k,) * R)
            a, slope = activate(act, z)
            if slope is not None:
                row *= slope[..., None]
            ids, vals = self._pack(row, row_ids)
        losses, c = loss_and_slope(spec.loss, a, Y[None])
        return self._sink(c, ids, vals) / B, losses

    @staticmethod
    def _nonzero_inputs(X: np.ndarray):
        """The first layer's candidates, which are the same for every unit: per sample its non-zero inputs in
        order, padded with zeros, then the bias input 1 (a zero input's entry is never kept, so dropping it
        changes nothing). Returns the input indices `(B, m + 1)` (the bias is index n_in) and the values."""
        B, n_in = X.shape
        nz = X != 0
        m = int(nz.sum(axis=1).max())
        order = np.argsort(~nz, axis=1, kind="stable")[:, :m]   # non-zero columns first, in input order
        x = np.take_along_axis(X, order, axis=1)
        inputs = np.concatenate([order, np.full((B, 1), n_in)], axis=1)
        return inputs, np.concatenate([x, np.ones((B, 1))], axis=1)

    def _gather(self, ids: np.ndarray, vals: np.ndarray):
        """The inputs' slots `(R, B, n_in, K)` as a block `(R, B, n_in, columns)` over the sorted unique ids
        each sample holds (`(R, B, columns)`; unused columns have the empty id and zeros)."""
        R, B, n_in, k = ids.shape
        flat_ids = ids.reshape(R, B, n_in * k)
        order = np.argsort(flat_ids, axis=-1, kind="stable")
        sorted_ids = np.take_along_axis(flat_ids, order, axis=-1)
        first = np.ones(sorted_ids.shape, dtype=bool)
        first[..., 1:] = sorted_ids[..., 1:] != sorted_ids[..., :-1]
        col_of_sorted = np.cumsum(first, axis=-1) - 1
        width = int(col_of_sorted[..., -1].max()) + 1
        col_ids = np.full((R, B, width), self.empty, dtype=np.int64)
        np.put_along_axis(col_ids, col_of_sorted, sorted_ids, axis=-1)
        col = np.empty_like(col_of_sorted)
        np.put_along_axis(col, order, col_of_sorted, axis=-1)
        block = np.zeros((R, B, n_in, width))
        np.put_along_axis(block, col.reshape(R, B, n_in, k), vals, axis=-1)
        return col_ids, block

    def _pack(self, row: np.ndarray, row_ids: np.ndarray):
        """The non-zero entries of pruned rows (at most K each) as K slots `(ids, vals)`, in column order
        (`row_ids` broadcasts to the rows' shape)."""
        nz = row != 0
        slot = np.cumsum(nz, axis=-1) - 1
        where = np.nonzero(nz)
        ids = np.full(row.shape[:-1] + (self.k,), self.empty, dtype=np.int64)
        vals = np.zeros(row.shape[:-1] + (self.k,))
        target = where[:-1] + (slot[where],)
        ids[target] = np.broadcast_to(row_ids, row.shape)[where]
        vals[target] = row[where]
        return ids, vals

    def _sink(self, c: np.ndarray, ids: np.ndarray, vals: np.ndarray) -> np.ndarray:
        """sum over samples and outputs of dL/da_o * a_o' `(R, P)`: the output slots scattered by id."""
        R = ids.shape[0]
        size = self.spec.n_params + 1   # the empty id's column is dropped
        offset = (np.arange(R) * size)[:, None, None, None]
        total = np.bincount((ids + offset).ravel(), weights=(c[..., None] * vals).ravel(), minlength=R * size)
        return total.reshape(R, size)[:, :-1]
