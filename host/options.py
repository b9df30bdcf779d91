"""Command-line options shared by several commands, and their argparse types (defined once here).

`add_core_arguments` picks a training-core configuration (`dpfm verilog`, `dpfm build`, `dpfm sim serve`);
`toper_arg` and `tangent_arg` read the toper organisation's two spellings through
`dpfm.golden.contract.organisation`, so a bad value is one argparse error line.
"""

import argparse

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.contract.organisation import TANGENT_MODES, Organisation, check_tangent_mode
from dpfm.hw.config import CoreConfig

#: K when a command is given none: the largest toper of the project's default builds (the UP5K holds K=8).
DEFAULT_K = 8
#: Samples the core buffers on chip per operation, unless --max-batch says otherwise.
DEFAULT_MAX_BATCH = 16


def toper_arg(text: str) -> Organisation:
    """argparse type of `--toper`."""
    try:
        return Organisation.parse(text)
    except DpfmError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def tangent_arg(text: str) -> str:
    """argparse type of `--tangent`."""
    try:
        return check_tangent_mode(text)
    except DpfmError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


TANGENT_METAVAR = "{" + ",".join(TANGENT_MODES) + ",toper-parallel-S}"
TOPER_METAVAR = "{serial,parallel,parallel-S}"


def add_core_arguments(parser, default_task: str | None = "seed-sum") -> None:
    """The options that pick a core configuration (shared by `dpfm verilog`, `dpfm build`, `dpfm sim serve`)."""
    parser.add_argument("--task", default=default_task, help="task whose network the core is built for")
    parser.add_argument("--k", type=int, default=DEFAULT_K, help="tangent slots K (toper size, default %(default)s)")
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH,
                        help="samples held on chip per operation (default %(default)s)")
    parser.add_argument("--lanes", type=int, default=1, help="MAC lanes (neurons of a layer in parallel)")
    parser.add_argument("--toper", type=toper_arg, default=Organisation(), metavar=TOPER_METAVAR,
                        help="serial: one multiplier and toper per lane; parallel: K+1 of each and a merge tree, "
                             "one cycle per MAC step; parallel-S: S source topers, ceil(candidates/S) cycles "
                             "per MAC step (default: %(default)s)")
    parser.add_argument("--formats", default="", help="number formats, e.g. x=s16.12,t=s16.12 (default: contract)")
    parser.add_argument("--exact-last", choices=("on", "off"), default=None,
                        help="the output layer's gradient exact (docs/ARITHMETIC.md 3f; default: the task's)")
    parser.add_argument("--resident-samples", type=int, default=0, metavar="N",
                        help="samples the core's data set memory holds for resident training (docs/ARITHMETIC.md "
                             "7; default 0: none)")


def config_from_args(args, task: str | None = None) -> CoreConfig:
    """The `CoreConfig` the `add_core_arguments` options describe (`task` overrides `args.task`)."""
    from dpfm.golden.tasks import get_task
    name = args.task if task is None else task
    return CoreConfig.from_task(name, args.k, HwFormats.parse(args.formats), args.max_batch, args.lanes, args.toper,
                                exact_last_arg(args, get_task(name)), args.resident_samples)


def exact_last_arg(args, task) -> bool:
    """--exact-last: as given, else the task's default (`task` a `golden.tasks.Task`)."""
    return task.exact_last if args.exact_last is None else args.exact_last == "on"
