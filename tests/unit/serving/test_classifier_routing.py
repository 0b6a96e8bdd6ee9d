"""The routing table of a serving pod: the routing file's split, reloads, and every way it can be wrong."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from foresight.serving.classifier.routing import RoutingTable

VARIANTS = ["control", "candidate"]


def routing(
    weights: dict[str, int], *, generation: int = 1, header: str | None = "X-Client-Id"
) -> dict[str, Any]:
    return {
        "experiment": "photos/v2-vs-v1",
        "generation": generation,
        "salt": "uid-1234",
        "stickinessHeader": header,
        "control": "control",
        "variants": [{"name": n, "weight": w} for n, w in weights.items()],
        "updated": "2026-01-01T00:00:00Z",
    }


def write(path: Path, data: Any) -> None:
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    # Make the change visible to a stat() in the same clock tick, as a kubelet swap would be.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def clients(table: RoutingTable, n: int = 2000) -> dict[str, str]:
    return {f"c{i}": table.choose([(b"x-client-id", f"c{i}".encode())], "10.0.0.1", "rid") for i in range(n)}


def test_no_routing_file_serves_the_control_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    table = RoutingTable(VARIANTS, str(tmp_path / "routing.json"), poll_seconds=1)
    assert set(clients(table, 50).values()) == {"control"}
    assert table.split.source == "default"
    table.check()
    table.check()
    assert caplog.text.count("no routing file") == 1


def test_the_split_is_applied_sticky_and_reloaded_without_restart(tmp_path: Path) -> None:
    path = tmp_path / "routing.json"
    write(path, routing({"control": 90, "candidate": 10}))
    table = RoutingTable(VARIANTS, str(path), poll_seconds=1)
    first = clients(table)
    share = sum(v == "candidate" for v in first.values()) / len(first)
    assert 0.07 < share < 0.13
    assert clients(table) == first  # the same client, the same variant
    # The header decides, not the address: the same client id from another address sticks.
    assert table.choose([(b"x-client-id", b"c7")], "192.168.1.9", "r") == first["c7"]

    write(path, routing({"control": 75, "candidate": 25}, generation=2))
    assert table.check() is True
    second = clients(table)
    moved = {c for c in first if first[c] != second[c]}
    assert all(first[c] == "control" and second[c] == "candidate" for c in moved)  # one way only
    assert 0.12 < len(moved) / len(first) < 0.18
    assert table.split.describe()["generation"] == 2
    assert table.check() is False  # unchanged file: nothing reloaded


def test_without_the_header_the_client_address_keeps_a_client_on_its_variant(tmp_path: Path) -> None:
    path = tmp_path / "routing.json"
    write(path, routing({"control": 50, "candidate": 50}, header=None))
    table = RoutingTable(VARIANTS, str(path), poll_seconds=1)
    by_ip = {ip: table.choose([], ip, "r1") for ip in (f"10.0.0.{i}" for i in range(200))}
    assert {table.choose([], ip, "r2") for ip in by_ip} <= set(VARIANTS)
    assert all(table.choose([], ip, "other-request") == v for ip, v in by_ip.items())
    assert set(by_ip.values()) == set(VARIANTS)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "invalid"),
        (routing({"control": 50, "candidate": 60}), "invalid"),  # weights sum to 110
        (routing({"control": 50, "stranger": 50}), "does not serve"),  # a variant this pod lacks
        (b"\xff\xfe not utf-8", "cannot read"),
    ],
)
def test_a_broken_routing_file_keeps_serving_the_control(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: Any, reason: str
) -> None:
    path = tmp_path / "routing.json"
    write(path, routing({"control": 0, "candidate": 100}))
    table = RoutingTable(VARIANTS, str(path), poll_seconds=1)
    assert set(clients(table, 50).values()) == {"candidate"}
    caplog.set_level(logging.WARNING)
    write(path, content)
    table.check()
    assert set(clients(table, 50).values()) == {"control"}
    assert table.split.source == "default"
    assert reason in caplog.text and "every request goes to the control variant 'control'" in caplog.text
    assert table.split.weights == {"control": 100, "candidate": 0}


def test_a_pod_with_one_variant_ignores_the_split(tmp_path: Path) -> None:
    path = tmp_path / "routing.json"
    write(path, routing({"control": 50, "candidate": 50}))
    table = RoutingTable([""], str(path), poll_seconds=1)
    assert table.choose([(b"x-client-id", b"a")], "10.0.0.1", "r") == ""
