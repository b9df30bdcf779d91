"""Where the grid runs: a `distributed.LocalCluster` of worker processes (1 thread each), or an existing Dask
cluster given by its scheduler address. Opening the client is the only place that talks to Dask's setup."""

import contextlib
import logging

from dpfm.golden.contract.errors import DpfmError

CONNECT_TIMEOUT = "5s"


@contextlib.contextmanager
def open_client(scheduler: str | None, workers: int):
    """A `distributed.Client`, closed (and its LocalCluster shut down) on exit."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise DpfmError(f"cannot reach the Dask scheduler at {scheduler} ({type(exc).__name__})",
                            "start it with 'dask scheduler' and give its tcp://HOST:PORT, or drop --scheduler") from None
        with client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client
