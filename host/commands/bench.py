"""`dpfm bench TARGET [options]`: dispatch to one benchmark module.

Each target is a module exposing `add_arguments(parser)` and `run(args) -> int`; it is imported only when
asked for, so `dpfm bench golden` never imports Amaranth, and a benchmark that is not written yet is a clear
error instead of an import traceback. The target's own options follow the target name.
"""

import argparse
import importlib

from dpfm.golden.contract.errors import DpfmError

TARGETS = {
    "golden": ("dpfm.host.bench.golden", "golden trainer: seed-sum sweep time and per-epoch time against PyTorch"),
    "hw": ("dpfm.host.bench.hw", "gateware resources, Fmax and cycle counts"),
    "link": ("dpfm.host.bench.link", "host <-> device link throughput"),
    "resident": ("dpfm.host.bench.resident", "resident training against streamed: core cycles, the wire, PyTorch"),
    "finetune": ("dpfm.host.bench.finetune", "core cycles per sample: every layer learning against the last one only"),
    "approx": ("dpfm.host.bench.approx", "hardware toper approximation against exact top-K"),
    "mutants": ("dpfm.host.bench.mutants", "named mutants of gateware, golden model and host: the tests' kill rate"),
}


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="run a benchmark and write JSON and a table",
                              description=__doc__.split("\n\n")[0],
                              epilog="targets: " + "; ".join(f"{n}: {h}" for n, (_, h) in TARGETS.items())
                                     + ". Run 'dpfm bench TARGET --help' for a target's options.")
    p.add_argument("target", choices=tuple(TARGETS), help="which benchmark")
    p.add_argument("options", nargs=argparse.REMAINDER, help="the target's options")
    p.set_defaults(func=run)


def run(args) -> int:
    module_name, help_text = TARGETS[args.target]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"dpfm bench {args.target}", description=help_text)
    module.add_arguments(parser)
    return module.run(parser.parse_args(args.options))
