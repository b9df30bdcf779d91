"""`RuleTrainer`: the learning rules of `golden.learning_rules` behind the `golden.trainer.Trainer` protocol.

It shares everything but the gradient with the golden DPFM trainer: the data checks, the shuffle (the same
seed gives the same initial weights and batches), the loss, the epoch loop and the optional n-bit weight
storage (`golden.quant.WeightQuant`). So `dpfm compare` trains backprop, the feedback-alignment family,
synthetic gradients, the HSIC bottleneck and DPFM side by side under one protocol. Float only, one replica,
plain SGD; checkpoints are not written (these are study runs).
"""

import numpy as np

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.net import NetSpec, init_weights, learning_layers
from dpfm.golden.learning_rules import forward_pass, make_rule
from dpfm.golden.quant import WeightQuant
from dpfm.golden.trainer import Trainer


class RuleTrainer(Trainer):
    kind = "rule"

    def __init__(self, spec: NetSpec, rule: str, quant: WeightQuant | None = None, **settings):
        """`rule`: a name of `golden.learning_rules.RULES`; `settings`: lr, batch, init, seed and train_layers as
        for `Trainer` (a frozen layer is not updated)."""
        for name in ("fixed", "momentum", "k", "tangent", "dither"):
            if settings.get(name):
                raise DpfmError(f"the {rule} rule trains in float with plain SGD: '{name}' does not apply",
                                f"leave out {name}")
            settings.pop(name, None)
        super().__init__(spec, None, **settings)
        self.rule = make_rule(rule)
        self.quant = quant
        self._trains = learning_layers(spec, self.train_layers)
        self._layers = self._stored(init_weights(spec, self._rng, self.init))
        self.rule.init(spec, self._layers, np.random.default_rng([self.seed, 2]))

    @property
    def weights(self) -> list:
        return [(W.copy(), b.copy()) for W, b in self._layers]

    def set_weights(self, layers) -> None:
        self._layers = self._stored([(np.array(W, dtype=np.float64), np.array(b, dtype=np.float64))
                                     for W, b in layers])

    def _stored(self, layers) -> list:
        """`layers` as the weight memory holds them: on the quantizer's grid, if there is one."""
        return layers if self.quant is None else self.quant.layers(layers)

    def _checkpoint_arrays(self) -> dict:
        raise DpfmError(f"checkpoints of {self.rule.name} runs are not supported (they are study runs)",
                        "train with the DPFM trainer (dpfm train) to save a checkpoint")

    def _restore_arrays(self, arrays: dict) -> None:
        raise DpfmError(f"a {self.rule.name} trainer cannot be restored from a checkpoint",
                        "resume with dpfm train")

    def _step(self, X, Y, X_raw, Y_raw) -> np.ndarray:
        grads, losses = self.rule.gradients(self._layers, X, Y)
        grads = [g if learns else (0.0, 0.0) for g, learns in zip(grads, self._trains)]
        self._layers = self._stored([(W - self.lr * gW, b - self.lr * gb)
                                     for (W, b), (gW, gb) in zip(self._layers, grads)])
        return np.array([losses.mean()])

    def _forward(self, X, X_raw) -> np.ndarray:
        return forward_pass(self.spec, self._layers, X)[0][-1][None]
