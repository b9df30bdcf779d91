"""`dpfm online`: learn from a stream, one sample at a time, predicting each sample before learning from it.

Forward mode needs no stored graph, so a network can learn from every sample as it arrives (source note
000's third hypothesis). Each sample is a mini-batch of one: the backend computes its outputs with the
current weights (the prequential loss and, for a classifier, whether it was right), then takes one SGD step
on it. The stream is the task's training split in its stored order, or CSV rows (inputs then targets, one
sample per line) from a file or stdin (`--stream -`). After the stream the task's validation split, when it
has one, shows where the stream left the weights. On a device the core's cycle counter gives the
latency of each update: the cycles of the training operation, from the sample in the buffer to the updated
weights; it is reported in cycles and in microseconds at `--clock-mhz`.

A malformed stream row stops the run with its line number, and Ctrl-C ends a live stream; either way the
result so far is reported and `--save` writes a checkpoint of every sample learned before it.
"""

import contextlib
import sys
import time

import numpy as np

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import write_json
from dpfm.golden.tasks import accuracy
from dpfm.golden.trainer import k_label
from dpfm.host.commands import train as train_cmd

#: The iCEBreaker's run clock: the default for turning cycles into microseconds.
DEFAULT_CLOCK_MHZ = 12.0


def register(subparsers):
    p = subparsers.add_parser("online", help="learn from a stream one sample at a time (predict, then learn)",
                              description=__doc__)
    p.add_argument("--k", default=None, help=f"tangent entries kept per value (default {train_cmd.DEFAULT_K})")
    p.add_argument("--backend", choices=tuple(train_cmd.BACKENDS), default="golden", help="where to learn")
    p.add_argument("--port", help="serial port of the board (--backend board)")
    p.add_argument("--baud", type=int, help="UART rate of the board's bitstream (--backend board)")
    train_cmd.add_task_arguments(p)
    s = p.add_argument_group("stream")
    s.add_argument("--stream", metavar="FILE", help="CSV rows of inputs then targets, '-' for stdin "
                                                    "(default: the task's training split, in order)")
    s.add_argument("--samples", type=int, help="stop after this many samples")
    s.add_argument("--clock-mhz", type=float, default=DEFAULT_CLOCK_MHZ,
                   help=f"clock for the latency in microseconds (default {DEFAULT_CLOCK_MHZ:g}, the iCEBreaker's)")
    o = p.add_argument_group("outputs")
    o.add_argument("--json", metavar="PATH", help="write the result as JSON (with the per-sample losses)")
    o.add_argument("--save", metavar="PATH", help="save a checkpoint at the end (or at a bad row)")
    o.add_argument("--resume", metavar="PATH", help="continue from a checkpoint")
    p.add_argument("--init", metavar="MODEL.onnx", help="start from the weights of an ONNX MLP of the task's network "
                                                       "(e.g. pretrained on the CPU and written by 'dpfm export')")
    p.set_defaults(func=run)


def parse_row(line: str, n_in: int, n_out: int, lineno: int, source: str):
    """`(x, y)` from one CSV row of n_in + n_out finite numbers, or a DpfmError naming the line."""
    try:
        values = np.array([float(v) for v in line.split(",")])
    except ValueError:
        values = None
    if values is None or values.shape != (n_in + n_out,) or not np.all(np.isfinite(values)):
        raise DpfmError(f"{source} line {lineno} is not {n_in} inputs and {n_out} targets as finite numbers: "
                        f"'{line.strip()[:60]}'", "write one sample per line, comma-separated")
    return values[:n_in], values[n_in:]


def open_stream(args):
    """The stream's open file (stdin for '-'), or None for the task's training split; opened before any work."""
    if args.stream is None or args.stream == "-":
        return None if args.stream is None else sys.stdin
    try:
        return open(args.stream)
    except OSError as exc:
        raise DpfmError(f"cannot read the stream {args.stream}: {exc.strerror or exc}",
                        "give a readable CSV file") from None


def stream_rows(f, spec, X, Y):
    """The samples `(x, y)` of the stream `f` (read as they are needed, stdin as it arrives), or of `X, Y`."""
    if f is None:
        yield from zip(X, Y)
        return
    source = "stdin" if f is sys.stdin else f.name
    with contextlib.nullcontext(f) if f is sys.stdin else f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                yield parse_row(line, spec.n_inputs, spec.n_outputs, lineno, source)


def run(args) -> int:
    for flag in ("batch", "epochs"):
        if getattr(args, flag) is not None:
            raise DpfmError(f"online learning takes one step per sample of the stream: --{flag} does not apply",
                            f"drop --{flag} (--samples limits the stream)")
    if args.samples is not None and args.samples < 1:
        raise DpfmError(f"--samples must be at least 1, got {args.samples}", "e.g. --samples 1000")
    if not args.clock_mhz > 0:
        raise DpfmError(f"--clock-mhz must be positive, got {args.clock_mhz}", "e.g. --clock-mhz 12")
    stream = open_stream(args)
    task, (X, Y, X_val, Y_val), trainer, _ = train_cmd._prepare(args)
    rows = stream_rows(stream, task.spec, X, Y)
    losses, correct, cycles = [], [], []
    stopped = None
    start = time.perf_counter()
    with trainer:
        trainer.extra.update(task=task.name, backend=args.backend)
        counted = hasattr(trainer, "last_op_cycles")   # a device; the golden model has no cycles
        if trainer.fixed is not None:   # a rate the lr format cannot hold at batch 1 is refused before any sample
            from dpfm.golden.fixed_mlp import lr_raw
            lr_raw(trainer.fixed, trainer.lr, 1)
        try:
            for x, y in rows:
                if args.samples is not None and len(losses) >= args.samples:
                    break
                xb, yb = x[None], y[None]
                right = accuracy(trainer.predict(xb), yb) if task.classifier else None
                losses.append(float(trainer.train_batch(xb, yb)))
                if right is not None:       # counted once the sample was learned, as its loss is
                    correct.append(right)
                if counted:
                    cycles.append(trainer.last_op_cycles())
        except (DpfmError, KeyboardInterrupt) as exc:   # a bad row, or Ctrl-C ending a live stream
            stopped = exc
        seconds = time.perf_counter() - start
        if args.save is not None:
            trainer.save(args.save)
        after = {}
        if X_val is not None and stopped is None:   # where the stream left the weights, on held-out data
            after["val_loss"] = float(trainer.evaluate(X_val, Y_val))
            if task.classifier:
                after["val_accuracy"] = float(accuracy(trainer.predict(X_val), Y_val))
    if not losses and stopped is None:
        raise DpfmError("the stream has no samples", "give at least one row")
    result = {"task": task.name, "k": k_label(trainer.ks[0]), "backend": args.backend, "lr": trainer.lr,
              "samples": len(losses), "seconds": seconds, "samples_per_s": len(losses) / max(seconds, 1e-9),
              "prequential_loss": float(np.mean(losses)) if losses else None,
              "prequential_accuracy": float(np.mean(correct)) if correct else None, **after, "losses": losses}
    if cycles:
        result["update_cycles"] = {"median": float(np.median(cycles)), "max": int(max(cycles)),
                                   "clock_mhz": args.clock_mhz,
                                   "median_us": float(np.median(cycles)) / args.clock_mhz}
    print(format_result(result))
    if args.json is not None:
        write_json(args.json, result)
    if stopped is not None:
        raise stopped
    return 0


def format_result(r: dict) -> str:
    line = (f"online {r['task']} K={r['k']} on {r['backend']}: {r['samples']} samples, "
            f"{r['samples_per_s']:.0f} samples/s")
    if r["prequential_loss"] is not None:
        line += f", prequential loss {r['prequential_loss']:.4f}"
    if r["prequential_accuracy"] is not None:
        line += f", accuracy {r['prequential_accuracy']:.4f}"
    if "val_loss" in r:
        line += f"\n  then on the validation split: loss {r['val_loss']:.4f}"
        if "val_accuracy" in r:
            line += f", accuracy {r['val_accuracy']:.4f}"
    if "update_cycles" in r:
        c = r["update_cycles"]
        line += (f"\n  update latency {c['median']:.0f} cycles median ({c['median_us']:.1f} us at "
                 f"{c['clock_mhz']:g} MHz), {c['max']} max")
    return line
