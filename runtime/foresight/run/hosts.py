"""Compute hosts over SSH for ``foresight run --hosts``: the inventory, the ssh command and the pre-flight.

**Why the system ``ssh`` client** (run as a subprocess, ``BatchMode=yes``) and not a Python SSH
library: it is what the user already trusts and configures. Keys come from their ``ssh-agent``
or a key file (``--identity-file``), and ``~/.ssh/config`` (jump hosts, ``known_hosts``, ciphers,
ControlMaster) applies unchanged, with no extra dependency and no key material in our process.
BatchMode makes a missing key fail at once instead of prompting. Keys never appear in YAML.

**Inventory** (``--hosts-file``, YAML)::

    defaults:                 # optional, applies to every host
      python: /opt/foresight/bin/python
      env: {OMP_NUM_THREADS: "8"}
    hosts:
      - host: gpu-1.lab       # or "user@host:port"
        user: train
        port: 22
        gpus: 4               # GPUs to use (default: every free one, when the job asks for GPUs)
        address: 10.0.0.11    # the address the other hosts reach this one at (rendezvous)

``--hosts a,b`` is the same with defaults only. ``env`` is forwarded explicitly on the remote
command line (so it must hold no secret); S3 credentials travel on the rank's standard input.

**Pre-flight** (:func:`preflight`), one SSH call per host before anything starts: SSH reachable,
the Python and its ``foresight`` version (must equal this machine's), torch importable, free GPUs
(``nvidia-smi``) when the job asks for GPUs, a ``file://`` dataset present, the S3 endpoint
reachable; every problem of every host is reported together with what to do.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "DEFAULT_PYTHON",
    "Host",
    "HostCheck",
    "HostsError",
    "SshClient",
    "load_inventory",
    "parse_hosts",
    "preflight",
    "remote_command",
]

DEFAULT_PYTHON = "python3"
_HOST = re.compile(r"^(?:(?P<user>[^@\s:]+)@)?(?P<host>\[[0-9a-fA-F:.]+\]|[^@\s:\[\]]+)(?::(?P<port>\d+))?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PREFLIGHT_MARK = "FORESIGHT-PREFLIGHT "


class HostsError(Exception):
    """The hosts cannot run the job as given; the message says what to change."""


@dataclass(frozen=True)
class Host:
    """One compute host reached over SSH."""

    host: str
    user: str | None = None
    port: int | None = None
    gpus: int | None = None
    """GPUs to use; ``None`` = every free GPU (when the job asks for GPUs)."""
    python: str = DEFAULT_PYTHON
    env: Mapping[str, str] = field(default_factory=dict)
    """Non-secret environment forwarded on the remote command line (e.g. PYTHONPATH)."""
    address: str | None = None
    """Where the other hosts reach this one (the rendezvous address); default ``host``."""

    @property
    def label(self) -> str:
        """``user@host:port`` as the user wrote it (port and user only when given)."""
        text = f"{self.user}@{self.host}" if self.user else self.host
        return f"{text}:{self.port}" if self.port else text

    @property
    def rendezvous_address(self) -> str:
        return (self.address or self.host).strip("[]")


class _HostEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, description="host: name or address, or user@host:port.")
    user: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    gpus: int | None = Field(default=None, ge=0, le=64)
    python: str | None = Field(default=None, min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    address: str | None = None


class _Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    gpus: int | None = Field(default=None, ge=0, le=64)
    python: str | None = Field(default=None, min_length=1)
    env: dict[str, str] = Field(default_factory=dict)


class _Inventory(BaseModel):
    model_config = ConfigDict(extra="forbid")

    defaults: _Defaults = Field(default_factory=_Defaults)
    hosts: list[_HostEntry] = Field(min_length=1)


def _check_env(env: Mapping[str, str], where: str) -> None:
    for name in env:
        if not _ENV_NAME.match(name):
            raise HostsError(f"{where}: {name!r} is not an environment variable name")
        if any(word in name.upper() for word in ("SECRET", "PASSWORD", "TOKEN")) or name.startswith("AWS_"):
            raise HostsError(
                f"{where}: {name} looks like a secret; secrets are never written into a hosts file or a "
                "command line: export it on this machine (S3 keys: AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY) and foresight passes it to each rank privately"
            )


def _parse_one(text: str, base: Host) -> Host:
    m = _HOST.match(text.strip())
    if not m:
        raise HostsError(f"host {text!r}: write it as host, user@host or user@host:port")
    port = int(m["port"]) if m["port"] else base.port
    if port is not None and not 1 <= port <= 65535:
        raise HostsError(f"host {text!r}: port {port} is not in 1-65535")
    return replace(base, host=m["host"], user=m["user"] or base.user, port=port)


def parse_hosts(
    text: str, *, python: str | None = None, env: Mapping[str, str] | None = None, gpus: int | None = None
) -> list[Host]:
    """``--hosts a,user@b:2222``: hosts with the given defaults (python, env, GPUs)."""
    base = Host(host="", python=python or DEFAULT_PYTHON, env=dict(env or {}), gpus=gpus)
    _check_env(base.env, "--remote-env")
    hosts = [_parse_one(part, base) for part in text.split(",") if part.strip()]
    if not hosts:
        raise HostsError("--hosts is empty: give at least one host, e.g. --hosts gpu-1,gpu-2")
    _no_duplicates(hosts)
    return hosts


def _no_duplicates(hosts: Sequence[Host]) -> None:
    seen: set[tuple[str, int | None]] = set()
    for h in hosts:
        key = (h.host, h.port)
        if key in seen:
            raise HostsError(f"host {h.label} is listed twice: list each host once (gpus: sets its ranks)")
        seen.add(key)


def load_inventory(
    path: str | Path, *, python: str | None = None, env: Mapping[str, str] | None = None
) -> list[Host]:
    """The hosts of an inventory file; ``python`` / ``env`` (command-line flags) override its defaults."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
        inv = _Inventory.model_validate(doc)
    except OSError as exc:
        raise HostsError(f"cannot read hosts file {p}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise HostsError(f"hosts file {p} is not valid YAML: {exc}") from exc
    except ValidationError as exc:
        raise HostsError(
            f"hosts file {p} is invalid (see the format in `foresight run --help`): {exc}"
        ) from exc
    d = inv.defaults
    base_env = {**d.env, **(env or {})}
    _check_env(base_env, f"{p}: defaults.env")
    hosts = []
    for i, entry in enumerate(inv.hosts):
        _check_env(entry.env, f"{p}: hosts[{i}].env")
        base = Host(
            host="",
            user=entry.user or d.user,
            port=entry.port or d.port,
            gpus=entry.gpus if entry.gpus is not None else d.gpus,
            python=python or entry.python or d.python or DEFAULT_PYTHON,
            env={**base_env, **entry.env},
            address=entry.address,
        )
        hosts.append(_parse_one(entry.host, base))
    _no_duplicates(hosts)
    return hosts


def remote_command(host: Host, args: Sequence[str], extra_env: Mapping[str, str] | None = None) -> str:
    """The shell command line run on ``host``: its env, its Python, ``args`` (all shell-quoted)."""
    env = {**host.env, **(extra_env or {})}
    words = ["exec", "env", *(f"{k}={v}" for k, v in sorted(env.items())), host.python, *args]
    return " ".join(shlex.quote(w) for w in words)


@dataclass(frozen=True)
class SshClient:
    """Builds and runs ``ssh`` command lines (the system client, never prompting)."""

    identity_file: str | None = None
    options: tuple[str, ...] = ()
    """Extra ``-o KEY=VALUE`` options (e.g. ``UserKnownHostsFile=...``)."""
    ssh: str = "ssh"
    connect_timeout_s: int = 10

    def argv(self, host: Host, command: str) -> list[str]:
        argv = [
            self.ssh,
            "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={self.connect_timeout_s}",
            # A host that stops answering is noticed within ~15 s, not at the next TCP timeout.
            "-o", "ServerAliveInterval=5",
            "-o", "ServerAliveCountMax=3",
            "-o", "LogLevel=ERROR",
        ]  # fmt: skip
        for opt in self.options:
            argv += ["-o", opt]
        if self.identity_file:
            argv += ["-i", self.identity_file, "-o", "IdentitiesOnly=yes"]
        if host.port:
            argv += ["-p", str(host.port)]
        if host.user:
            argv += ["-l", host.user]
        return [*argv, host.host.strip("[]"), "--", command]

    def run(
        self, host: Host, command: str, *, stdin: str = "", timeout_s: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(host, command),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )


# The pre-flight runs as ``python -`` on the host: this script on stdin, its answer one marked line.
_PREFLIGHT = r"""
import json, os, socket, subprocess, sys
want = json.loads(WANT)
out = {"python": sys.version.split()[0], "executable": sys.executable}
try:
    import foresight
    out["foresight"] = foresight.__version__
except Exception as exc:
    out["foresightError"] = f"{type(exc).__name__}: {exc}"
try:
    import torch
    out["torch"] = torch.__version__
except Exception as exc:
    out["torchError"] = f"{type(exc).__name__}: {exc}"
if want["gpus"]:
    try:
        def q(*a):
            cmd = ["nvidia-smi", *a, "--format=csv,noheader,nounits"]
            text = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout
            return [[c.strip() for c in line.split(",")] for line in text.splitlines() if line.strip()]
        gpus = q("--query-gpu=index,uuid")
        busy = {row[0] for row in q("--query-compute-apps=gpu_uuid")}
        out["gpus"] = [int(i) for i, uuid in gpus]
        out["freeGpus"] = [int(i) for i, uuid in gpus if uuid not in busy]
    except FileNotFoundError:
        out["gpuError"] = "nvidia-smi not found (no NVIDIA driver)"
    except Exception as exc:
        out["gpuError"] = f"nvidia-smi failed: {exc}"
if want["path"]:
    out["pathExists"] = os.path.exists(want["path"])
if want["endpoint"]:
    host, _, port = want["endpoint"].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
        out["endpointReachable"] = True
    except Exception as exc:
        out["endpointReachable"] = False
        out["endpointError"] = str(exc)
s = socket.socket()
s.bind(("", 0))
out["freePort"] = s.getsockname()[1]
s.close()
print("FORESIGHT-PREFLIGHT " + json.dumps(out), flush=True)
"""


@dataclass
class HostCheck:
    """What the pre-flight found on one host; ``problems`` empty means ready."""

    host: Host
    facts: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    gpus: list[int] = field(default_factory=list)
    """The GPU indices ranks will use on this host (empty: one CPU rank)."""

    @property
    def free_port(self) -> int | None:
        port = self.facts.get("freePort")
        return int(port) if isinstance(port, int) else None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def check_host(
    ssh: SshClient,
    host: Host,
    *,
    version: str,
    want_gpus: bool,
    dataset_path: str | None = None,
    s3_endpoint: str | None = None,
    timeout_s: float = 90.0,
) -> HostCheck:
    """Pre-flight one host (one SSH call)."""
    check = HostCheck(host=host)
    want = json.dumps({"gpus": want_gpus, "path": dataset_path, "endpoint": s3_endpoint})
    script = f"WANT = {want!r}\n{_PREFLIGHT}"
    try:
        proc = ssh.run(host, remote_command(host, ["-"]), stdin=script, timeout_s=timeout_s)
    except subprocess.TimeoutExpired:
        check.problems.append(f"no answer over SSH within {timeout_s:g}s: is the host up and reachable?")
        return check
    except FileNotFoundError:
        check.problems.append(f"the ssh client {ssh.ssh!r} is not installed here: install openssh-client")
        return check
    marked = [line for line in proc.stdout.splitlines() if line.startswith(PREFLIGHT_MARK)]
    if proc.returncode == 255 and not marked:
        check.problems.append(
            f"cannot log in over SSH ({_last_line(proc.stderr)}): check that the host is up, the user, "
            "the port, and the key (your ssh-agent or --identity-file; no password prompts in BatchMode)"
        )
        return check
    if not marked:
        why = _last_line(proc.stderr or proc.stdout)
        if proc.returncode in (126, 127):
            check.problems.append(
                f"Python {host.python!r} cannot be run there ({why}): install Python 3.11+ with the "
                "foresight runtime, or set python: in the hosts file (--remote-python) to its path"
            )
        else:
            check.problems.append(f"the pre-flight script failed with exit {proc.returncode}: {why}")
        return check
    facts: dict[str, Any] = json.loads(marked[-1][len(PREFLIGHT_MARK) :])
    check.facts = facts
    install = f"pip install 'foresight[train,s3]=={version}'"
    if "foresightError" in facts:
        check.problems.append(
            f"{host.python} (Python {facts.get('python')}) has no foresight runtime "
            f"({facts['foresightError']}): install it there ({install}), or point python: in the hosts "
            "file (--remote-python) at the environment that has it"
        )
    elif facts.get("foresight") != version:
        check.problems.append(
            f"runs foresight {facts.get('foresight')}, this machine runs {version}: install the same "
            f"version on every host ({install})"
        )
    if "torchError" in facts and "foresightError" not in facts:
        check.problems.append(
            f"torch is not importable by {host.python} ({facts['torchError']}): install foresight[train]"
        )
    if want_gpus:
        _check_gpus(check, facts)
    if dataset_path and facts.get("pathExists") is False:
        check.problems.append(
            f"the dataset {dataset_path} does not exist there: a file:// dataset must be at the same path "
            "on every host (a shared mount), or use an s3:// dataset"
        )
    if s3_endpoint and facts.get("endpointReachable") is False:
        check.problems.append(
            f"cannot reach the S3 endpoint {s3_endpoint} from there ({facts.get('endpointError')}): "
            "checkpoints and the model go to the shared store, so every host needs it"
        )
    return check


def _check_gpus(check: HostCheck, facts: Mapping[str, Any]) -> None:
    host = check.host
    if "gpuError" in facts:
        check.problems.append(
            f"the job asks for GPUs (resources.gpu) but {facts['gpuError']}: use GPU hosts or set "
            "resources.gpu: 0"
        )
        return
    free = list(facts.get("freeGpus") or [])
    busy = sorted(set(facts.get("gpus") or []) - set(free))
    wanted = host.gpus if host.gpus is not None else len(free)
    if wanted == 0 or len(free) < wanted:
        busy_text = f" (busy: {', '.join(map(str, busy))})" if busy else ""
        check.problems.append(
            f"{wanted or 'at least 1'} free GPU(s) wanted, {len(free)} free of {len(facts.get('gpus') or [])}"
            f"{busy_text}: wait for them, or lower gpus: for this host"
        )
        return
    check.gpus = free[:wanted]


def preflight(
    ssh: SshClient,
    hosts: Sequence[Host],
    *,
    version: str,
    want_gpus: bool,
    dataset_path: str | None = None,
    s3_endpoint: str | None = None,
) -> list[HostCheck]:
    """Check every host (in parallel); raise :class:`HostsError` listing every problem found."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(16, len(hosts))) as pool:
        checks = list(
            pool.map(
                lambda h: check_host(
                    ssh,
                    h,
                    version=version,
                    want_gpus=want_gpus,
                    dataset_path=dataset_path,
                    s3_endpoint=s3_endpoint,
                ),
                hosts,
            )
        )
    bad = [c for c in checks if c.problems]
    if bad:
        lines = [f"  {c.host.label}: {p}" for c in bad for p in c.problems]
        raise HostsError(
            f"{len(bad)} of {len(checks)} host(s) cannot run this job; nothing was started:\n"
            + "\n".join(lines)
        )
    return checks
