"""Multi-process CPU training in tests: a free TCP port and one gloo rank's set-up.

The tests spawn their ranks with ``torch.multiprocessing.spawn``; each rank sets the variables
``torchrun`` would set and joins the process group through the trainer's own
:func:`~motus_policy.training.distributed.init_distributed`.
"""

from __future__ import annotations

import os
import socket

import torch

from motus_policy.training.distributed import DistInfo, init_distributed


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the rendezvous port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_cpu_rank(rank: int, world: int, port: int) -> DistInfo:
    """Join a ``world``-process gloo group as ``rank`` (one CPU thread per rank: 2 cores here)."""
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1",
    )  # fmt: skip
    torch.set_num_threads(1)
    return init_distributed("cpu")
