"""The fixed-point DPFM trainer core (docs/ARITHMETIC.md sections 2, 3, 5, 6), vectorized over a batch.

`FixedModel(spec, k, fmts, tangent)` computes, from raw integers, exactly what one hardware configuration
computes:

- `tangent="toper"` is the **hardware-exact** model: every neuron runs MAC steps i = 0..n_in (bias last),
  emits its candidates in the order of `golden.mac_lane.mac_candidates` into its own K-cell toper, applies the
  activation LUTs per `golden.activation.activation_slots`, and the loss/gradient/SGD steps follow sections 3.5
  and 3.6 literally. The RTL must equal it bit for bit (final weights, saturation count, evictions).
  All neurons of a layer and all samples of a batch are independent, so they run side by side as the rows
  of one `BatchToper`; `tests/golden/test_fixed_mlp.py` checks this against the lane's own model
  (`golden.mac_lane.MacLaneModel`) run neuron by neuron.
- `tangent="toper-parallel"` is the hardware-exact model of the parallel lane (section 3b): per neuron, K + 1
  source topers (the direct terms, and each input slot's products) fed in step order, then the fixed merge
  tree of fresh topers; everything else as `"toper"`. `tangent="toper-parallel-S"` is the same lane with S
  source topers: candidate c of a step (0 = direct, j + 1 = slot j) goes into source `c mod S`. Per neuron
  this is `golden.parallel_lane.ParallelMacLaneModel`.
- `tangent="exact"` is the golden "exact top-K" reference: the same formats and rounding points, except that
  each neuron's pre-activation tangent is the exact sum of its contributions (direct terms `x_i` and products
  `w * x'`, at full precision), rounded once to `t`, then `prune_K` (zeros dropped, K highest by the order
  key). `k=None` keeps everything (exact forward mode in fixed point). Tangents are dense arrays indexed by id.

In both modes the loss is not a pruning point: the gradient accumulator G receives `delta_o * a_o'[j]` for
every surviving entry of every output (section 3.5), samples in batch order, outputs in order, entries in
slot order (toper) or id order (exact). With `exact_last` (section 3f) the output neurons form no direct
candidates, and their direct entries `round_t(d * conv_t(x_i))` follow the slots (toper) or take their ids
(exact). This differs from the float `golden.dual` reference, where the loss
is one more top-K node; the two agree whenever n_out * K entries fit in K (e.g. one output).

Loss. MSE (section 3.5): `e = sat_x(a - y)`, `delta = sat_x(round_x(c * e))`, `c = quantize(2 / n_out)`.
Binary cross-entropy (exact mode only; a sigmoid output): the standard fused form `dL/dz = (a - y) / n_out`,
i.e. `delta = sat_x(round_x(c * e))` with `c = quantize(1 / n_out)`, applied to the output layer's
*pre-activation* tangent `z'` (the sigmoid's slope cancels against the loss derivative, so it is not
applied). The hardware has no BCE path, so the toper modes reject it.

Saturation counter `sat` counts every clamp of a training step (candidates, merges, z, activation slots,
errors, deltas, G, weights), per neuron and per sample, as the hardware's counter does; `predict` and
host-side quantization (`quantize_weights`, `quantize_inputs`, `lr_raw`) do not count. `evictions` counts
entries dropped by the topers (toper mode) or non-zero entries dropped by prune_K (exact mode).
"""

import math

import numpy as np

from dpfm.golden import dither
from dpfm.golden.activation import activation_luts, activation_value, lut_index
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.contract.net import NetSpec, check_train_layers, learning_layers
from dpfm.golden.contract.organisation import check_tangent_mode, parallel_sources
from dpfm.golden.fixedpoint import SatCounter, quantize, requantize, saturate, shift_round
from dpfm.golden.merge_tree import merge_tree_order
from dpfm.golden.toper import EMPTY_ID, BatchToper


class FixedModel:
    """One network in one set of number formats; weights and data are passed in as raw int64 arrays."""

    def __init__(self, spec: NetSpec, k: int | None, fmts: HwFormats | None = None, tangent: str = "exact",
                 train_layers=None, exact_last: bool = False):
        self.spec = spec
        self.trains = learning_layers(spec, check_train_layers(spec, train_layers))
        #: the output layer's gradient exact (section 3f), when that layer learns
        self.exact_last = bool(exact_last) and self.trains[-1]
        #: per layer, whether its neurons form direct candidates (3.2): a layer that learns, except an exact
        #: output layer, whose direct entries join its tangent after the toper instead
        self.direct = self.trains[:-1] + [self.trains[-1] and not self.exact_last]
        self.fmts = fmts = fmts or HwFormats()
        check_tangent_mode(tangent)
        if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
            raise DpfmError(f"K must be a positive integer or full, got {k!r}", "use e.g. --k 8")
        hardware = tangent != "exact"
        if hardware and k is None:
            raise DpfmError("the hardware toper needs a finite K", "give K (e.g. 8) or use the exact tangent mode")
        if hardware and spec.loss != "mse":
            raise DpfmError(f"the hardware computes MSE only, not '{spec.loss}'",
                            "use --loss mse for hardware-exact training, or the exact tangent mode")
        self.k = None if k is None else int(k)
        if hardware:
            BatchToper.check_fits(self.k, fmts.t)
        self.tangent = tangent
        self.sources = parallel_sources(tangent, self.k)   # the parallel lane's source topers (None: serial)
        self.sat = SatCounter()
        self.evictions = 0
        #: The dither generator's state (section 3d): 0 is off (plain top-K); each training pass steps it once
        #: per neuron of every sample.
        self.dither_state = dither.OFF
        self._check_widths()
        self._one = 1 << fmts.x.frac  # the bias step's input, 1.0 in format x
        if self._one > fmts.x.max_raw:
            raise DpfmError(f"x format {fmts.x} cannot hold the bias input 1.0", "give x at least 2 integer bits")
        scale = 2.0 if spec.loss == "mse" else 1.0
        self._c = quantize(scale / spec.n_outputs, fmts.x)
        if self._c == 0:
            raise DpfmError(f"the loss scale {scale}/{spec.n_outputs} rounds to 0 in x format {fmts.x}",
                            "use more x fraction bits")
        self._luts = [None if act == "identity" else activation_luts(act, fmts) for act in spec.activations]

    def _check_widths(self):
        """Every intermediate must fit int64; say so up front instead of wrapping silently."""
        f = self.fmts
        fan = max(self.spec.sizes[:-1]) + 2
        full = max(f.x.frac, f.w.frac + f.t.frac)
        sums = max(f.w.bits + f.x.bits, f.w.bits + f.t.bits + full - f.w.frac - f.t.frac,
                   f.x.bits + full - f.x.frac, f.x.bits + f.t.bits, 2 * f.x.bits) + math.ceil(math.log2(fan))
        need = max(sums, f.lr.bits + f.g.bits, f.g.bits + 1, f.t.bits + 32)  # t + 32: the prune key
        if need > 62:
            raise DpfmError(f"formats {f} need {need}-bit intermediates, more than the 64-bit golden model has",
                            "use narrower formats")

    # -- host-side conversions ----------------------------------------------------------------------------
    def quantize_weights(self, flat) -> np.ndarray:
        """Float P-vector (indexed by weight-id) -> raw format w."""
        flat = np.asarray(flat, dtype=np.float64)
        if flat.shape != (self.spec.n_params,):
            raise DpfmError(f"expected {self.spec.n_params} weights, got shape {flat.shape}",
                            "pass the flat weight vector of this network")
        return quantize(flat, self.fmts.w, what="weights")

    def quantize_inputs(self, X, what: str = "inputs") -> np.ndarray:
        """Float inputs or targets -> raw format x."""
        return quantize(np.asarray(X, dtype=np.float64), self.fmts.x, what=what)

    def lr_raw(self, lr: float, batch: int) -> int:
        return lr_raw(self.fmts, lr, batch)

    # -- the datapath -------------------------------------------------------------------------------------
    def _layer_primal(self, layer: int, w_raw: np.ndarray, a: np.ndarray, sat) -> tuple[np.ndarray, np.ndarray]:
        """`(z, a_out)` of one layer for a batch: exact wide MAC, `z = sat_x(round(acc))`, LUT activation."""
        f = self.fmts
        rows = self._rows(layer, w_raw)
        acc = a @ rows[:, :-1].T + self._one * rows[:, -1]
        z = requantize(acc, f.w.frac + f.x.frac, f.x, sat)
        if self._luts[layer] is None:
            return z, z
        return z, activation_value(z, *self._luts[layer], f, sat)

    def _rows(self, layer: int, w_raw: np.ndarray) -> np.ndarray:
        """Layer `layer`'s weights as `(n_out, n_in + 1)` rows, bias last (the weight-id layout)."""
        n_out, n_in = self.spec.layer_shape(layer)
        base = self.spec.layer_base(layer)
        return w_raw[base:base + n_out * (n_in + 1)].reshape(n_out, n_in + 1)

    def forward(self, w_raw, X_raw) -> list[np.ndarray]:
        """Primal pass only: the activations `(B, n)` of every layer, raw format x (not counted in `sat`)."""
        w_raw, X_raw = self._check(w_raw, X_raw)
        out, a = [], X_raw
        for layer in range(self.spec.n_layers):
            _, a = self._layer_primal(layer, w_raw, a, None)
            out.append(a)
        return out

    def predict(self, w_raw, X_raw) -> np.ndarray:
        """Network outputs `(B, n_out)`, raw format x."""
        return self.forward(w_raw, X_raw)[-1]

    def output_tangents(self, w_raw, X_raw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`(a, values, ids)`: outputs `(B, n_out)` and the tangent entries the loss uses, `(B, n_out, S)`
        each, in accumulation order; invalid entries are `(0, EMPTY_ID)`. Counts in `sat`/`evictions`."""
        w_raw, X_raw = self._check(w_raw, X_raw)
        masks = self._neuron_masks(X_raw.shape[0])
        if self.tangent != "exact":
            a, tv, tid, last_in = self._toper_pass(w_raw, X_raw, masks)
            if self.exact_last:   # after the K slots, in the gradient unit's order
                p, pid = self._direct_entries(*last_in)
                tv, tid = np.concatenate([tv, p], axis=2), np.concatenate([tid, pid], axis=2)
            return a, tv, tid
        a, T, ids, last_in = self._exact_pass(w_raw, X_raw, masks)
        if self.exact_last:       # the output layer's own ids are free in T (no direct terms were formed)
            p, pid = self._direct_entries(*last_in)
            last = self.spec.weight_ids(self.spec.n_layers - 1)
            T[:, np.arange(p.shape[1])[:, None], last] = p
            ids = np.where(T != 0, np.arange(self.spec.n_params), EMPTY_ID)
        return a, T, ids

    def _direct_entries(self, a, z) -> tuple[np.ndarray, np.ndarray]:
        """Section 3f: the output layer's direct entries `(B, n_out, n_in + 1)`, values and ids, from its inputs
        `a` `(B, n_in)` and pre-activations `z` `(B, n_out)`, as the activation node would turn unpruned
        direct candidates into tangent slots: `round_t(d_o * conv_t(x_i))` (`conv_t(x_i)` alone for the
        identity, and for BCE's fused output in exact mode), the bias's `x` 1.0; an entry of value 0 is
        invalid. Both roundings count saturations, per output and input."""
        f, last = self.fmts, self.spec.n_layers - 1
        B, n_out = z.shape
        inputs = np.concatenate([a, np.full((B, 1), self._one, dtype=np.int64)], axis=1)
        v = requantize(np.broadcast_to(inputs[:, None, :], (B, n_out, inputs.shape[1])), f.x.frac, f.t, self.sat)
        if self._luts[last] is not None and not (self.tangent == "exact" and self.spec.loss == "bce"):
            d = self._luts[last][1][lut_index(z, f)]
            v = requantize(d[:, :, None] * v, f.x.frac + f.t.frac, f.t, self.sat)
        ids = np.broadcast_to(self.spec.weight_ids(last).reshape(n_out, -1), v.shape)
        return v, np.where(v == 0, EMPTY_ID, ids)

    def _neuron_masks(self, batch: int) -> list[np.ndarray]:
        """Per layer, the dither masks `(B * n_out,)` of its neurons in row order (sample, unit); the state
        steps once per neuron, in issue order (sample, layer, unit)."""
        masks, self.dither_state = dither.layer_masks(self.dither_state, self.spec.sizes[1:], batch)
        return [m.reshape(-1) for m in masks]

    def _toper_pass(self, w_raw, X_raw, masks):
        """Hardware-exact: per neuron, MAC steps in order, candidates in order, into the lane's topers. Returns
        the outputs, their slots' values and ids, and the output layer's `(inputs, z)` (for section 3f)."""
        f, k, B = self.fmts, self.k, X_raw.shape[0]
        a = X_raw
        tv = np.zeros((B, X_raw.shape[1], 0), dtype=np.int64)
        tid = np.full(tv.shape, EMPTY_ID)
        for layer, act in enumerate(self.spec.activations):
            n_out, n_in = self.spec.layer_shape(layer)
            rows, ids = self._rows(layer, w_raw), self.spec.weight_ids(layer)
            # the candidates of every MAC step; row r = b * n_out + u is neuron u of sample b. Source 0: the
            # direct terms `(R, n_in + 1)` (the bias step last); source j + 1: slot j's products `(R, n_in, S)`.
            R, S = B * n_out, tv.shape[2]
            inputs = np.concatenate([a, np.full((B, 1), self._one, dtype=np.int64)], axis=1)
            if self.direct[layer]:
                direct = requantize(np.repeat(inputs, n_out, axis=0), f.x.frac, f.t, self.sat)
            else:       # a frozen layer forms no direct candidates (section 3e): nothing to round or count
                direct = np.zeros((R, n_in + 1), dtype=np.int64)
            direct_id = np.tile(ids, (B, 1))
            prod = rows[None, :, :n_in, None] * tv[:, None, :, :]
            via = requantize(prod, f.w.frac + f.t.frac, f.t, self.sat).reshape(R, n_in, S)
            via_id = np.repeat(tid, n_out, axis=0)
            mask = masks[layer]
            direct_d = dither.flags(direct_id, mask[:, None], direct=True)
            via_d = dither.flags(via_id, mask[:, None, None])
            if self.tangent == "toper":
                zv, zid = self._serial_toper(direct, direct_id, direct_d, via, via_id, via_d)
            else:
                zv, zid = self._parallel_toper(direct, direct_id, direct_d, via, via_id, via_d)
            z, a_out = self._layer_primal(layer, w_raw, a, self.sat)
            tv, tid = zv.reshape(B, n_out, k), zid.reshape(B, n_out, k)
            if act != "identity":
                d = self._luts[layer][1][lut_index(z, f)]
                tv = requantize(d[:, :, None] * tv, f.x.frac + f.t.frac, f.t, self.sat)
                tid = np.where(tv == 0, EMPTY_ID, tid)
            last_in, a = (a, z), a_out
        return a, tv, tid, last_in

    def _serial_toper(self, direct, direct_id, direct_d, via, via_id, via_d):
        """Section 3.3: one toper per neuron, fed per MAC step the direct term, then the slot products."""
        R, n_in, S = via.shape
        toper = BatchToper(R, self.k, self.fmts.t, self.sat)

        def stream(d, v):   # a step's direct term, then its slots; the bias step last
            steps = np.concatenate([d[:, :n_in, None], v], axis=2).reshape(R, n_in * (1 + S))
            return np.concatenate([steps, d[:, n_in:]], axis=1)
        toper.insert_all(stream(direct, via), stream(direct_id, via_id), stream(direct_d, via_d))
        self.evictions += toper.evictions
        return toper.values, toper.ids

    def _parallel_toper(self, direct, direct_id, direct_d, via, via_id, via_d):
        """Section 3b: source toper s takes the candidates c = s, s + S, ... of every step, in step order and
        by c within a step, then the merge tree."""
        R, n_in, n_slots = via.shape
        k, t, n_src = self.k, self.fmts.t, self.sources

        def run(values, wids, flags):
            toper = BatchToper(R, k, t, self.sat)
            toper.insert_all(values, wids, flags)
            self.evictions += toper.evictions
            return toper.values, toper.ids, toper.flags

        # the MAC steps' candidates by index c (0 = direct, j + 1 = slot j), `(R, n_in, 1 + n_slots)`; the bias
        # step (direct only, c = 0) follows the others into source 0
        cands = [np.concatenate([d[:, :n_in, None], v], axis=2)
                 for d, v in ((direct, via), (direct_id, via_id), (direct_d, via_d))]
        biases = (direct[:, n_in:], direct_id[:, n_in:], direct_d[:, n_in:])
        empty = (np.zeros((R, k), dtype=np.int64), np.full((R, k), EMPTY_ID), np.zeros((R, k), dtype=np.int64))
        leaves = []
        for s in range(n_src):
            cols = np.arange(s, 1 + n_slots, n_src)
            if cols.size == 0:      # layer 0: the inputs carry no slots
                leaves.append(empty)
                continue
            fields = [c[:, :, cols].reshape(R, n_in * cols.size) for c in cands]
            if s == 0:
                fields = [np.concatenate([f, b], axis=1) for f, b in zip(fields, biases)]
            leaves.append(run(*fields))

        def tree(node):
            if isinstance(node, int):
                return leaves[node]
            left, right = tree(node[0]), tree(node[1])
            return run(*(np.concatenate([a, b], axis=1) for a, b in zip(left, right)))
        values, ids, _ = tree(merge_tree_order(n_src))
        return values, ids

    def _exact_pass(self, w_raw, X_raw, masks):
        """Golden exact top-K: dense tangents `(B, n, ids so far)`; each neuron's tangent is summed exactly,
        rounded to t once, then pruned to K. The last layer's rows span all P ids. Returns the outputs, their
        tangents, the ids of the non-zero entries, and the output layer's `(inputs, z)` (for section 3f)."""
        f, B, P = self.fmts, X_raw.shape[0], self.spec.n_params
        full = max(f.x.frac, f.w.frac + f.t.frac)
        a = X_raw
        T = np.zeros((B, X_raw.shape[1], 0), dtype=np.int64)  # columns: the ids of the earlier layers
        last = self.spec.n_layers - 1
        for layer, act in enumerate(self.spec.activations):
            n_out, n_in = self.spec.layer_shape(layer)
            rows, ids = self._rows(layer, w_raw), self.spec.weight_ids(layer)
            base = self.spec.layer_base(layer)
            zt = np.zeros((B, n_out, self.spec.layer_base(layer + 1)), dtype=np.int64)
            zt[:, :, :base] = (rows[:, :n_in] @ T) << (full - f.w.frac - f.t.frac)
            inputs = np.concatenate([a, np.full((B, 1), self._one, dtype=np.int64)], axis=1)
            if self.direct[layer]:
                zt[:, np.arange(n_out)[:, None], ids] = (inputs << (full - f.x.frac))[:, None, :]
            width = zt.shape[-1]
            flags = 0 if self.k is None or self.k >= width else \
                dither.flags(np.arange(width), masks[layer].reshape(B, n_out, 1), direct=np.arange(width) >= base)
            zt, dropped = _prune(requantize(zt, full, f.t, self.sat), self.k, flags, f.t.bits)
            self.evictions += dropped
            z, a_out = self._layer_primal(layer, w_raw, a, self.sat)
            if act == "identity" or (layer == last and self.spec.loss == "bce"):
                T = zt
            else:
                d = self._luts[layer][1][lut_index(z, f)]
                T = requantize(d[:, :, None] * zt, f.x.frac + f.t.frac, f.t, self.sat)
            last_in, a = (a, z), a_out
        return a, T, np.where(T != 0, np.arange(P), EMPTY_ID), last_in

    def batch_gradient(self, w_raw, X_raw, Y_raw) -> np.ndarray:
        """The G accumulator (format g, indexed by weight-id) after every sample of the batch, in order: per
        output neuron `golden.update.accumulate_output_gradient`, vectorized."""
        f = self.fmts
        a, tv, tid = self.output_tangents(w_raw, X_raw)
        Y_raw = np.asarray(Y_raw, dtype=np.int64)
        if Y_raw.shape != a.shape:
            raise DpfmError(f"targets have shape {Y_raw.shape}, the batch needs {a.shape}",
                            "give one target row of n_outputs values per sample")
        e = saturate(a - Y_raw, f.x, self.sat)
        delta = requantize(self._c * e, 2 * f.x.frac, f.x, self.sat)
        contrib = delta[:, :, None] * tv
        G = np.zeros(self.spec.n_params, dtype=np.int64)
        valid = tid != EMPTY_ID
        _accumulate(G, tid[valid], contrib[valid], f.g, self.sat)
        return G

    def sgd_update(self, w_raw, G_raw, lr_raw: int) -> np.ndarray:
        """Section 3.6: `w <- sat_w(w - round_w(lr_q * G))` for every weight-id."""
        f = self.fmts
        step = shift_round(int(lr_raw) * np.asarray(G_raw, dtype=np.int64), f.lr.frac + f.g.frac - f.w.frac)
        return saturate(np.asarray(w_raw, dtype=np.int64) - step, f.w, self.sat)

    def _check(self, w_raw, X_raw) -> tuple[np.ndarray, np.ndarray]:
        w_raw = np.asarray(w_raw, dtype=np.int64)
        X_raw = np.asarray(X_raw, dtype=np.int64)
        if w_raw.shape != (self.spec.n_params,):
            raise DpfmError(f"expected {self.spec.n_params} raw weights, got shape {w_raw.shape}",
                            "pass the flat weight vector of this network")
        if X_raw.ndim != 2 or X_raw.shape[1] != self.spec.n_inputs:
            raise DpfmError(f"inputs have shape {X_raw.shape}, the network needs (batch, {self.spec.n_inputs})",
                            "give one row of n_inputs values per sample")
        return w_raw, X_raw


def lr_raw(fmts: HwFormats, lr: float, batch: int) -> int:
    """`lr_q = quantize(lr / batch, lr format)` (section 3.6), rejected if it is 0 or does not fit."""
    if not (np.isfinite(lr) and lr > 0) or batch < 1:
        raise DpfmError(f"learning rate {lr} with batch {batch} is not usable",
                        "use a positive finite learning rate and batch >= 1")
    clamped = SatCounter()
    raw = quantize(lr / batch, fmts.lr, clamped)
    if raw == 0 or clamped.count:
        raise DpfmError(f"lr / batch = {lr / batch:g} is not representable in lr format {fmts.lr}",
                        f"keep lr / batch within [{fmts.lr.resolution / 2:g}, "
                        f"{fmts.lr.max_value:g}] or change the lr format")
    return raw


def _prune(T: np.ndarray, k: int | None, flags: np.ndarray, t_bits: int) -> tuple[np.ndarray, int]:
    """prune_K over the last axis (indexed by weight-id): keep the K entries highest by the order key (not
    demoted desc, |v| desc, id asc; section 3d), with the demoted flags `flags` (0/1, broadcast against `T`).

    The key `(not demoted * 2**(t_bits - 1) + |v|) * 2**32 + (2**32 - 1 - id)` is unique per entry and orders
    exactly like the order key, so one partition finds the K kept entries; zeros stay zero whether kept or
    not. Returns the pruned array and how many non-zero entries were dropped.
    """
    width = T.shape[-1]
    if k is None or k >= width:
        return T, 0
    up = ((T != 0) & (np.asarray(flags) == 0)).astype(np.int64) << (t_bits - 1)   # a zero is never ranked up
    key = ((np.abs(T) + up) << 32) + ((1 << 32) - 1 - np.arange(width))
    top = np.argpartition(-key, k - 1, axis=-1)[..., :k]
    keep = np.zeros(T.shape, dtype=bool)
    np.put_along_axis(keep, top, True, axis=-1)
    return np.where(keep, T, 0), int(np.count_nonzero(~keep & (T != 0)))


def _accumulate(G: np.ndarray, ids: np.ndarray, contrib: np.ndarray, g_fmt, sat: SatCounter) -> None:
    """`G[id] <- sat_g(G[id] + c)` for each (id, c) in order.

    Order only matters if some running sum leaves the g range, so the common case is one `np.add.at`;
    the running sums per id are checked first and the exact sequential loop runs only when one would clamp.
    """
    nz = contrib != 0
    ids, contrib = ids[nz], contrib[nz]
    if ids.size == 0:
        return
    order = np.argsort(ids, kind="stable")
    sid, sc = ids[order], contrib[order]
    running = np.cumsum(sc)
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    group_start = np.repeat(running[starts] - sc[starts], np.diff(np.r_[starts, sid.size]))
    partial = G[sid] + running - group_start
    if np.all((partial >= g_fmt.min_raw) & (partial <= g_fmt.max_raw)):
        np.add.at(G, ids, contrib)
        return
    for i, c in zip(ids.tolist(), contrib.tolist()):
        G[i] = saturate(int(G[i]) + c, g_fmt, sat)
