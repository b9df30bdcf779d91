"""`dpfm sim serve`: build the co-simulated board (gateware link + training core, Verilator) and serve it
on socket://127.0.0.1:PORT until interrupted; `dpfm train --backend board --port <that url>` then trains on
it exactly as on a real board."""

import signal

from dpfm.golden.contract.errors import DpfmError


def register(subparsers):
    parser = subparsers.add_parser("sim", help="run or serve the RTL co-simulation",
                                   description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="sim_command", metavar="ACTION")
    sub.required = True
    from dpfm.host.options import add_core_arguments
    serve = sub.add_parser("serve", help="serve the co-simulated board on a local TCP port")
    add_core_arguments(serve)
    serve.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: any free port)")
    serve.add_argument("--fixture", action="store_true",
                       help="serve the link with a plain memory instead of the core (for link debugging)")
    serve.set_defaults(func=run_serve)


def run_serve(args) -> int:
    from dpfm.host.options import config_from_args
    from dpfm.sim.cosim import Cosim, MemorySlave, build, core_slave

    if not 0 <= args.port <= 65535:
        raise DpfmError(f"port {args.port} is not a TCP port", "use 1..65535, or 0 for any free port")
    if args.fixture:
        slave, what = MemorySlave(), "memory fixture"
    else:
        config = config_from_args(args)
        slave, what = core_slave(config), f"{args.task} core, K={config.k}, lanes={config.lanes}, {config.toper} toper"
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
