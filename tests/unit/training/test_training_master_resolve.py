"""MASTER_ADDR is resolved (with retries up to the join timeout) before torch sees it."""

from __future__ import annotations

import socket

import pytest
from foresight.training import DistEnv, WorkerJoinTimeoutError
from foresight.training.distributed import resolve_master

ENV = DistEnv(rank=1, world_size=2, master_addr="ddp-train-0.ddp-workers", master_port=29500)


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_name_that_appears_later_is_waited_for() -> None:
    t = FakeTime()
    calls: list[str] = []

    def resolve(host: str) -> str:
        calls.append(host)
        if len(calls) < 3:  # rank 0's pod (and so its DNS record) does not exist yet
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return "10.0.0.7"

    assert resolve_master(ENV, 10, resolve=resolve, clock=t.clock, sleep=t.sleep) == "10.0.0.7"
    assert calls == ["ddp-train-0.ddp-workers"] * 3


def test_a_name_that_never_resolves_is_a_worker_join_timeout() -> None:
    t = FakeTime()

    def resolve(host: str) -> str:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(WorkerJoinTimeoutError) as info:
        resolve_master(ENV, 5, resolve=resolve, clock=t.clock, sleep=t.sleep)
    assert info.value.reason == "WorkerJoinTimeout" and info.value.retryable
    assert "ddp-train-0.ddp-workers:29500" in str(info.value)
    assert 105.0 <= t.now <= 106.0  # gave up at the timeout, not before and not long after


def test_an_ip_address_passes_through_the_real_resolver() -> None:
    env = DistEnv(rank=0, world_size=2, master_addr="127.0.0.1")
    assert resolve_master(env, 1) == "127.0.0.1"
