"""The one checkpoint format of every trainer (golden model and device): a `Checkpoint`, one .npz file.

The file holds the format tag, the metadata as JSON and the weight arrays. The metadata says what the
trainer is (network, K values, hyper-parameters, arithmetic and dither: `settings`) and where it stands
(epoch, shuffle generator state, the resident run's generator state, dither generator state, history, and
`extra`: e.g. the task name and backend); files written before the dither existed read as dither off,
before frozen layers as every layer training, before resident training with the seed's resident state. The
arrays hold one row per K replica (a device is one replica):

- `weights` `(R, P)`: float weights (dequantized in fixed point),
- `weights_raw` `(R, P)`: the raw fixed-point weights, present iff `fixed` is set,
- `velocity` `(R, P)`: the momentum buffer, present iff `momentum` is non-zero.

Every trainer in the same arithmetic restores the same state from it, so a checkpoint of a golden
fixed-point trainer in tangent mode "toper" continues on a device with the serial toper, and back, bit
for bit. The format tag still says "golden": the golden trainer defined it and the device adopted it.
"""

import json
import os
from dataclasses import dataclass

import numpy as np

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import atomic_path, read_npz
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.contract.net import NetSpec
from dpfm.golden import resident
from dpfm.golden.dither import check_state

FORMAT = "dpfm-golden-checkpoint/1"
_FIX = "resume from a file written by 'dpfm train --save'"


@dataclass
class Checkpoint:
    """A trainer's settings and state, as stored (see the module docstring for the arrays)."""

    spec: NetSpec
    ks: tuple
    lr: float
    batch: int
    momentum: float
    init: str
    seed: int
    fixed: HwFormats | None
    tangent: str
    dither: bool
    train_layers: tuple | None
    dither_state: int
    exact_last: bool
    shuffle_state: int
    epoch: int
    rng: dict
    history: dict
    extra: dict
    arrays: dict

    def settings(self) -> dict:
        """The constructor arguments of a trainer of this network, K, hyper-parameters and arithmetic (`k`
        is a single K when there is one, as the device backends take it)."""
        return {"spec": self.spec, "k": self.ks[0] if len(self.ks) == 1 else list(self.ks), "lr": self.lr,
                "batch": self.batch, "momentum": self.momentum, "init": self.init, "seed": self.seed,
                "fixed": self.fixed, "tangent": self.tangent, "dither": self.dither, "train_layers": self.train_layers,
                "exact_last": self.exact_last}

    def write(self, path) -> None:
        """One .npz file at `path`, written atomically."""
        meta = {
            "spec": {"sizes": list(self.spec.sizes), "activations": list(self.spec.activations),
                     "loss": self.spec.loss},
            "ks": list(self.ks), "lr": self.lr, "batch": self.batch, "momentum": self.momentum,
            "init": self.init, "seed": self.seed, "tangent": self.tangent,
            "fixed": None if self.fixed is None else str(self.fixed),
            "dither": self.dither, "dither_state": self.dither_state,
            "train_layers": None if self.train_layers is None else list(self.train_layers),
            "exact_last": self.exact_last, "shuffle_state": self.shuffle_state, "epoch": self.epoch, "rng": self.rng,
            "history": self.history,
            "extra": self.extra,
        }
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, format=np.array(FORMAT), meta=np.array(json.dumps(meta)), **self.arrays)

    @classmethod
    def read(cls, path) -> "Checkpoint":
        """The checkpoint in `path`, complete and consistent; anything else is a DpfmError naming the file."""
        meta, arrays = _read_npz(os.fspath(path))
        try:
            fixed = None if meta["fixed"] is None else HwFormats.parse(meta["fixed"])
            checkpoint = cls(
                spec=NetSpec(tuple(meta["spec"]["sizes"]), tuple(meta["spec"]["activations"]),
                             meta["spec"]["loss"]),
                ks=tuple(meta["ks"]), lr=float(meta["lr"]), batch=int(meta["batch"]),
                momentum=float(meta["momentum"]), init=str(meta["init"]), seed=int(meta["seed"]), fixed=fixed,
                tangent=str(meta["tangent"]), dither=bool(meta.get("dither", False)),
                train_layers=None if meta.get("train_layers") is None else tuple(int(l) for l in meta["train_layers"]),
                dither_state=check_state(meta.get("dither_state", 0)),
                exact_last=bool(meta.get("exact_last", False)),
                shuffle_state=resident.check_state(meta.get("shuffle_state", resident.seed_state(meta["seed"]))),
                epoch=int(meta["epoch"]), rng=dict(meta["rng"]),
                history={"train_loss": list(meta["history"]["train_loss"]),
                         "val_loss": list(meta["history"]["val_loss"])},
                extra=dict(meta["extra"]), arrays=arrays)
            checkpoint._check_arrays(path)
        except (KeyError, TypeError, ValueError, DpfmError) as exc:
            raise DpfmError(f"checkpoint {path} is incomplete or damaged ({exc})", _FIX) from None
        return checkpoint

    def _check_arrays(self, path) -> None:
        shape = (len(self.ks), self.spec.n_params)
        needed = ("weights",) + (("weights_raw",) if self.fixed is not None else ()) \
            + (("velocity",) if self.momentum else ())
        for name in needed:
            if self.arrays[name].shape != shape:
                raise DpfmError(f"checkpoint {path}: '{name}' has shape {self.arrays[name].shape}, expected {shape}",
                                "the file is damaged; save it again")


def _read_npz(path: str) -> tuple[dict, dict]:
    arrays = read_npz(path, "checkpoint", f"check the path; {_FIX}")
    if "format" not in arrays or str(arrays["format"]) != FORMAT:
        raise DpfmError(f"{path} is not a dpfm golden checkpoint", _FIX)
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (KeyError, json.JSONDecodeError) as exc:
        raise DpfmError(f"cannot read checkpoint {path}: its metadata is damaged ({exc!r})", _FIX) from None
    del arrays["format"]
    return meta, arrays
