"""The torch.distributed process group of a DDP job: join with a timeout, reduce, and leave.

One process per rank (one pod per rank in an Indexed Job, or ``torchrun``). Rank 0 hosts the
rendezvous store at ``MASTER_ADDR:MASTER_PORT``; every rank waits at most the join timeout for
the others and otherwise fails with :class:`WorkerJoinTimeoutError` (retryable: the Job restarts
the pod), instead of hanging until the Job's deadline.

``MASTER_ADDR`` is resolved here, in Python, before torch sees it, retrying until the join
timeout: in Kubernetes rank 0's DNS name (``<job>-0.<headless service>``) only exists once its
pod does, and torch fails at once on a name that does not resolve yet (Kubeflow's PyTorchJob adds
an init container that loops on ``nslookup`` for the same reason).
"""

from __future__ import annotations

import datetime
import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .config import DistEnv
from .errors import WorkerJoinTimeoutError

__all__ = ["DistContext", "process_group", "resolve_master"]

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

    def broadcast_from_main(self, value: float) -> float:
        """Rank 0's ``value`` on every rank (``value`` itself in a single process).

        For what all ranks must agree on but each would compute on its own, such as the end of a
        PromQL dataset's range: each rank's clock would give a slightly different panel.
        """
        if not self.active:
            return value
        out = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.broadcast(out, src=0)
        return float(out.item())

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def _pick_device(env: DistEnv) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", env.local_rank % torch.cuda.device_count())
    return torch.device("cpu")


Resolver = Callable[[str], str]


def _resolve(host: str) -> str:
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return str(infos[0][4][0])


def resolve_master(
    env: DistEnv,
    timeout_s: float,
    *,
    resolve: Resolver = _resolve,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    interval_s: float = 0.5,
) -> str:
    """``env.master_addr`` as an IP address, retried until ``timeout_s`` while it does not resolve.

    Raises :class:`WorkerJoinTimeoutError` when the name never resolves in time.
    """
    deadline = clock() + timeout_s
    while True:
        try:
            return resolve(env.master_addr)
        except OSError as exc:  # socket.gaierror: the name does not exist (yet)
            if clock() >= deadline:
                raise WorkerJoinTimeoutError(
                    env.world_size, env.rank, env.master_addr, env.master_port, timeout_s
                ) from exc
            log.info("MASTER_ADDR %s does not resolve yet (%s); retrying", env.master_addr, exc)
            sleep(interval_s)


@contextmanager
def process_group(
    env: DistEnv, *, backend: str = "auto", timeout_s: float = 300.0, resolve: Resolver = _resolve
) -> Iterator[DistContext]:
    """Join the job's process group (no-op for one process) and leave it on exit.

    Args:
        env: rank, world size and master address from the environment.
        backend: ``auto`` (nccl with CUDA, gloo without), ``nccl`` or ``gloo``.
        timeout_s: how long to wait for every rank to join; also the collective timeout.
        resolve: host name -> IP address (tests pass their own).
    """
    device = _pick_device(env)
    if not env.distributed:
        yield DistContext(env=env, backend=None, device=device)
        return
    chosen = backend if backend != "auto" else ("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    ip = resolve_master(env, timeout_s, resolve=resolve)
    host = f"[{ip}]" if ":" in ip else ip
    try:
        dist.init_process_group(
            chosen,
            init_method=f"tcp://{host}:{env.master_port}",
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
