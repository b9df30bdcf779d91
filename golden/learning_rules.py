"""The learning rules DPFM is compared with (source note 003): how a mini-batch's error becomes weight gradients.

Every rule here runs the same forward pass and the same output error `delta_L = dLoss/da_L * f'(z_L)`, and
differs only in the signal `e_l` a hidden layer l receives in place of `dLoss/da_l` (its delta is then
`e_l * f'(z_l)`, and its gradient `delta_l^T a_{l-1}` averaged over the batch):

- `backprop`: `e_l = delta_{l+1} W_{l+1}`, the exact gradient (what DPFM's K = full computes in forward mode);
- `fa`, feedback alignment (Lillicrap et al. 2016): `e_l = delta_{l+1} B_{l+1}`, B a fixed random matrix of
  W's shape, so no layer needs the transpose of another's weights;
- `dfa`, direct feedback alignment (Nokland 2016): `e_l = delta_L D_l`, the output error sent to every
  hidden layer through its own fixed random matrix, so the layers' updates need not wait for each other;
- `dni`, decoupled neural interfaces with synthetic gradients (Jaderberg et al. 2017): `e_l = a_l A_l + c_l`,
  a linear module per hidden layer that predicts `dLoss/da_l` from the layer's own output; the module is
  regressed on the gradient the layer above sends back (its true one at the top, a bootstrapped one
  below), and starts at zero as in the paper;
- `hsic`, the HSIC bottleneck (Ma et al. 2020): a hidden layer descends its own objective
  `HSIC(X, a_l) - beta HSIC(Y, a_l)` (Gaussian kernels, widths by the median heuristic of the batch), with
  no error from above; the output layer learns from the loss.

The random matrices are drawn from the rule's own generator, uniform in `+-1/sqrt(fan_in)` of the layer they
stand for. A rule is stateful (its matrices and modules), `init` builds that state for a network.
"""

import numpy as np

from dpfm.golden.activation_functions import activate
from dpfm.golden.contract.net import NetSpec
from dpfm.golden.rules import lookup
from dpfm.golden.trainer import loss_and_slope


def forward_pass(spec: NetSpec, layers, X):
    """`(acts, slopes)`: `acts[0] = X`, `acts[l + 1]` the outputs of layer l, `slopes[l]` its f'(z) (ones for
    identity)."""
    acts, slopes = [X], []
    for (W, b), act in zip(layers, spec.activations):
        a, s = activate(act, acts[-1] @ W.T + b)
        acts.append(a)
        slopes.append(np.ones_like(a) if s is None else s)
    return acts, slopes


class _Rule:
    """The shared pass: forward, output delta, hidden deltas from `_signal`, gradients."""

    name = ""

    def init(self, spec: NetSpec, layers, rng: np.random.Generator) -> None:
        self.spec = spec

    def gradients(self, layers, X, Y):
        """`([(dW, db), ...], per-sample losses (B,))`: the batch-mean gradients this rule would descend."""
        acts, slopes = forward_pass(self.spec, layers, X)
        losses, dlda = loss_and_slope(self.spec.loss, acts[-1], Y)
        L = len(layers)
        deltas = [None] * L
        deltas[-1] = dlda * slopes[-1]
        for l in range(L - 2, -1, -1):
            deltas[l] = self._signal(l, layers, acts, deltas, X, Y) * slopes[l]
        grads = [(d.T @ a / len(X), d.mean(axis=0)) for d, a in zip(deltas, acts[:-1])]
        return grads, losses

    def _signal(self, l, layers, acts, deltas, X, Y) -> np.ndarray:
        """What hidden layer l (outputs `acts[l + 1]`) uses as dLoss/d(its outputs), `(B, n_l)`."""
        raise NotImplementedError


def _uniform(rng, fan_in, shape):
    lim = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-lim, lim, shape)


class Backprop(_Rule):
    name = "backprop"

    def _signal(self, l, layers, acts, deltas, X, Y):
        return deltas[l + 1] @ layers[l + 1][0]


class FeedbackAlignment(_Rule):
    name = "fa"

    def init(self, spec, layers, rng):
        super().init(spec, layers, rng)
        #: B[l] stands for W[l] on the way back: same shape (n_out, n_in)
        self.feedback = [_uniform(rng, W.shape[1], W.shape) for W, _ in layers]

    def _signal(self, l, layers, acts, deltas, X, Y):
        return deltas[l + 1] @ self.feedback[l + 1]


class DirectFeedbackAlignment(_Rule):
    name = "dfa"

    def init(self, spec, layers, rng):
        super().init(spec, layers, rng)
        n_out = spec.n_outputs
        #: D[l] sends the output delta to hidden layer l: (n_out, n_l)
        self.feedback = [_uniform(rng, n_out, (n_out, W.shape[0])) for W, _ in layers[:-1]]

    def _signal(self, l, layers, acts, deltas, X, Y):
        return deltas[-1] @ self.feedback[l]


class SyntheticGradients(_Rule):
    """`module_lr`: the modules' own SGD rate on their mean squared error (a rule constant, not tuned)."""

    name = "dni"

    def __init__(self, module_lr: float = 0.1):
        self.module_lr = module_lr

    def init(self, spec, layers, rng):
        super().init(spec, layers, rng)
        self.modules = [(np.zeros((W.shape[0], W.shape[0])), np.zeros(W.shape[0])) for W, _ in layers[:-1]]

    def predict(self, l, a):
        A, c = self.modules[l]
        return a @ A + c

    def fit(self, l, a, target) -> None:
        """One SGD step of module l on `mean ||predict(a) - target||^2 / 2` over the batch."""
        A, c = self.modules[l]
        err = self.predict(l, a) - target
        A -= self.module_lr * a.T @ err / len(a)
        c -= self.module_lr * err.mean(axis=0)

    def _signal(self, l, layers, acts, deltas, X, Y):
        target = deltas[l + 1] @ layers[l + 1][0]   # what the layer above sends back
        synthetic = self.predict(l, acts[l + 1])
        self.fit(l, acts[l + 1], target)
        return synthetic


def median_width(Z: np.ndarray) -> float:
    """The Gaussian kernel width by the median heuristic: sigma^2 = median of the non-zero pairwise squared
    distances (1 when there are none)."""
    d = _sq_dists(Z)
    nz = d[np.triu_indices(len(Z), 1)]
    nz = nz[nz > 0]
    return float(np.median(nz)) if len(nz) else 1.0


def _sq_dists(Z):
    sq = np.sum(Z * Z, axis=1)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * Z @ Z.T, 0.0)


def gaussian_kernel(Z: np.ndarray, sigma2: float) -> np.ndarray:
    return np.exp(-_sq_dists(Z) / (2.0 * sigma2))


def centre(K: np.ndarray) -> np.ndarray:
    """H K H, H = I - 1 1^T / m."""
    return K - K.mean(axis=0, keepdims=True) - K.mean(axis=1, keepdims=True) + K.mean()


def hsic(Kx: np.ndarray, Kz: np.ndarray) -> float:
    """The biased empirical HSIC, tr(Kx H Kz H) / (m - 1)^2 (Gretton et al. 2005)."""
    m = len(Kx)
    return float(np.sum(centre(Kx) * Kz) / (m - 1) ** 2)


def hsic_gradient(Kx_centred: np.ndarray, Z: np.ndarray, sigma2: float) -> np.ndarray:
    """d HSIC(X, Z) / dZ for a Gaussian kernel on Z of fixed width sigma2, given H Kx H."""
    m = len(Z)
    Kz = gaussian_kernel(Z, sigma2)
    M = Kx_centred * Kz                  # sum_j M_ij (z_i - z_j) carries both (i, j) and (j, i) terms
    return -2.0 / sigma2 / (m - 1) ** 2 * (M.sum(axis=1)[:, None] * Z - M @ Z)


class HsicBottleneck(_Rule):
    """`beta`: the weight of the label term (a rule constant, not tuned)."""

    name = "hsic"

    def __init__(self, beta: float = 10.0):
        self.beta = beta

    def gradients(self, layers, X, Y):
        # the batch's centred input and label kernels, the same for every hidden layer
        self._kernels = None if len(X) < 2 else (centre(gaussian_kernel(X, median_width(X))),
                                                 centre(gaussian_kernel(Y, median_width(Y))))
        return super().gradients(layers, X, Y)

    def _signal(self, l, layers, acts, deltas, X, Y):
        Z = acts[l + 1]
        if self._kernels is None:
            return np.zeros_like(Z)
        kx, ky = self._kernels
        s2 = median_width(Z)
        return hsic_gradient(kx, Z, s2) - self.beta * hsic_gradient(ky, Z, s2)


#: The rules by name, as `dpfm compare` spells them.
RULES = {"backprop": Backprop, "fa": FeedbackAlignment, "dfa": DirectFeedbackAlignment,
         "dni": SyntheticGradients, "hsic": HsicBottleneck}


def make_rule(name: str) -> _Rule:
    """A fresh rule object by name; an unknown name is a DpfmError listing the known ones."""
    return lookup(RULES, name, "learning rule")()
