"""`dpfm program`: put the core of one configuration on a board, doing only the work that is needed.

1. With `--port`, the host first reads the identity of the core the board runs. When its build id (the CRC of
   the identity text: network, arithmetic, K, toper, lanes, buffer, UART rate and a hash of the sources)
   equals this configuration's, the board already runs this bitstream and nothing is done.
2. Otherwise the bitstream in the build directory is reused when the identity recorded with it matches, so a
   rebuild happens only when the configuration or the sources changed; else it is built (`dpfm build`).
3. The board's programmer loads it (iceprog for the iCEBreaker, openFPGALoader for the ULX3S); with `--port`
   the identity is read back and checked.
"""

from pathlib import Path

from dpfm.golden.contract.errors import DpfmError


def register(subparsers):
    from dpfm.boards.targets import TARGETS
    from dpfm.host.options import add_core_arguments
    p = subparsers.add_parser("program", help="load the core for a configuration onto a board, if it is not there",
                              description=__doc__)
    p.add_argument("--board", required=True, choices=sorted(TARGETS), help="target board")
    add_core_arguments(p, default_task=None)
    p.add_argument("--port", help="the board's serial port: skip programming when it already runs this build")
    p.add_argument("--build-dir", default=None, help="build directory (default build/<board>)")
    p.add_argument("--force", action="store_true", help="rebuild and program even when nothing changed")
    p.set_defaults(func=run)


def running_identity(port: str, baud: int):
    """The identity of the dpfm core behind `port`, or None with the reason (silent, another core)."""
    from dpfm.host.core_identity import read_core_id, read_identity
    from dpfm.host.link import LinkClient, SerialPort
    with LinkClient(SerialPort(port, baud)) as client:
        try:
            read_core_id(client)
            return read_identity(client), None
        except DpfmError as exc:
            return None, exc.args[0] if exc.args else str(exc)


def run(args) -> int:
    from dpfm.boards.build import build_board, built_identity, program_built
    from dpfm.boards.targets import get_target
    from dpfm.host.options import config_from_args
    from dpfm.hw.identity import core_identity

    target = get_target(args.board)
    cfg = config_from_args(args, task=target.default_task if args.task is None else args.task)
    wanted = core_identity(cfg, target.baud)
    label = f"build {wanted.build_id:08x} ({wanted.text()})"
    if args.port and not args.force:
        running, why = running_identity(args.port, target.baud)
        if running is not None and running.build_id == wanted.build_id:
            print(f"the {args.board} on {args.port} already runs {label}: nothing to do")
            return 0
        print(f"the {args.board} on {args.port} runs " +
              (f"build {running.build_id:08x}" if running is not None else f"no dpfm core of this revision ({why})"))
    build_dir = Path(args.build_dir or Path("build") / args.board)
    if not args.force and built_identity(build_dir) == wanted.text():
        print(f"reusing the bitstream of {label} in {build_dir}")
    else:
        print(f"building {label} in {build_dir}")
        report = build_board(args.board, cfg, build_dir)
        if not report.fits:
            raise DpfmError(f"the design does not fit the {args.board} ({report.error})",
                            "nothing to program: lower K, lanes or max_batch")
    program_built(args.board, build_dir)
    if args.port:
        running, why = running_identity(args.port, target.baud)
        if running is None or running.build_id != wanted.build_id:
            raise DpfmError(f"after programming, the {args.board} on {args.port} does not run {label} "
                            f"({why or f'it runs build {running.build_id:08x}'})",
                            "check that --port is this board's UART and that programming succeeded")
    print(f"programmed the {args.board} with {label}")
    return 0
