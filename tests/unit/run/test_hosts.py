"""SSH hosts: parsing ``--hosts`` and inventories, the ssh command line, and reading the pre-flight."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from foresight.run.hosts import (
    PREFLIGHT_MARK,
    Host,
    HostCheck,
    HostsError,
    SshClient,
    check_host,
    load_inventory,
    parse_hosts,
    preflight,
    remote_command,
)
from foresight.run.trainingjob import host_ranks


def test_hosts_parse_user_host_and_port_with_shared_defaults() -> None:
    hosts = parse_hosts("gpu-1, train@gpu-2:2222,[::1]:22", python="/opt/fs/bin/python", env={"A": "1"})
    assert [(h.host, h.user, h.port) for h in hosts] == [("gpu-1", None, None), ("gpu-2", "train", 2222),
                                                         ("[::1]", None, 22)]  # fmt: skip
    assert [h.label for h in hosts] == ["gpu-1", "train@gpu-2:2222", "[::1]:22"]
    assert hosts[2].rendezvous_address == "::1"
    assert all(h.python == "/opt/fs/bin/python" and h.env == {"A": "1"} for h in hosts)


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "--hosts is empty"), ("a b", "write it as host"), ("h:99999", "not in 1-65535"),
     ("a,a", "listed twice")],
)  # fmt: skip
def test_bad_hosts_say_how_to_write_them(text: str, message: str) -> None:
    with pytest.raises(HostsError, match=message):
        parse_hosts(text)


def test_inventory_merges_defaults_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text(
        "defaults: {python: /opt/py, env: {OMP_NUM_THREADS: '8'}, user: train}\n"
        "hosts:\n  - {host: gpu-1, gpus: 4, address: 10.0.0.1}\n  - {host: root@gpu-2:2200, env: {X: y}}\n"
    )
    a, b = load_inventory(path, env={"PYTHONPATH": "/src"})
    assert (a.user, a.gpus, a.python, a.rendezvous_address) == ("train", 4, "/opt/py", "10.0.0.1")
    assert a.env == {"OMP_NUM_THREADS": "8", "PYTHONPATH": "/src"}
    assert (b.user, b.port, b.gpus, b.env["X"]) == ("root", 2200, None, "y")
    assert load_inventory(path, python="/other")[0].python == "/other"  # --remote-python wins


@pytest.mark.parametrize("name", ["AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "HF_TOKEN"])
def test_secrets_are_refused_in_inventories_and_flags(tmp_path: Path, name: str) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text(f"hosts:\n  - host: a\n    env: {{{name}: x}}\n")
    with pytest.raises(HostsError, match="looks like a secret"):
        load_inventory(path)
    with pytest.raises(HostsError, match="never written into a hosts file or a command line"):
        parse_hosts("a", env={name: "x"})


def test_inventory_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text("hosts: []\n")
    with pytest.raises(HostsError, match=f"hosts file {path} is invalid"):
        load_inventory(path)
    with pytest.raises(HostsError, match="cannot read hosts file"):
        load_inventory(tmp_path / "missing.yaml")


def test_ssh_command_never_prompts_and_quotes_the_remote_command() -> None:
    host = Host(host="gpu-1", user="train", port=2222, python="/opt/my env/python", env={"P": "a b"})
    command = remote_command(host, ["-m", "foresight.run.rank_agent"])
    assert shlex.split(command) == [
        "exec",
        "env",
        "P=a b",
        "/opt/my env/python",
        "-m",
        "foresight.run.rank_agent",
    ]
    argv = SshClient(identity_file="/k/id", options=("UserKnownHostsFile=/dev/null",)).argv(host, command)
    assert argv[:3] == ["ssh", "-o", "BatchMode=yes"] and argv[-3:] == ["gpu-1", "--", command]
    joined = " ".join(argv)
    assert "-i /k/id -o IdentitiesOnly=yes" in joined and "-p 2222" in joined and "-l train" in joined
    assert "-o UserKnownHostsFile=/dev/null" in joined and "ServerAliveInterval=5" in joined


class FakeSsh(SshClient):
    """Answers every ``run`` with a canned process result (what the host "said")."""

    answers: dict[str, subprocess.CompletedProcess[str]]

    def run(self, host: Host, command: str, *, stdin: str = "", timeout_s: float = 60.0) -> Any:
        return self.answers[host.host]


def _ssh(**answers: subprocess.CompletedProcess[str]) -> FakeSsh:
    ssh = FakeSsh()
    object.__setattr__(ssh, "answers", answers)
    return ssh


def _said(facts: dict[str, Any], code: int = 0) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], code, stdout=PREFLIGHT_MARK + json.dumps(facts) + "\n", stderr="")


GOOD = {"python": "3.11.2", "foresight": "0.1.0", "torch": "2.13.0", "freePort": 40001}


def test_a_ready_host_passes_and_offers_a_rendezvous_port() -> None:
    check = check_host(_ssh(a=_said(GOOD)), Host("a"), version="0.1.0", want_gpus=False)
    assert check.problems == [] and check.free_port == 40001 and check.gpus == []


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (subprocess.CompletedProcess([], 255, "", "ssh: connect to host a port 22: Connection refused\n"),
         "cannot log in over SSH (ssh: connect to host a port 22: Connection refused)"),
        (subprocess.CompletedProcess([], 127, "", "env: '/opt/py': No such file or directory\n"),
         "Python '/opt/py' cannot be run there"),
        (_said({**GOOD, "foresight": None, "foresightError": "ModuleNotFoundError: foresight"}),
         "has no foresight runtime (ModuleNotFoundError"),
        (_said({**GOOD, "foresight": "0.0.9"}), "runs foresight 0.0.9, this machine runs 0.1.0"),
        (_said({**GOOD, "torch": None, "torchError": "ModuleNotFoundError: torch"}),
         "torch is not importable"),
    ],
)  # fmt: skip
def test_what_is_missing_on_a_host_is_said_with_what_to_do(
    answer: subprocess.CompletedProcess[str], expected: str
) -> None:
    check = check_host(_ssh(a=answer), Host("a", python="/opt/py"), version="0.1.0", want_gpus=False)
    assert len(check.problems) == 1 and expected in check.problems[0], check.problems


def test_gpus_free_busy_and_missing() -> None:
    facts = {**GOOD, "gpus": [0, 1, 2], "freeGpus": [0, 2]}
    ssh = _ssh(a=_said(facts), b=_said(facts), c=_said({**GOOD, "gpuError": "nvidia-smi not found"}))
    assert check_host(ssh, Host("a"), version="0.1.0", want_gpus=True).gpus == [0, 2]  # every free one
    busy = check_host(ssh, Host("b", gpus=3), version="0.1.0", want_gpus=True)
    assert busy.problems == ["3 free GPU(s) wanted, 2 free of 3 (busy: 1): wait for them, or lower gpus: for "
                             "this host"]  # fmt: skip
    none = check_host(ssh, Host("c"), version="0.1.0", want_gpus=True)
    assert "asks for GPUs (resources.gpu) but nvidia-smi not found" in none.problems[0]


def test_preflight_lists_every_problem_of_every_host_and_starts_nothing() -> None:
    ssh = _ssh(a=_said(GOOD), b=_said({**GOOD, "foresight": "0.0.9"}), c=_said({**GOOD, "pathExists": False}))
    with pytest.raises(HostsError) as info:
        preflight(ssh, [Host("a"), Host("b"), Host("c")], version="0.1.0", want_gpus=False,
                  dataset_path="/data/panel.npz")  # fmt: skip
    text = str(info.value)
    assert text.startswith("2 of 3 host(s) cannot run this job; nothing was started:")
    assert (
        "  b: runs foresight 0.0.9" in text
        and "  c: the dataset /data/panel.npz does not exist there" in text
    )


def test_ranks_go_one_per_host_and_gpu_with_the_rendezvous_on_the_first_host() -> None:
    a = HostCheck(Host("a", address="10.0.0.1"), facts={"freePort": 41000}, gpus=[0, 2])
    b = HostCheck(Host("b"), gpus=[1])
    ranks = host_ranks([a, b])
    assert [(r.rank, r.host.host if r.host else None, r.env["LOCAL_RANK"], r.env["CUDA_VISIBLE_DEVICES"])
            for r in ranks] == [(0, "a", "0", "0"), (1, "a", "1", "2"), (2, "b", "0", "1")]  # fmt: skip
    assert {(r.env["MASTER_ADDR"], r.env["MASTER_PORT"], r.env["WORLD_SIZE"]) for r in ranks} == {
        ("10.0.0.1", "41000", "3")
    }
    cpu = host_ranks([HostCheck(Host("x"), facts={"freePort": 1}), HostCheck(Host("y"))])
    assert [r.env["CUDA_VISIBLE_DEVICES"] for r in cpu] == ["", ""]  # one CPU rank per host
