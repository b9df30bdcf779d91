"""The bus transport (golden/contract/bus_socket.py): the co-simulated core's word bus over a socket, no
UART in between. The same `Device` trains through it bit for bit as through the link, and a missing or
dying co-simulation is one clear error."""

import socket

import numpy as np
import pytest

from dpfm.golden.contract import bus_socket as B
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.mlp import GoldenTrainer
from dpfm.golden.tasks import get_task
from dpfm.host.bus_link import BusClient
from dpfm.host.device import open_device
from dpfm.hw.config import CoreConfig

TASK = get_task("seed-sum")


def test_request_bytes():
    assert B.request(B.OP_READ, 0x4001, 3) == b"R\x01\x40\x03\x00"
    assert B.request(B.OP_WRITE, 5, [1, 0xFFFFFFFF]) == b"W\x05\x00\x02\x00" + b"\x01\0\0\0" + b"\xff" * 4


def test_nothing_listening_is_one_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DpfmError, match=f"cannot open bus://127.0.0.1:{port}"):
        BusClient(f"127.0.0.1:{port}")


def test_a_server_that_hangs_up_is_one_error():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        client = BusClient(f"127.0.0.1:{server.getsockname()[1]}", timeout=5)
        conn, _ = server.accept()
        conn.close()
        with pytest.raises(DpfmError, match="closed the connection"):
            client.read(0, 1)
        client.close()


@pytest.mark.verilator
@pytest.mark.slow
@pytest.mark.parametrize("train_layers", [None, (2,)], ids=["all", "last"])
def test_training_over_the_bus_equals_golden_toper_bit_for_bit(train_layers):
    X, Y, X_val, Y_val = (a[:40] for a in TASK.load())
    gold = GoldenTrainer(TASK.spec, 4, lr=TASK.lr, batch=TASK.batch, seed=3, fixed=HwFormats(), tangent="toper",
                         dither=True, train_layers=train_layers)
    config = CoreConfig.from_task("seed-sum", 4)
    with open_device("sim-bus", config, lr=TASK.lr, batch=TASK.batch, seed=3, dither=True,
                     train_layers=train_layers) as dev:
        assert dev.client.name.startswith("bus://")
        assert dev.train(X, Y, 2, X_val, Y_val, progress=False) == gold.train(X, Y, 2, X_val, Y_val, progress=False)
        assert np.array_equal(dev.predict(X_val), gold.predict(X_val))
        assert dev.dither_state == gold.dither_state
        assert dev.fixed_counters["saturations"] == gold.fixed_counters["saturations"]
