"""`dpfm sim serve`: build the co-simulated board (gateware link + training core, Verilator) and serve it
on socket://127.0.0.1:PORT until interrupted; `dpfm train --backend board --port <that url>` then trains on
it exactly as on a real board."""

import signal

from golden.errors import DpfmError


def register(subparsers):
    parser = subparsers.add_parser("sim", help="run or serve the RTL co-simulation",
                                   description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="sim_command", metavar="ACTION")
    sub.required = True
    serve = sub.add_parser("serve", help="serve the co-simulated board on a local TCP port")
    serve.add_argument("--task", default="seed-sum", help="task whose network the core is built for")
    serve.add_argument("--k", type=int, default=4, help="tangent slots K of the core (default 4)")
    serve.add_argument("--max-batch", type=int, default=16, help="samples the core buffers (default 16)")
    from hw.config import toper_arg
    serve.add_argument("--toper", type=toper_arg, default="serial", metavar="{serial,parallel,parallel-S}",
                       help="the MAC lane's toper organisation (docs/ARITHMETIC.md 3.3 / 3b; default serial)")
    serve.add_argument("--formats", default="", help="number formats, e.g. x=s16.12,w=s16.12 (default: all defaults)")
    serve.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: any free port)")
    serve.add_argument("--fixture", action="store_true",
                       help="serve the link with a plain memory instead of the core (for link debugging)")
    serve.set_defaults(func=run_serve)


def run_serve(args) -> int:
    from golden.fixedpoint import HwFormats
    from hw.config import CoreConfig
    from sim.cosim import Cosim, MemorySlave, build, core_slave

    if not 0 <= args.port <= 65535:
        raise DpfmError(f"port {args.port} is not a TCP port", "use 1..65535, or 0 for any free port")
    if args.fixture:
        slave, what = MemorySlave(), "memory fixture"
    else:
        config = CoreConfig.from_task(args.task, args.k, fmts=HwFormats.parse(args.formats),
                                      max_batch=args.max_batch, toper=args.toper)
        slave, what = core_slave(config), f"{args.task} core, K={args.k}, {args.toper} toper"
    print(f"building the co-simulation ({what}) ...", flush=True)
    binary = build(slave)
    signal.signal(signal.SIGTERM, _interrupt)   # stop the simulator process on `kill` as on Ctrl-C
    with Cosim(binary, port=args.port) as sim:
        print(sim.url, flush=True)
        try:
            code = sim.proc.wait()
        except KeyboardInterrupt:
            return 0
    raise DpfmError(f"the co-simulation exited unexpectedly (exit {code})", "run it again; report the log if it repeats")


def _interrupt(signum, frame):
    raise KeyboardInterrupt
