"""`dpfm sweep`: train one task once per K, print a table of final losses and plot the loss curves.

On the golden backend all K train side by side as replicas of one trainer (same initial weights, same
shuffled batches, one vectorized computation); `--separate` trains them one after another instead, which
gives each K its own wall-clock time. Outputs (PNG, JSON) are written atomically after all training.
"""

import math
import os
import re
import time

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import check_writable, write_json
from dpfm.golden.mlp import GoldenTrainer
from dpfm.golden.tasks import accuracy
from dpfm.golden.trainer import k_label
from dpfm.host.options import exact_last_arg
from dpfm.host.plots import plot_loss_curves
from dpfm.host.commands.train import (BACKENDS, add_task_arguments, core_config, dither_arg, list_items,
                                      make_trainer, parse_fixed, parse_k, parse_seed, parse_train_layers,
                                      resolve_task, show_progress, tune_user_lr)

DEFAULT_KS = "2,4,8,16,32,64,full"


def register(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="train once per K and tabulate/plot the loss curves",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--ks", default=DEFAULT_KS, help=f"comma-separated K values (default {DEFAULT_KS})")
    p.add_argument("--backend", choices=tuple(BACKENDS), default="golden", help="where to train (default golden)")
    p.add_argument("--port", help="serial port of the board (--backend board)")
    p.add_argument("--separate", action="store_true",
                   help="train each K on its own (its own timing) instead of all K side by side")
    add_task_arguments(p)
    o = p.add_argument_group("outputs")
    o.add_argument("--out", metavar="DIR", help="directory for loss.png and sweep.json (default runs/sweep-<task>/)")
    o.add_argument("--json", metavar="PATH", help="write the JSON here instead of DIR/sweep.json")
    p.set_defaults(func=run)


def parse_ks(text: str) -> list:
    ks = [parse_k(t) for t in list_items(text, "ks")]
    if not ks:
        raise DpfmError(f"no K values in '{text}'", f"e.g. --ks {DEFAULT_KS}")
    if len(set(ks)) != len(ks):
        raise DpfmError(f"--ks repeats a value: '{text}'", "list every K once")
    return ks


def _cell(v, fmt):
    """A table cell: '-' for a missing value."""
    return "-" if v is None else format(v, fmt)


def _finite(v):
    return v if v is not None and math.isfinite(v) else None


def _column(history, r, n):
    """Replica `r`'s values from a history list (entries are floats for one replica, lists for several)."""
    return [None if v is None else (v[r] if n > 1 else v) for v in history]


def run(args) -> int:
    task, (X, Y, X_val, Y_val) = resolve_task(args)
    if task.epochs < 1:
        raise DpfmError("a sweep needs at least one epoch", "give --epochs 1 or more")
    ks = parse_ks(args.ks)
    seed = parse_seed(args.seed) if args.seed is not None else 0
    fixed = parse_fixed(args.fixed)
    out = args.out or os.path.join("runs", "sweep-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", task.name))
    png = os.path.join(out, "loss.png")
    json_path = args.json or os.path.join(out, "sweep.json")
    for path in (png, json_path):
        check_writable(path)
    if args.data is not None and args.lr is None:   # refuse bad data before tuning on it
        probe = GoldenTrainer(task.spec, ks[0], fixed=fixed, tangent="exact")
        probe.saturate = args.saturate
        probe.check_training_data(X, Y, X_val, Y_val)
    task = tune_user_lr(args, task, ks, (X, Y), fixed)
    golden = args.backend == "golden"
    # K values with their own rates train side by side in float (per-replica rates), one by one in fixed point
    joint = golden and not args.separate and (fixed is None or len({task.lr_for(k) for k in ks}) == 1)
    groups = [ks] if joint else [[k] for k in ks]
    train_layers = parse_train_layers(args.train_layers, task.spec)

    def make(group):
        trainer = make_trainer(args.backend, task, group if len(group) > 1 else group[0], seed, fixed,
                               args.tangent, args.port, dither=dither_arg(args), train_layers=train_layers,
                               exact_last=exact_last_arg(args, task))
        trainer.saturate = args.saturate
        return trainer

    if golden:  # cheap: build them all now, so any bad option fails before training
        trainers = [make(g) for g in groups]
    else:  # one device at a time, opened when its turn comes; check every K's configuration first
        for k in ks:
            core_config(args.backend, task.spec, k, momentum=task.momentum, fixed=fixed, tangent=args.tangent,
                        exact_last=exact_last_arg(args, task))
        trainers = [None] * len(groups)

    rows = []
    total = 0.0
    for group, trainer in zip(groups, trainers):
        with (trainer or make(group)) as trainer:
            start = time.perf_counter()
            trainer.train(X, Y, task.epochs, X_val, Y_val, progress=show_progress(args))
            seconds = time.perf_counter() - start
            preds = trainer.predict(X_val if X_val is not None else X) if task.classifier else None
            history = trainer.history
        total += seconds
        n = len(group)
        for r, k in enumerate(group):
            train = [_finite(v) for v in _column(history["train_loss"], r, n)]
            val = [_finite(v) for v in _column(history["val_loss"], r, n)]
            acc = None
            if preds is not None and train[-1] is not None:
                acc = accuracy(preds[r] if n > 1 else preds, Y_val if X_val is not None else Y)
            rows.append({"k": k_label(k) if k is None else k, "lr": task.lr_for(k),
                         "train_loss": train[-1] if train else None,
                         "val_loss": val[-1] if val else None, "accuracy": acc, "seconds": seconds,
                         "loss_curve": {"train": train, "val": val}})

    print(f"sweep {task.name}: {task.epochs} epochs per K, backend {args.backend}"
          + (f", fixed {fixed}" if fixed is not None else "")
          + (f"; all K trained side by side in one run of {total:.2f} s (* shared time)" if joint else ""))
    print(f"{'K':>6} {'lr':>8} {'train loss':>11} {'val loss':>10} {'accuracy':>9} {'seconds':>9}")
    for row in rows:
        status = "diverged" if row["train_loss"] is None else _cell(row["train_loss"], ".4f")
        secs = f"{row['seconds']:.2f}" + ("*" if joint else "")
        val, acc = _cell(row["val_loss"], ".4f"), _cell(row["accuracy"], ".4f")
        print(f"{row['k']!s:>6} {row['lr']:>8.4g} {status:>11} {val:>10} {acc:>9} {secs:>9}")

    curves = {f"K={row['k']}": (row["loss_curve"]["train"], row["loss_curve"]["val"] if X_val is not None else None)
              for row in rows}
    plot_loss_curves(curves, png, f"{task.name}: loss per K ({args.backend}"
                     + (", fixed point" if fixed is not None else "") + ")")
    write_json(json_path, {"task": task.name, "backend": args.backend, "epochs": task.epochs,
                           "fixed": None if fixed is None else str(fixed),
                           "tangent": args.tangent or ("exact" if golden else "toper"),
                           "joint": joint, "seconds": total, "results": rows, "png": png})
    print(f"wrote {png} and {json_path}")
    return 0
