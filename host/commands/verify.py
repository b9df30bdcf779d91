"""`dpfm verify`: run one checkpoint on several backends and show, bit for bit, where they part.

Inference: every backend predicts the same samples from the checkpoint, and the outputs are compared exactly
(in fixed point every backend returns the core's raw output words, dequantized the same way). Training
(`--steps N`): every backend then takes the same N mini-batches of those samples, in order, and after each
step the weights are read back and compared. The first difference is named: the sample and output of an
inference, or the step and the weight (layer, neuron, input) of training, with both values and their raw
words. The first backend is the reference (by default `golden`, the specification). The core exposes its
outputs and weights on the bus, not its hidden activations, so a hidden layer that parts shows up as the
first weight (training) or output (inference) it changes.

Exit status: 0 when every backend agrees, 1 when one differs, 2 for bad input.
"""

import contextlib

import numpy as np

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import check_writable, write_json
from dpfm.golden.contract.net import NetSpec, flatten
from dpfm.host.commands.predict import add_source_arguments, read_single_k, read_source
from dpfm.host.commands.train import BACKENDS, checkpoint_trainer, list_items

DEFAULT_BACKENDS = "golden,sim"


def register(subparsers):
    p = subparsers.add_parser("verify", help="run a checkpoint on several backends and show where they part",
                              description=__doc__)
    add_source_arguments(p)
    p.add_argument("--backends", default=DEFAULT_BACKENDS,
                   help=f"comma-separated, the first is the reference (default {DEFAULT_BACKENDS})")
    p.add_argument("--samples", type=int, default=100, help="samples to compare (default 100)")
    p.add_argument("--steps", type=int, default=0, help="training steps to compare after inference (default 0)")
    p.add_argument("--json", metavar="PATH", help="also write the comparison as JSON")
    p.set_defaults(func=run)


def _check(args) -> list:
    backends = list_items(args.backends, "backends")
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise DpfmError(f"unknown backend '{unknown[0]}'", f"choose from {', '.join(BACKENDS)}")
    if len(backends) < 2 or len(set(backends)) != len(backends):
        raise DpfmError(f"--backends {args.backends} names fewer than two different backends",
                        "compare at least two, e.g. --backends golden,sim")
    if args.samples < 1 or args.steps < 0:
        raise DpfmError("--samples must be at least 1 and --steps at least 0", "e.g. --samples 100 --steps 5")
    if args.json:
        check_writable(args.json)
    return backends


def weight_name(spec: NetSpec, wid: int) -> str:
    """'layer l, neuron u, input i' (or 'bias') of weight-id `wid`."""
    layer = max(l for l in range(spec.n_layers) if spec.layer_base(l) <= wid)
    _, n_in = spec.layer_shape(layer)
    unit, i = divmod(wid - spec.layer_base(layer), n_in + 1)
    return f"layer {layer}, neuron {unit}, " + ("bias" if i == n_in else f"input {i}")


def _value(v: float, fmt) -> str:
    return f"{v:.9g}" if fmt is None else f"{v:.9g} (raw {round(v * 2 ** fmt.frac)})"


def first_difference(ref: np.ndarray, got: np.ndarray):
    """The first index (row-major) where two equally shaped arrays differ, or None."""
    differ = np.flatnonzero(~((ref == got) | (np.isnan(ref) & np.isnan(got))))
    return None if differ.size == 0 else np.unravel_index(differ[0], ref.shape)


def run(args) -> int:
    backends = _check(args)
    checkpoint = read_single_k(args.checkpoint)
    spec, fixed = checkpoint.spec, checkpoint.fixed
    X, Y, what, _ = read_source(args, checkpoint)
    X = X[:args.samples]
    Y = None if Y is None else Y[:args.samples]
    if args.steps and Y is None:
        raise DpfmError("training steps need targets, and the data file has no Y", "add Y, or use --steps 0")
    ref = backends[0]
    result = {"checkpoint": args.checkpoint, "data": what, "samples": len(X), "steps": args.steps,
              "reference": ref, "backends": {}}
    with contextlib.ExitStack() as stack:
        trainers = {b: stack.enter_context(checkpoint_trainer(b, args.checkpoint, checkpoint, args.port, args.baud))
                    for b in backends}
        outputs = {b: np.asarray(t.predict(X), dtype=np.float64) for b, t in trainers.items()}
        for b in backends[1:]:
            where = first_difference(outputs[ref], outputs[b])
            entry = {"inference": "equal", "training": None}
            if where is not None:
                s, o = (int(i) for i in where)
                entry["inference"] = {"sample": s, "output": o, ref: outputs[ref][s, o], b: outputs[b][s, o]}
            result["backends"][b] = entry
        if args.steps:
            _compare_training(args, trainers, backends, spec, X, Y, result)
    lines = [f"{what}: {len(X)} samples, reference {ref}"]
    for b, entry in result["backends"].items():
        inf = entry["inference"]
        lines.append(f"  {b}: inference " + ("equal bit for bit" if inf == "equal" else
                     f"parts at sample {inf['sample']}, output {inf['output']}: {ref} "
                     f"{_value(inf[ref], fixed and fixed.x)}, {b} {_value(inf[b], fixed and fixed.x)}"))
        tr = entry["training"]
        if tr is not None:
            lines.append(f"  {b}: training " + (f"equal bit for bit over {args.steps} steps" if tr == "equal" else
                         f"parts at step {tr['step']}, weight {tr['weight']} ({tr['where']}): {ref} "
                         f"{_value(tr[ref], fixed and fixed.w)}, {b} {_value(tr[b], fixed and fixed.w)}"))
    print("\n".join(lines))
    if args.json:
        write_json(args.json, result)
    agree = all(e["inference"] == "equal" and e["training"] in (None, "equal") for e in result["backends"].values())
    return 0 if agree else 1


def _compare_training(args, trainers, backends, spec, X, Y, result) -> None:
    """`--steps` mini-batches of the checkpoint's batch size, taken in order (wrapping), on every backend;
    the first step and weight at which each backend parts from the reference."""
    ref = backends[0]
    batch = trainers[ref].batch
    open_ = set(backends[1:])
    for b in open_:
        result["backends"][b]["training"] = "equal"
    for step in range(1, args.steps + 1):
        idx = np.arange((step - 1) * batch, step * batch) % len(X)
        for t in trainers.values():
            t.train_batch(X[idx], Y[idx])
        ref_w = flatten(spec, trainers[ref].weights)
        for b in sorted(open_):
            got = flatten(spec, trainers[b].weights)
            where = first_difference(ref_w, got)
            if where is not None:
                wid = int(where[0])
                result["backends"][b]["training"] = {"step": step, "weight": wid, "where": weight_name(spec, wid),
                                                     ref: ref_w[wid], b: got[wid]}
                open_.discard(b)
        if not open_:
            return
