"""Learning-rate (update) rules: how a replica's pruned mini-batch gradient becomes a weight update.

A pruned gradient is smaller and sparser than the full one, and which ids it holds changes from batch to
batch, so plain SGD at the full gradient's learning rate under-trains small K. The rules here act on the
batch gradient the trainer already has (`g`, `(R, P)`, one row per replica) with a per-replica base
learning rate `lr` `(R, 1)`; `step` returns the update to subtract. `Constant` is today's SGD.

Each rule's docstring says what the hardware's SGD unit would need. `RULES` names them for the study.
"""

import numpy as np

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.rules import lookup


class Constant:
    """w -= lr * g (default): the contract's SGD unit, unchanged."""

    name = "constant"
    needs_dropped = False

    def init(self, shape):
        return None

    def step(self, g, lr, state, dropped=None):
        return lr * g, state


class Density:
    """w -= lr * g / d, d = nnz(g) / P: the measured density of this batch's pruned gradient, so a gradient
    that reached only a fraction of the weights moves them as far as a full one would move all of them
    (d = 1 for the full gradient, where this is `Constant`).

    Hardware: a counter of G entries written this batch (one flag bit per G entry, cleared with G), and the
    factor P / count folded into lr / batch once per batch (a small divider or a reciprocal table).
    """

    name = "density"
    needs_dropped = False

    def init(self, shape):
        return None

    def step(self, g, lr, state, dropped=None):
        nnz = np.count_nonzero(g, axis=-1, keepdims=True)
        return lr * g * (g.shape[-1] / np.maximum(nnz, 1)), state


class Momentum:
    """v = beta v + (1 - beta) g; w -= lr * v (beta = 0.9): an average of the recent pruned gradients, so
    ids pruned from this batch still move by what earlier batches said about them. Same scale as `Constant`.

    Hardware: a second P-entry memory for v (weight-sized words) and a multiply-add per weight per batch in
    the SGD unit (beta = 1 - 2^-3.3 is not a shift; 0.875 = 1 - 2^-3 would be).
    """

    name = "momentum"
    needs_dropped = False

    def __init__(self, beta: float = 0.9):
        self.beta = float(beta)

    def init(self, shape):
        return np.zeros(shape)

    def step(self, g, lr, state, dropped=None):
        state *= self.beta
        state += (1.0 - self.beta) * g
        return lr * state, state


class ErrorFeedback:
    """Error feedback: what pruning dropped at the output nodes, in gradient units (each evicted entry times
    f'(z) and dL/da of its output, the contribution the sink would have added), is carried into the next
    batch's update: w -= lr * (g + e_prev); e = dropped. Nothing dropped there is lost, only delayed. (Only
    the output nodes' drops are gradient terms; an inner node's dropped entry has no single weight on L.)

    Hardware: the output neuron's toper eviction stream, scaled like its slots (the same multiplier), written
    into a second P-entry accumulator E; at the batch end the SGD unit reads G + E and moves E's next content
    in (a P-entry memory of G's width and an adder in the SGD path).
    """

    name = "ef"
    needs_dropped = True

    def init(self, shape):
        return np.zeros(shape)

    def step(self, g, lr, state, dropped=None):
        update = lr * (g + state)
        state[:] = dropped
        return update, state


RULES = {rule.name: rule for rule in (Constant(), Density(), Momentum(), ErrorFeedback())}
DEFAULT = "constant"


def get_rule(rule):
    """An lr rule from its name (or a rule object, returned as is)."""
    return lookup(RULES, rule, "learning-rate rule")


def check_step(rule, lr: float, n_params: int) -> None:
    """DpfmError unless `rule` with base rate `lr` moves a probe gradient by a finite step against it."""
    g = np.full((1, n_params), 1.0)
    state = rule.init(g.shape)
    with np.errstate(all="ignore"):
        step, _ = rule.step(g, np.full((1, 1), float(lr)), state, dropped=np.zeros_like(g))
    if not (np.all(np.isfinite(step)) and np.sum(step * g) > 0):
        raise DpfmError(f"learning-rate rule '{rule.name}' with lr {lr!r} gives a non-finite or non-positive step",
                        "use finite positive learning rates")
