"""The torch.distributed process group of a DDP job: join with a timeout, reduce, and leave.

One process per rank (one pod per rank in an Indexed Job, or ``torchrun``). Rank 0 hosts the
rendezvous store at ``MASTER_ADDR:MASTER_PORT``; every rank waits at most the join timeout for
the others and otherwise fails with :class:`WorkerJoinTimeoutError` (retryable: the Job restarts
the pod), instead of hanging until the Job's deadline.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .config import DistEnv
from .errors import WorkerJoinTimeoutError

__all__ = ["DistContext", "process_group"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """An initialised process group (or a single process when ``env.world_size`` is 1)."""

    env: DistEnv
    backend: str | None
    device: torch.device

    @property
    def active(self) -> bool:
        return self.backend is not None

    def all_reduce_mean(self, value: torch.Tensor) -> torch.Tensor:
        """Mean of ``value`` over all ranks (``value`` itself in a single process)."""
        if not self.active:
            return value
        out = value.detach().clone().to(self.device)
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out / self.env.world_size

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def _pick_device(env: DistEnv) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", env.local_rank % torch.cuda.device_count())
    return torch.device("cpu")


@contextmanager
def process_group(env: DistEnv, *, backend: str = "auto", timeout_s: float = 300.0) -> Iterator[DistContext]:
    """Join the job's process group (no-op for one process) and leave it on exit.

    Args:
        env: rank, world size and master address from the environment.
        backend: ``auto`` (nccl with CUDA, gloo without), ``nccl`` or ``gloo``.
        timeout_s: how long to wait for every rank to join; also the collective timeout.
    """
    device = _pick_device(env)
    if not env.distributed:
        yield DistContext(env=env, backend=None, device=device)
        return
    chosen = backend if backend != "auto" else ("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    try:
        dist.init_process_group(
            chosen,
            init_method=f"tcp://{env.master_addr}:{env.master_port}",
            rank=env.rank,
            world_size=env.world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    except (dist.DistError, TimeoutError) as exc:
        # DistStoreError (rank 0: not all clients joined) and DistNetworkError (others: no master)
        # are both "the other ranks did not show up in time".
        raise WorkerJoinTimeoutError(
            env.world_size, env.rank, env.master_addr, env.master_port, timeout_s
        ) from exc
    log.info("rank %d/%d joined %s process group at %s:%d", env.rank, env.world_size, chosen,
             env.master_addr, env.master_port)  # fmt: skip
    try:
        yield DistContext(env=env, backend=chosen, device=device)
    finally:
        dist.destroy_process_group()
