"""The PyTorch counterpart of a `NetSpec`: the CPU backprop baseline every benchmark measures against."""

import numpy as np


def torch_mlp(spec, layers=None):
    """`torch.nn.Sequential` of Linear + activation per layer of `spec`; with `layers` (`[(W, b), ...]`)
    its weights are copied in, else PyTorch's own initialisation is kept. float32."""
    import torch
    activations = {"sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU,
                   "identity": torch.nn.Identity}
    mods = []
    for l, act in enumerate(spec.activations):
        n_out, n_in = spec.layer_shape(l)
        lin = torch.nn.Linear(n_in, n_out)
        if layers is not None:
            W, b = layers[l]
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.asarray(W, dtype=np.float32)))
                lin.bias.copy_(torch.from_numpy(np.asarray(b, dtype=np.float32)))
        mods += [lin, activations[act]()]
    return torch.nn.Sequential(*mods)
