"""`dpfm`: the one command-line entry point.

Each subcommand lives in its own module under `host.commands` and exposes `register(subparsers)`, which adds
its parser and sets `func` to the handler `func(args) -> int`. Modules are imported only for the command
that runs, so `dpfm train` never pays for importing Amaranth or cocotb.
"""

import argparse
import importlib
import sys

from dpfm.golden.contract.errors import DpfmError

# name -> (module, one-line help)
COMMANDS = {
    "train": ("dpfm.host.commands.train", "train a network (golden model, RTL co-simulation or a board)"),
    "online": ("dpfm.host.commands.online", "learn from a stream one sample at a time (predict, then learn)"),
    "sweep": ("dpfm.host.commands.sweep", "train once per K and tabulate/plot the loss curves"),
    "study": ("dpfm.host.commands.study", "learning quality per K: a grid of rules and seeds on Dask, tuned on training data"),
    "compare": ("dpfm.host.commands.compare", "learning rules (backprop, FA, DFA, DNI, HSIC, DPFM) under n-bit weights, on Dask"),
    "bench": ("dpfm.host.commands.bench", "run a benchmark and write JSON and a table"),
    "verilog": ("dpfm.host.commands.verilog", "generate synthesizable Verilog for a configuration"),
    "build": ("dpfm.host.commands.build", "build a bitstream for a board and report resources and Fmax"),
    "program": ("dpfm.host.commands.program", "load the core for a configuration onto a board, if it is not there"),
    "sim": ("dpfm.host.commands.sim", "run or serve the RTL co-simulation"),
    "info": ("dpfm.host.commands.info", "show what the core on a board (or co-simulation) was built for"),
    "data": ("dpfm.host.commands.data", "fetch and cache a dataset (MNIST)"),
    "export": ("dpfm.host.commands.export", "write a checkpoint's network as ONNX"),
    "predict": ("dpfm.host.commands.predict", "a checkpoint's outputs on data, on any backend (.npy or .csv)"),
    "verify": ("dpfm.host.commands.verify", "run a checkpoint on several backends and show where they part"),
}


def build_parser(argv):
    parser = argparse.ArgumentParser(prog="dpfm", description="Dynamic Pruning in Forward Mode: train networks with top-K forward-mode gradients, in NumPy or on an FPGA.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        if name == wanted:
            importlib.import_module(module).register(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DpfmError as exc:
        print(f"dpfm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dpfm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
