"""The activation functions and their slopes, in float: one definition for the float trainer (golden/mlp.py)
and the activation unit's tables (golden/activation.py)."""

import numpy as np


def activate(name: str, z: np.ndarray):
    """`(f(z), f'(z))`; the slope is None for identity (its tangent passes unchanged)."""
    if name == "sigmoid":
        a = 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function without overflow
        return a, a * (1.0 - a)
    if name == "tanh":
        a = np.tanh(z)
        return a, 1.0 - a * a
    if name == "relu":
        return np.maximum(z, 0.0), (z > 0.0).astype(z.dtype)
    if name == "identity":
        return z, None
    raise ValueError(f"unknown activation {name!r}")
