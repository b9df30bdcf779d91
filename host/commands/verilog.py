"""`dpfm verilog`: write the synthesizable Verilog of the training core for one configuration."""

from pathlib import Path

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import check_writable, write_text

VERILOG_TOP = "dpfm_core"


def register(subparsers):
    from dpfm.host.options import add_core_arguments
    p = subparsers.add_parser("verilog", help="generate synthesizable Verilog for a configuration",
                              description="Write the training core (bus slave of golden/contract/regmap.py) as Verilog "
                                          f"module {VERILOG_TOP}.")
    add_core_arguments(p)
    p.add_argument("-o", "--output", required=True, help="Verilog file to write")
    p.set_defaults(func=run)


def run(args) -> int:
    from amaranth.back import verilog

    from dpfm.host.options import config_from_args
    from dpfm.hw.core import DpfmCore

    cfg = config_from_args(args)
    out = Path(args.output)
    if not out.parent.is_dir():
        raise DpfmError(f"directory {out.parent} does not exist", "create it or choose another -o path")
    check_writable(out)   # before the conversion, which takes seconds for a large core
    write_text(out, verilog.convert(DpfmCore(cfg), name=VERILOG_TOP))
    print(f"wrote {out}: {VERILOG_TOP} for {list(cfg.spec.sizes)} K={cfg.k} lanes={cfg.lanes} {cfg.toper} toper "
          f"max_batch={cfg.max_batch} ({cfg.n_params} parameters)")
    return 0
