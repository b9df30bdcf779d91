"""`dpfm predict`: a checkpoint's outputs on a data set, computed on any backend, written as .npy or .csv.

The data is a named task's split (by default the task the checkpoint was trained on, its validation split)
or the array X of your own .npz file. The checkpoint is restored on the backend exactly as `dpfm train
--resume` restores it, so a board or the co-simulation computes the outputs with the core's own arithmetic.
"""

import os

import numpy as np

from dpfm.golden.checkpoint import Checkpoint
from dpfm.golden.contract import wire
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import atomic_path, check_writable, read_npz, write_json
from dpfm.golden.tasks import TASKS, accuracy, check_array, get_task
from dpfm.golden.trainer import check_inputs, mean_loss
from dpfm.host.commands.train import BACKENDS, checkpoint_trainer

OUTPUT_KINDS = (".npy", ".csv")


def add_source_arguments(p) -> None:
    """The checkpoint, the data and the backend options shared by predict and verify."""
    p.add_argument("checkpoint", help="a checkpoint written by 'dpfm train --save'")
    g = p.add_argument_group("data")
    g.add_argument("--task", help=f"a named task's data ({', '.join(TASKS)}; default: the checkpoint's task)")
    g.add_argument("--split", choices=("val", "train"), default="val", help="the task's split (default val)")
    g.add_argument("--data", metavar="FILE.npz", help="your own inputs: array X (and targets Y, if present)")
    p.add_argument("--port", help="serial port of the board (--backend board), or the url `dpfm sim serve` prints")
    p.add_argument("--baud", type=int, help=f"UART rate of the board's bitstream (default {wire.BAUD})")


def read_source(args, checkpoint: Checkpoint):
    """`(X, Y or None, what, classifier)`: the inputs (and targets, when known) the options name, checked
    against the checkpoint's network; `classifier` when a named task reports accuracy."""
    spec = checkpoint.spec
    if args.data is not None:
        if args.task is not None:
            raise DpfmError("both --task and --data given", "use a named task's data or your own file, not both")
        fix = "give an .npz file with an array X of inputs (np.savez(path, X=...))"
        arrays = read_npz(args.data, "data file", fix)
        if "X" not in arrays:
            raise DpfmError(f"{args.data} has no array X (it has {', '.join(arrays) or 'none'})", fix)
        X = check_inputs(spec, check_array("X", arrays["X"], args.data))
        Y = arrays.get("Y")
        if Y is not None:
            Y = check_array("Y", Y, args.data)
            if Y.shape != (len(X), spec.n_outputs):
                raise DpfmError(f"{args.data}: Y has shape {Y.shape}, not ({len(X)}, {spec.n_outputs})",
                                "give one target row per input row, or leave Y out")
        return X, Y, args.data, False
    name = args.task or checkpoint.extra.get("task")
    if name not in TASKS:
        raise DpfmError(f"checkpoint {args.checkpoint} was trained on {name or 'unknown data'}, not a named task",
                        "give its inputs with --data FILE.npz")
    task = get_task(name)
    if task.spec != spec:
        raise DpfmError(f"task {name} is network {list(task.spec.sizes)}, the checkpoint {list(spec.sizes)}",
                        "give the task the checkpoint was trained on")
    X, Y, X_val, Y_val = task.load()
    if args.split == "val":
        if X_val is None:
            raise DpfmError(f"task {name} has no validation split", "use --split train")
        X, Y = X_val, Y_val
    return (np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64), f"{name} ({args.split})",
            task.classifier)


def read_single_k(path) -> Checkpoint:
    """The checkpoint at `path`, which must hold one trained K (not a sweep's side-by-side replicas)."""
    checkpoint = Checkpoint.read(path)
    if len(checkpoint.ks) != 1:
        raise DpfmError(f"checkpoint {path} holds {len(checkpoint.ks)} K replicas", "give a 'dpfm train --save' "
                        "checkpoint of one K")
    return checkpoint


def register(subparsers):
    p = subparsers.add_parser("predict", help="a checkpoint's outputs on data, on any backend (.npy or .csv)",
                              description=__doc__)
    add_source_arguments(p)
    p.add_argument("--backend", choices=tuple(BACKENDS), default="golden", help="where to compute (default golden)")
    p.add_argument("--out", required=True, metavar="FILE", help="the outputs, one row per sample: .npy or .csv")
    p.add_argument("--json", metavar="PATH", help="also write a summary (samples, loss, accuracy) as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    if os.path.splitext(args.out)[1] not in OUTPUT_KINDS:
        raise DpfmError(f"--out {args.out} is neither .npy nor .csv", "name the output file.npy or file.csv")
    for path in (args.out, args.json):
        if path is not None:
            check_writable(path)
    checkpoint = read_single_k(args.checkpoint)
    X, Y, what, classifier = read_source(args, checkpoint)
    with checkpoint_trainer(args.backend, args.checkpoint, checkpoint, args.port, args.baud) as trainer:
        out = np.asarray(trainer.predict(X), dtype=np.float64)
    write_outputs(args.out, out)
    summary = {"checkpoint": args.checkpoint, "backend": args.backend, "data": what, "samples": len(X),
               "outputs": args.out, "loss": None, "accuracy": None}
    if Y is not None:
        summary["loss"] = float(mean_loss(checkpoint.spec.loss, out, Y))
        summary["accuracy"] = accuracy(out, Y) if classifier else None
    scores = "".join(f", {name} {summary[name]:.4f}" for name in ("loss", "accuracy") if summary[name] is not None)
    print(f"{len(X)} samples of {what} on {args.backend}: outputs in {args.out}{scores}")
    if args.json:
        write_json(args.json, summary)
    return 0


def write_outputs(path, out: np.ndarray) -> None:
    """Outputs `(N, n_out)` to .npy, or to .csv with every float written exactly (repr precision)."""
    with atomic_path(path) as tmp:
        if path.endswith(".npy"):
            with open(tmp, "wb") as f:
                np.save(f, out)
        else:
            np.savetxt(tmp, out, delimiter=",", fmt="%.17g")
