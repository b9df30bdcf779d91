"""`dpfm train`: train one network with one K on a backend (golden model, RTL co-simulation or a board).

Everything the user typed is checked before the first epoch (task and data, K, formats, backend, output
paths), so a run with a bad option writes nothing. Outputs are written atomically: the JSON after training
succeeded, the --save checkpoint after every epoch whose loss is finite (training stops at the first that
is not), so an interrupted run resumes from its last epoch.

Backends are factories `make(spec, k, *, lr, batch, momentum, init, seed, fixed, tangent, port, baud)`
returning a `golden.trainer.Trainer`; the command uses that protocol only, so every backend trains, reports,
checkpoints (after every epoch, with --save) and resumes the same way, from the same checkpoint format.
`sim` and `board` are `host.device.open_device` on a `hw.config.CoreConfig`; adding a backend is one entry
in BACKENDS.
"""

import sys
import time

import numpy as np

from dpfm.golden.checkpoint import Checkpoint
from dpfm.golden.contract import regmap, wire
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import check_writable, write_json
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.contract.net import LOSSES, check_train_layers
from dpfm.golden.contract.organisation import Organisation
from dpfm.golden.mlp import GoldenTrainer
from dpfm.golden.tasks import TASKS, accuracy, get_task, user_task, with_overrides
from dpfm.golden.trainer import k_label
from dpfm.host.options import DEFAULT_K, TANGENT_METAVAR, exact_last_arg, tangent_arg


# ----------------------------------------------------------------------------------------------------------
# argument parsing shared with `dpfm sweep`
# ----------------------------------------------------------------------------------------------------------
#: The largest seed (32 bits).
MAX_SEED = 2**32 - 1


def parse_k(text: str):
    """'full' -> None (exact forward mode); a positive integer -> int."""
    text = str(text).strip().lower()
    if text == "full":
        return None
    try:
        k = int(text)
    except ValueError:
        k = 0
    if k < 1:
        raise DpfmError(f"K must be a positive integer or 'full', got '{text}'", "use e.g. --k 8 or --k full")
    return k


def parse_fixed(text):
    """None (float), 'default' or HwFormats.parse text."""
    if text is None:
        return None
    return HwFormats() if text.strip() == "default" else HwFormats.parse(text)


def add_task_arguments(p) -> None:
    """Task, data, hyper-parameter and arithmetic options shared by train and sweep."""
    g = p.add_argument_group("task")
    g.add_argument("--task", help=f"named task: {', '.join(TASKS)} (default seed-sum)")
    g.add_argument("--data", metavar="FILE.npz", help="train on your own data: arrays X, Y[, X_val, Y_val]")
    g.add_argument("--sizes", help="with --data: layer sizes, e.g. 4,5,1")
    g.add_argument("--activations", help="with --data: one per layer, e.g. sigmoid,identity")
    g.add_argument("--loss", choices=LOSSES, help="with --data: loss (default mse)")
    g.add_argument("--classifier", action="store_true", help="with --data: report accuracy")
    h = p.add_argument_group("training (defaults come from the task)")
    h.add_argument("--epochs", type=str, help="number of epochs")
    h.add_argument("--lr", type=str, help="SGD learning rate")
    h.add_argument("--batch", type=str, help="mini-batch size")
    h.add_argument("--momentum", type=str, help="SGD momentum (float backend only)")
    h.add_argument("--seed", type=str, help="seed for initial weights and shuffling (default 0)")
    h.add_argument("--train-layers", metavar="LAYERS",
                   help="the layers that learn, numbered from 1 (e.g. 2,3), 'last' or 'all' (default all; with "
                        "--resume the checkpoint's): frozen layers get no tangent slots (docs/ARITHMETIC.md 3e)")
    a = p.add_argument_group("arithmetic")
    a.add_argument("--fixed", metavar="FORMATS", help="fixed point: 'default' or e.g. x=s16.12,t=s16.12,...")
    a.add_argument("--saturate", action="store_true",
                   help="fixed point: clamp data the x format cannot hold (default: refuse it before training)")
    a.add_argument("--tangent", type=tangent_arg, default=None, metavar=TANGENT_METAVAR,
                   help="fixed-point tangent model: exact top-K, the serial hardware toper, or the parallel one "
                        "with K+1 (or S) source topers (default: exact on the golden backend, toper on sim/board)")
    a.add_argument("--dither", choices=("on", "off"), default=None,
                   help="the toper's random demotion (docs/ARITHMETIC.md 3d), on every backend (default on)")
    a.add_argument("--exact-last", choices=("on", "off"), default=None,
                   help="the output layer's gradient exact, the K slots for the layers below (docs/ARITHMETIC.md "
                        "3f); a core must be built with it (default: the task's)")
    a.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it is shown only when stderr is a terminal anyway)")


def _number(text, kind, name, minimum=None):
    if text is None:
        return None
    try:
        v = kind(text)
    except ValueError:
        raise DpfmError(f"--{name} must be {'an integer' if kind is int else 'a number'}, got '{text}'",
                        f"e.g. --{name} {'10' if kind is int else '0.01'}") from None
    if minimum is not None and ((kind is float and not np.isfinite(v)) or v < minimum):
        raise DpfmError(f"--{name} must be >= {minimum}, got '{text}'", f"give --{name} >= {minimum}")
    return v


def list_items(text: str | None, what: str) -> list[str]:
    """The stripped items of a comma-separated option (none for an empty text); an empty item between
    others ('2,,4') is refused rather than dropped."""
    items = [t.strip() for t in (text or "").split(",")]
    if not any(items):
        return []
    if not all(items):
        raise DpfmError(f"--{what} has an empty item: '{text}'", "separate the values by single commas")
    return items


def parse_seed(text, name="seed") -> int:
    """A seed of 0 .. MAX_SEED (the checkpoint stores it; NumPy takes no negative seed)."""
    seed = _number(text, int, name, 0)
    if seed > MAX_SEED:
        raise DpfmError(f"--{name} must be at most {MAX_SEED}, got '{text}'", f"use 32-bit seeds, e.g. --{name} 1")
    return seed


def show_progress(args) -> bool:
    return not args.no_progress and sys.stderr.isatty()


def resolve_task(args):
    """The task with the command line's overrides applied; data is loaded and validated here."""
    if args.data is not None:
        if args.task is not None:
            raise DpfmError("both --task and --data given", "use a named task or your own data, not both")
        if args.sizes is None:
            raise DpfmError("--data needs the network shape", "add --sizes, e.g. --sizes 4,5,1")
        task = user_task(args.data, args.sizes, args.activations, args.loss or "mse", args.classifier)
    else:
        for flag in ("sizes", "activations", "loss"):
            if getattr(args, flag) is not None:
                raise DpfmError(f"--{flag} only applies to --data (a named task has its own)",
                                f"drop --{flag} or add --data FILE.npz")
        if args.classifier:
            raise DpfmError("--classifier only applies to --data (a named task says whether it classifies)",
                            "drop --classifier or add --data FILE.npz")
        task = get_task("seed-sum" if args.task is None else args.task)
    task = with_overrides(task, lr=_number(args.lr, float, "lr", 0.0), batch=_number(args.batch, int, "batch", 1),
                          epochs=_number(args.epochs, int, "epochs", 0),
                          momentum=_number(args.momentum, float, "momentum", 0.0))
    if task.lr <= 0:
        raise DpfmError(f"--lr must be positive, got {task.lr}", "e.g. --lr 0.01")
    if task.momentum >= 1:
        raise DpfmError(f"--momentum must be below 1, got {task.momentum}", "e.g. --momentum 0.5")
    return task, task.load()


# ----------------------------------------------------------------------------------------------------------
# backends
# ----------------------------------------------------------------------------------------------------------
def golden_backend(spec, k, *, lr, batch, momentum, init, seed, fixed, tangent, dither, train_layers=None,
                   exact_last=False, port=None, baud=None, attach=False, resident_samples=0):
    if port is not None or baud is not None or attach:
        raise DpfmError("--port, --baud and --attach only apply to --backend board", "drop them")
    if resident_samples:
        raise DpfmError("--resident-samples sizes a co-simulated core", "drop it, or use --backend sim or sim-bus")
    return GoldenTrainer(spec, k, lr=lr, batch=batch, momentum=momentum, init=init, seed=seed, fixed=fixed,
                         tangent=tangent or "exact", dither=dither, train_layers=train_layers, exact_last=exact_last)


def device_backend(kind):
    """A factory for the co-simulation / board backends of `host.device` (imported only when used): a
    training core configured for the network, K and formats, which computes the hardware toper tangent."""
    def make(spec, k, *, lr, batch, momentum, init, seed, fixed, tangent, dither, train_layers=None,
             exact_last=False, port=None, baud=None, attach=False, resident_samples=0):
        from dpfm.host.device import open_device
        if attach and kind != "board":
            raise DpfmError(f"--attach takes over a core that outlived its host; --backend {kind} starts a new one",
                            "use --backend board (a board, or a co-simulation from 'dpfm sim serve' with --port "
                            "socket://...)")
        if resident_samples and kind == "board":
            raise DpfmError("--resident-samples sizes a co-simulated core; a board's bitstream has its own",
                            "drop it (build the bitstream with 'dpfm build --resident-samples N')")
        config = core_config(kind, spec, k, momentum=momentum, fixed=fixed, tangent=tangent, exact_last=exact_last,
                             resident=resident_samples)
        link = {} if baud is None else {"baud": baud}
        return open_device(kind, config, port=port, lr=lr, batch=batch, init=init, seed=seed, dither=dither,
                           train_layers=train_layers, attach=attach, **link)
    return make


def core_config(kind, spec, k, *, momentum, fixed, tangent, exact_last=False, resident=0):
    """The training-core configuration for a device backend; raises DpfmError for what the core cannot do
    (so a sweep can check every K before it opens a device)."""
    from dpfm.hw.config import CoreConfig
    if k is None:
        raise DpfmError("the training core computes a top-K tangent, not the exact one (K=full)",
                        f"pass --k 1..255 with --backend {kind}")
    if momentum:
        raise DpfmError("the training core has no momentum", f"use --momentum 0 with --backend {kind}")
    toper = Organisation.from_tangent(tangent or "toper")
    if toper is None:
        raise DpfmError(f"the training core computes a hardware toper tangent, not the {tangent} one",
                        f"drop --tangent (serial toper) or use --tangent toper-parallel with --backend {kind}")
    return CoreConfig(spec, k, fixed or HwFormats(), toper=toper, exact_last=exact_last, resident=resident)


BACKENDS = {"golden": golden_backend, "sim": device_backend("sim"), "sim-bus": device_backend("sim-bus"),
            "board": device_backend("board")}


def dither_arg(args) -> bool:
    """--dither: on unless 'off' is given."""
    return args.dither != "off"


def task_lr(task, k):
    """The task's rate for K (`Task.lr_for`); for a list of K, one per replica, or one float if they agree."""
    if isinstance(k, (list, tuple)):
        lrs = [task.lr_for(x) for x in k]
        return lrs[0] if len(set(lrs)) == 1 else lrs
    return task.lr_for(k)


def make_trainer(backend, task, k, seed, fixed, tangent, port=None, baud=None, dither=True, train_layers=None,
                 attach=False, exact_last=None, resident_samples=0):
    """A trainer for `task` on `backend`; `tangent=None` means the backend's natural mode, `exact_last=None`
    the task's; `resident_samples` sizes a co-simulated core's data set memory."""
    return BACKENDS[backend](task.spec, k, lr=task_lr(task, k), batch=task.batch, momentum=task.momentum,
                             init=task.init, seed=seed, fixed=fixed, tangent=tangent, dither=dither,
                             train_layers=train_layers,
                             exact_last=task.exact_last if exact_last is None else exact_last,
                             port=port, baud=baud, attach=attach, resident_samples=resident_samples)


def parse_train_layers(text: str | None, spec):
    """--train-layers: 1-based layer numbers, 'last' or 'all' -> 0-based indices, None for every layer."""
    if text is None or text.strip().lower() == "all":
        return None
    if text.strip().lower() == "last":
        return (spec.n_layers - 1,)
    items = list_items(text, "train-layers")
    if not items or not all(item.isdigit() and 1 <= int(item) <= spec.n_layers for item in items) \
            or len(set(map(int, items))) != len(items):
        raise DpfmError(f"--train-layers '{text}' is not a list of distinct layer numbers 1..{spec.n_layers}, "
                        "'last' or 'all'", f"e.g. --train-layers {spec.n_layers} or --train-layers last")
    return check_train_layers(spec, [int(item) - 1 for item in items])


# ----------------------------------------------------------------------------------------------------------
# dpfm train
# ----------------------------------------------------------------------------------------------------------
def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a network (golden model, RTL co-simulation or a board)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--k", default=None, help="tangent entries kept per value: a positive integer or 'full' "
                                             f"(default {DEFAULT_K})")
    p.add_argument("--backend", choices=tuple(BACKENDS), default="golden", help="where to train (default golden)")
    p.add_argument("--port", help="serial port of the board (--backend board)")
    p.add_argument("--baud", type=int, help=f"UART rate of the board's bitstream (--backend board; default {wire.BAUD}, "
                                            "`dpfm build` prints the rate of each board)")
    p.add_argument("--attach", action="store_true",
                   help="take over the core as an earlier host session left it (weights and dither state stay on "
                        "it); with --resume the checkpoint gives the epoch, shuffle state and history (--backend board)")
    add_task_arguments(p)
    o = p.add_argument_group("outputs")
    o.add_argument("--json", metavar="PATH", help="write the result as JSON")
    o.add_argument("--save", metavar="PATH", help="save a checkpoint (.npz), rewritten after every epoch")
    o.add_argument("--resume", metavar="PATH", help="continue from a checkpoint written by --save; --epochs then "
                                                    "counts epochs to add (default: the rest of the task's schedule)")
    r = p.add_argument_group("resident training (docs/ARITHMETIC.md 7)")
    r.add_argument("--resident", dest="resident_run", nargs="?", const=str(regmap.LOSS_HISTORY), metavar="EPOCHS",
                   help="upload the training set once; the core shuffles and trains EPOCHS epochs per run by "
                        f"itself (default {regmap.LOSS_HISTORY}); validation and --save come after each run")
    r.add_argument("--resident-samples", type=int, default=0, metavar="N",
                   help="--backend sim/sim-bus: samples the co-simulated core's data set memory holds "
                        "(default: the training set's)")
    p.add_argument("--init", metavar="MODEL.onnx", help="start from the weights of an ONNX MLP of the task's network "
                                                       "(e.g. one pretrained elsewhere, or 'dpfm export')")
    p.set_defaults(func=run)


def resident_run_arg(args) -> int:
    """--resident [EPOCHS]: the epochs per resident run (0 without the option)."""
    text = getattr(args, "resident_run", None)
    if text is None:
        return 0
    value = _number(text, int, "resident", minimum=1)
    if value > regmap.LOSS_HISTORY:
        raise DpfmError(f"--resident runs at most {regmap.LOSS_HISTORY} epochs without the host (the loss memory's "
                        f"depth), got {value}", f"give --resident 1 .. {regmap.LOSS_HISTORY}; longer training runs "
                        "several runs by itself")
    return value


def _read_checkpoint(args) -> Checkpoint:
    """The checkpoint named by --resume; a named task it was trained on becomes the default --task."""
    checkpoint = Checkpoint.read(args.resume)
    stored_task = checkpoint.extra.get("task")
    if args.task is None and args.data is None:
        if stored_task not in TASKS:
            raise DpfmError(f"checkpoint {args.resume} was trained on {stored_task or 'unknown data'}",
                            "give the same --data/--sizes options again")
        args.task = stored_task
    return checkpoint


def _check_resume(args, task, checkpoint) -> None:
    """Refuse options that contradict the checkpoint."""
    if checkpoint.spec != task.spec:
        raise DpfmError(f"checkpoint {args.resume} is for network {checkpoint.spec.sizes} "
                        f"{checkpoint.spec.activations} {checkpoint.spec.loss}, not the task's {task.spec.sizes}",
                        "resume with the task or data it was trained on")
    given = {"k": None if args.k is None else (parse_k(args.k),),
             "lr": None if args.lr is None else task.lr, "batch": None if args.batch is None else task.batch,
             "momentum": None if args.momentum is None else task.momentum,
             "seed": None if args.seed is None else parse_seed(args.seed),
             "fixed": None if args.fixed is None else parse_fixed(args.fixed),
             "tangent": args.tangent, "dither": None if args.dither is None else dither_arg(args),
             "exact-last": None if args.exact_last is None else args.exact_last == "on"}
    stored = {"k": checkpoint.ks, "lr": checkpoint.lr, "batch": checkpoint.batch, "momentum": checkpoint.momentum,
              "seed": checkpoint.seed, "fixed": checkpoint.fixed, "tangent": checkpoint.tangent,
              "dither": checkpoint.dither, "exact-last": checkpoint.exact_last}
    for name, value in given.items():
        if value is not None and value != stored[name]:
            shown = ",".join(k_label(k) for k in stored[name]) if name == "k" else stored[name]
            shown = ("on" if shown else "off") if name in ("dither", "exact-last") else shown
            raise DpfmError(f"--{name} contradicts checkpoint {args.resume} ({name} = {shown})",
                            f"omit --{name} when resuming")


def _prepare(args):
    """Task, data and a ready trainer (fresh or resumed), plus the number of epochs to run; every check on
    the command line happens here, before any training."""
    checkpoint = _read_checkpoint(args) if args.resume is not None else None
    task, data = resolve_task(args)
    for path in (args.json, args.save):
        if path is not None:
            check_writable(path)
    init = getattr(args, "init", None)
    if init is not None and checkpoint is not None:
        raise DpfmError("--init and --resume both give the starting weights", "use one of them")
    if init is not None and getattr(args, "attach", False):
        raise DpfmError("--init and --attach both give the starting weights (--attach keeps the core's)",
                        "use one of them")
    if checkpoint is None:
        k = parse_k(args.k) if args.k is not None else DEFAULT_K
        seed = parse_seed(args.seed) if args.seed is not None else 0
        start = None
        if init is not None:
            from dpfm.host.onnx_mlp import read_mlp
            start = read_mlp(init, task.spec)
        trainer = make_trainer(args.backend, task, k, seed, parse_fixed(args.fixed), args.tangent, args.port,
                               args.baud, dither=dither_arg(args),
                               train_layers=parse_train_layers(args.train_layers, task.spec),
                               exact_last=exact_last_arg(args, task),
                               attach=getattr(args, "attach", False),
                               resident_samples=resident_samples(args, data))
        trainer.saturate = args.saturate
        try:
            if start is not None:
                trainer.set_weights(start)
            trainer.check_training_data(*data)
            tuned = tune_user_lr(args, task, [k], data, trainer.fixed)
            trainer.lr = tuned.lr_for(k)
        except BaseException:
            trainer.close()
            raise
        return tuned, data, trainer, task.epochs
    _check_resume(args, task, checkpoint)
    overrides = {} if args.train_layers is None else {"train_layers": parse_train_layers(args.train_layers, task.spec)}
    if getattr(args, "attach", False):
        overrides["attach"] = True
    samples = resident_samples(args, data)
    if samples:
        overrides["resident_samples"] = samples
    trainer = checkpoint_trainer(args.backend, args.resume, checkpoint, args.port, args.baud, **overrides)
    trainer.saturate = args.saturate
    return task, data, trainer, (task.epochs if args.epochs is not None else max(task.epochs - trainer.epoch, 0))


def checkpoint_trainer(backend: str, path, checkpoint: Checkpoint, port=None, baud=None, **overrides):
    """A trainer on `backend` restored from the checkpoint at `path` (already read as `checkpoint`): its
    weights, epoch, shuffle and dither state (`overrides`: settings that may change, e.g. train_layers). A
    device holds only fixed-point runs of a hardware toper."""
    if backend != "golden" and (checkpoint.fixed is None or Organisation.from_tangent(checkpoint.tangent) is None):
        how = "in float" if checkpoint.fixed is None else f"with the {checkpoint.tangent} tangent"
        raise DpfmError(f"checkpoint {path} was trained {how}: the training core continues only fixed-point "
                        "runs of a hardware toper tangent", "use it with --backend golden, or start a new run "
                        f"with --backend {backend}")
    trainer = BACKENDS[backend](**{**checkpoint.settings(), **overrides}, port=port, baud=baud)
    try:
        trainer.resume(path)
    except BaseException:
        trainer.close()
        raise
    return trainer


def tune_user_lr(args, task, ks, data, fixed):
    """Own data without --lr: the rates for `ks` by the study's tuning rule on the training split
    (`host.study.tuning.tune_task`); a named task, or a given --lr, is returned as it is."""
    if args.data is None or args.lr is not None:
        return task
    from dpfm.host.study.tuning import USER_GRID, tune_task
    max_lr = None if fixed is None else fixed.lr.max_value * task.batch
    print(f"choosing the learning rate for K={','.join(k_label(k) for k in ks)}: the rule of docs/STUDY.md on a "
          f"20% holdout of the training data, rates {', '.join(f'{lr:g}' for lr in USER_GRID)} (give --lr to skip)",
          file=sys.stderr)
    X, Y = data[0], data[1]
    tuned = tune_task(task, ks, X, Y, dither_arg(args), max_lr, progress=show_progress(args))
    print("chosen: " + ", ".join(f"K={k_label(k)} lr {lr:g}" for k, lr in tuned.lr_by_k), file=sys.stderr)
    return tuned


def resident_samples(args, data) -> int:
    """The data set memory of a co-simulated core for --resident: --resident-samples, else the training set's
    size; 0 without --resident. Elsewhere --resident-samples as given, which the golden and board backends
    refuse (a board's bitstream has its own)."""
    if not resident_run_arg(args):
        if getattr(args, "resident_samples", 0):
            raise DpfmError("--resident-samples sizes the data set memory of resident training", "add --resident")
        return 0
    if args.backend not in ("sim", "sim-bus"):
        return args.resident_samples
    return args.resident_samples or len(data[0])


def _stop_if_diverged(epoch, train_loss, val_loss) -> None:
    """An `on_epoch` callback: a NaN/inf loss ends the run (before the epoch reaches the checkpoint)."""
    if not np.isfinite(train_loss) or (val_loss is not None and not np.isfinite(val_loss)):
        raise DpfmError(f"training diverged: the loss became NaN/inf by epoch {epoch}", "lower --lr")


def run(args) -> int:
    task, (X, Y, X_val, Y_val), trainer, epochs = _prepare(args)
    with trainer:
        k = trainer.ks[0]
        trainer.extra.update(task=task.name, backend=args.backend)
        start = time.perf_counter()
        # --save is rewritten after every epoch, so an interrupted run loses at most one.
        trainer.train(X, Y, epochs, X_val, Y_val, progress=show_progress(args), on_epoch=_stop_if_diverged,
                      checkpoint=args.save, resident=resident_run_arg(args))
        seconds = time.perf_counter() - start
        history = trainer.history
        train_loss = history["train_loss"][-1] if history["train_loss"] else trainer.evaluate(X, Y)
        val_loss = None if X_val is None else trainer.evaluate(X_val, Y_val)
        _stop_if_diverged(trainer.epoch, train_loss, val_loss)
        acc = acc_train = None
        if task.classifier:
            acc_train = accuracy(trainer.predict(X), Y)
            acc = accuracy(trainer.predict(X_val), Y_val) if X_val is not None else acc_train

        line = f"task {task.name}  K={k_label(k)}  backend {args.backend}  lr {trainer.lr:g}  " \
               f"dither {'on' if trainer.dither else 'off'}"
        if trainer.fixed is not None:
            line += f"  fixed {trainer.fixed}  tangent {trainer.tangent}"
        print(f"{line}  epochs {trainer.epoch}  ({seconds:.2f} s)")
        result = f"train loss {train_loss:.4f}"
        if val_loss is not None:
            result += f"  val loss {val_loss:.4f}"
        if acc is not None:
            result += f"  accuracy {acc:.4f}" + (f" (train {acc_train:.4f})" if X_val is not None else "")
        print(result)
        counters = trainer.fixed_counters
        if counters is not None:
            print(f"saturations {counters['saturations']}  evictions {counters['evictions']}")

        if args.save is not None:  # also when no epoch ran (a resume at the end of its schedule)
            trainer.save(args.save)
    if args.json is not None:
        write_json(args.json, {
            "task": task.name, "k": k_label(k) if k is None else k, "backend": args.backend,
            "lr": trainer.lr, "dither": trainer.dither, "epochs": trainer.epoch, "train_loss": train_loss, "val_loss": val_loss, "accuracy": acc,
            "seconds": seconds, **(counters or {}),
            "loss_curve": {"train": history["train_loss"], "val": history["val_loss"]},
        })
    return 0
