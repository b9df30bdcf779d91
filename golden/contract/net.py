"""Network description shared by every backend: layer sizes, activations, loss, and the weight-id layout.

The weight-id layout (docs/ARITHMETIC.md section 1) is what the tangent entries name, what the hardware's
weight memory is addressed by, and what the tie rule of the pruning order refers to, so it is defined once
here and nowhere else.
"""

from dataclasses import dataclass

import numpy as np

from dpfm.golden.contract.errors import DpfmError

ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")
LOSSES = ("mse", "bce")


@dataclass(frozen=True)
class NetSpec:
    """An MLP: `sizes[0]` inputs, then one dense layer per later entry, each with its activation."""

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str = "mse"

    def __post_init__(self):
        sizes = tuple(int(s) for s in self.sizes)
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "activations", tuple(self.activations))
        if len(sizes) < 2:
            raise DpfmError(f"a network needs an input size and at least one layer, got sizes {list(sizes)}",
                            "give at least two sizes, e.g. 4,5,1")
        if any(s < 1 for s in sizes):
            raise DpfmError(f"layer sizes must be positive, got {list(sizes)}", "use sizes >= 1")
        if len(self.activations) != len(sizes) - 1:
            raise DpfmError(f"{len(sizes) - 1} layers but {len(self.activations)} activations",
                            "give one activation per layer")
        for a in self.activations:
            if a not in ACTIVATIONS:
                raise DpfmError(f"unknown activation '{a}'", f"choose one of {', '.join(ACTIVATIONS)}")
        if self.loss not in LOSSES:
            raise DpfmError(f"unknown loss '{self.loss}'", f"choose one of {', '.join(LOSSES)}")
        if self.loss == "bce" and self.activations[-1] != "sigmoid":
            raise DpfmError("binary cross-entropy needs a sigmoid output layer",
                            "make the last activation sigmoid or use --loss mse")

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def n_inputs(self) -> int:
        return self.sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.sizes[-1]

    def layer_shape(self, layer: int) -> tuple[int, int]:
        """`(n_out, n_in)` of layer `layer`."""
        return self.sizes[layer + 1], self.sizes[layer]

    def layer_base(self, layer: int) -> int:
        """First weight-id of layer `layer`."""
        return sum(o * (i + 1) for o, i in (self.layer_shape(l) for l in range(layer)))

    @property
    def n_params(self) -> int:
        return self.layer_base(self.n_layers)

    def weight_ids(self, layer: int) -> np.ndarray:
        """`(n_out, n_in + 1)` array of ids: column `i < n_in` is `W[u, i]`, the last column is `b[u]`."""
        n_out, n_in = self.layer_shape(layer)
        return self.layer_base(layer) + np.arange(n_out * (n_in + 1)).reshape(n_out, n_in + 1)


def flatten(spec: NetSpec, layers) -> np.ndarray:
    """`[(W, b), ...]` -> the P-vector indexed by weight-id."""
    out = []
    for l, (W, b) in enumerate(layers):
        n_out, n_in = spec.layer_shape(l)
        W = np.asarray(W)
        b = np.asarray(b)
        if W.shape != (n_out, n_in) or b.shape != (n_out,):
            raise DpfmError(f"layer {l} has W{W.shape}, b{b.shape}; the network needs W{(n_out, n_in)}, "
                            f"b{(n_out,)}", "load weights saved for this network shape")
        out.append(np.concatenate([W, b[:, None]], axis=1).ravel())
    return np.concatenate(out)


def unflatten(spec: NetSpec, flat) -> list:
    """The P-vector indexed by weight-id -> `[(W, b), ...]` (copies)."""
    flat = np.asarray(flat)
    if flat.shape != (spec.n_params,):
        raise DpfmError(f"expected {spec.n_params} parameters, got shape {flat.shape}",
                        "load weights saved for this network shape")
    layers = []
    for l in range(spec.n_layers):
        n_out, n_in = spec.layer_shape(l)
        rows = flat[spec.layer_base(l):spec.layer_base(l + 1)].reshape(n_out, n_in + 1)
        layers.append((rows[:, :n_in].copy(), rows[:, n_in].copy()))
    return layers


def init_weights(spec: NetSpec, rng: np.random.Generator, scheme: str = "glorot") -> list:
    """Initial `[(W, b), ...]`.

    `glorot`: Keras' Dense default, W ~ U(-l, l) with l = sqrt(6 / (n_in + n_out)), b = 0.
    `kaiming`: PyTorch's Linear default, W and b ~ U(-1/sqrt(n_in), 1/sqrt(n_in)).
    """
    layers = []
    for l in range(spec.n_layers):
        n_out, n_in = spec.layer_shape(l)
        if scheme == "glorot":
            lim = np.sqrt(6.0 / (n_in + n_out))
            layers.append((rng.uniform(-lim, lim, (n_out, n_in)), np.zeros(n_out)))
        elif scheme == "kaiming":
            lim = 1.0 / np.sqrt(n_in)
            layers.append((rng.uniform(-lim, lim, (n_out, n_in)), rng.uniform(-lim, lim, n_out)))
        else:
            raise DpfmError(f"unknown weight init '{scheme}'", "use glorot or kaiming")
    return layers


def check_train_layers(spec: NetSpec, layers) -> tuple | None:
    """The layers that learn, as sorted 0-based indices, or None when every layer does (`layers` None or all
    of them). A frozen layer's weights get no tangent entries at all (docs/ARITHMETIC.md section 3e): no
    direct candidate is formed for them, so their K slots and the lanes' cycles go to the layers that learn."""
    if layers is None:
        return None
    try:
        out = sorted({int(l) for l in layers})
    except (TypeError, ValueError):
        out = None
    if not out or any(l < 0 or l >= spec.n_layers for l in out) or len(out) != len(list(layers)):
        raise DpfmError(f"layers to train {layers!r} are not distinct layers of a {spec.n_layers}-layer network",
                        f"give layer numbers 1..{spec.n_layers} once each (e.g. --train-layers {spec.n_layers}) "
                        "or 'last'")
    return None if len(out) == spec.n_layers else tuple(out)


def train_mask(spec: NetSpec, layers: tuple | None) -> int:
    """The core's train mask (regmap.REG_TRAIN_MASK): bit l set iff layer l learns."""
    return (1 << spec.n_layers) - 1 if layers is None else sum(1 << l for l in layers)


def learning_layers(spec: NetSpec, layers: tuple | None) -> list:
    """Per layer, whether it learns (all when `layers` is None)."""
    return [layers is None or l in layers for l in range(spec.n_layers)]
