"""Generates the built-in libraries from written-down sizing rules, so a reviewer can read the rules.

``python -m foresight.library.builtin.generate`` rewrites ``postgresql-oltp.json`` and
``mysql-tidb.json`` next to this file; a unit test regenerates them and compares bytes, and another
recomputes their sha256 against :data:`foresight.library.builtin.BUILTINS`, so a changed rule or a
hand-edited case cannot slip in unnoticed (change both, on purpose).

**What these cases are, and are not.** Every case is a workload drawn at random (seeded) and the
architecture that the rules below size for it. They are *rule-derived reference cases*, not
deployments anyone ran: ``metadata.verified`` is false, ``accuracy_rating`` is null, ``industry``
says "reference (rule-derived)", and each case's ``notes`` list the rules that decided it. Rules
marked *documented* paraphrase a vendor's documentation (named in ``source``); rules marked
*assumption* are round figures chosen here for a 16-vCPU / 64 GiB node, of the order that public
sysbench / TPC-C style results report for such machines, and are labelled as assumptions in the
library itself. Replace them with your own measurements and publish your own library
(docs/library-format.md, "Publishing a library").

Only ``random.Random.random()`` is used for the draws: Python guarantees that sequence for a seed
across versions, so the files are reproducible byte for byte.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LIBRARIES", "Rule", "Spec", "build", "dumps", "main"]

VERSION = "2026.12"
TIMESTAMP = "2026-12-01T00:00:00Z"
CASES = 300
NOT_A_CUSTOMER_CASE = "Rule-derived reference case, not a customer deployment."

# Illustrative on-demand list prices (AWS, us-east-1, Linux, published 2024): assumption [COST].
NODE_MONTH = 0.768 * 730  # m6i.4xlarge, 16 vCPU / 64 GiB: $0.768 per hour
SMALL_NODE_MONTH = 0.384 * 730  # m6i.2xlarge, 8 vCPU / 32 GiB (TiDB PD)
PROXY_MONTH = 0.096 * 730  # m6i.large, 2 vCPU / 8 GiB (poolers, routers, load balancers)
STORAGE_GB_MONTH = 0.08  # gp3 block storage per GB-month, per copy of the data


@dataclass(frozen=True)
class Rule:
    id: str
    rule: str
    kind: str
    """``documented`` (a vendor document says so) or ``assumption`` (a figure chosen here)."""
    source: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "rule": self.rule, "kind": self.kind, "source": self.source}


@dataclass(frozen=True)
class Workload:
    data_gb: float
    tables: int
    qps: float
    tps: float
    connections: int
    ha: bool
    dr: bool
    rw_split: bool
    growth: float

    @property
    def data_1y(self) -> float:
        """Data to size for: today's size after one year of growth (rule G1)."""
        return self.data_gb * (1.0 + self.growth / 100.0)

    @property
    def read_qps(self) -> float:
        return max(self.qps - self.tps, 0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "total_data_size_gb": self.data_gb,
            "table_count": self.tables,
            "qps": self.qps,
            "tps": self.tps,
            "concurrent_connections": self.connections,
            "need_high_availability": self.ha,
            "need_disaster_recovery": self.dr,
            "need_read_write_split": self.rw_split,
            "data_growth_rate": self.growth,
        }


@dataclass(frozen=True)
class Sizing:
    architecture: str
    nodes: int
    shards: int
    replicas: int
    proxies: int
    cost: float
    why: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "architecture_type": self.architecture,
            "node_count": self.nodes,
            "shard_count": self.shards,
            "replica_count": self.replicas,
            "proxy_count": self.proxies,
            "estimated_cost": round(self.cost, 2),
        }


@dataclass(frozen=True)
class Ranges:
    """How workloads are drawn (log-uniform between the bounds for sizes and rates)."""

    data_gb: tuple[float, float]
    qps: tuple[float, float]
    write_fraction: tuple[float, float]
    tables: tuple[float, float]
    growth: tuple[float, float]
    p_ha: float
    p_dr: float
    p_rw_split: float


@dataclass(frozen=True)
class Spec:
    """One built-in library: its manifest fields, its rules, how workloads are drawn, the sizer."""

    name: str
    prefix: str
    seed: int
    description: str
    rules: tuple[Rule, ...]
    ranges: Ranges
    size: Callable[[Workload], Sizing]


# -- shared rules ------------------------------------------------------------------------------

G1 = Rule(
    "G1",
    "size for the data after one year at data_growth_rate percent per year",
    "assumption",
    "a common planning horizon; the growth rate is an input of every case",
)
COST = Rule(
    "COST",
    f"estimated_cost in USD per month: nodes at ${NODE_MONTH:.0f} (m6i.4xlarge), TiDB PD at "
    f"${SMALL_NODE_MONTH:.0f} (m6i.2xlarge), proxies at ${PROXY_MONTH:.0f} (m6i.large), storage at "
    f"${STORAGE_GB_MONTH}/GB-month per copy",
    "assumption",
    "illustrative AWS on-demand list prices, us-east-1, 2024; not a quote",
)


def _ceil(x: float) -> int:
    return max(0, math.ceil(x - 1e-9))


def _storage_cost(data_gb: float, copies: int) -> float:
    return data_gb * copies * STORAGE_GB_MONTH


# -- PostgreSQL (with Citus for sharding) ------------------------------------------------------

PG_READ_QPS = 20_000
PG_WRITE_TPS = 5_000
PG_DATA_GB = 2_000
PG_POOL_THRESHOLD = 300
PG_CONN_PER_POOLER = 5_000

PG_RULES = (
    G1,
    Rule(
        "P1",
        f"one node serves up to {PG_READ_QPS:,} read queries/s and {PG_WRITE_TPS:,} write "
        f"transactions/s, and keeps up to {PG_DATA_GB:,} GB",
        "assumption",
        "round figures for a 16-vCPU / 64 GiB PostgreSQL node on SSD",
    ),
    Rule(
        "P2",
        f"above {PG_POOL_THRESHOLD} client connections a PgBouncer pool multiplexes them: "
        f"ceil(connections / {PG_CONN_PER_POOLER:,}) poolers, at least 2 when high availability is needed",
        "documented",
        "PostgreSQL docs, Connections and Authentication: max_connections defaults to 100 and each "
        "connection is a server process; PostgreSQL wiki, Number Of Database Connections; PgBouncer docs "
        "(pgbouncer.org/config.html). The per-pooler figure is an assumption",
    ),
    Rule(
        "P3",
        "high availability: one synchronous streaming-replication standby per primary",
        "documented",
        "PostgreSQL docs, High Availability, Load Balancing, and Replication (synchronous_standby_names)",
    ),
    Rule(
        "P4",
        "disaster recovery: one more, asynchronous standby in another region",
        "documented",
        "PostgreSQL docs, Log-Shipping Standby Servers",
    ),
    Rule(
        "P5",
        f"read/write split: reads go to hot standbys, ceil(read QPS / {PG_READ_QPS:,}) of them (at least "
        "1), behind a routing proxy (2 with high availability)",
        "documented",
        "PostgreSQL docs, Hot Standby; Pgpool-II / HAProxy for routing. The per-node figure is P1",
    ),
    Rule(
        "P6",
        f"shard (Citus) when the one-year data exceeds {PG_DATA_GB:,} GB or writes exceed "
        f"{PG_WRITE_TPS:,} transactions/s: max(2, ceil(data / {PG_DATA_GB:,}), ceil(TPS / {PG_WRITE_TPS:,})) "
        "worker shards with the standbys of P3 / P4 each, plus a coordinator (2 with high availability)",
        "documented",
        "Citus docs, Choosing Cluster Size and distributed tables (docs.citusdata.com). Thresholds from P1",
    ),
    COST,
)


def _pg_poolers(w: Workload) -> tuple[int, str]:
    if w.connections <= PG_POOL_THRESHOLD:
        return 0, ""
    n = max(2 if w.ha else 1, _ceil(w.connections / PG_CONN_PER_POOLER))
    return n, f"{n} PgBouncer for {w.connections:,} connections [P2]"


def size_postgresql(w: Workload) -> Sizing:
    data = w.data_1y
    standbys = int(w.ha) + int(w.dr)
    why = [f"one-year data {data:,.0f} GB [G1]"]
    if w.ha:
        why.append("synchronous standby for HA [P3]")
    if w.dr:
        why.append("async standby in another region for DR [P4]")
    if data > PG_DATA_GB or w.tps > PG_WRITE_TPS:
        shards = max(2, _ceil(data / PG_DATA_GB), _ceil(w.tps / PG_WRITE_TPS))
        replicas = standbys
        extra_reads = _ceil(w.read_qps / (shards * PG_READ_QPS)) - 1
        if extra_reads > 0 or (w.rw_split and replicas == 0):
            replicas += max(extra_reads, 1)
            why.append("read replicas per shard [P5]")
        coordinators = 2 if w.ha else 1
        nodes = shards * (1 + replicas) + coordinators
        proxies, pool = _pg_poolers(w)
        why.insert(
            1,
            f"distributed: {shards} Citus shards for {data:,.0f} GB / {w.tps:,.0f} TPS, "
            f"{coordinators} coordinator(s) [P6, P1]",
        )
        arch = "distributed"
        copies = 1 + replicas
    elif w.rw_split or w.read_qps > PG_READ_QPS:
        readers = max(1, _ceil(w.read_qps / PG_READ_QPS))
        replicas = max(readers, 1 if w.ha else 0) + int(w.dr)
        nodes = 1 + replicas
        proxies = max(2 if w.ha else 1, _ceil(w.connections / PG_CONN_PER_POOLER))
        pool = f"{proxies} routing proxies [P5, P2]"
        why.insert(1, f"read/write split: {readers} read standbys for {w.read_qps:,.0f} read QPS [P5, P1]")
        arch, shards, copies = "read_write_split", 1, nodes
    elif w.ha or w.dr:
        replicas, nodes = standbys, 1 + standbys
        proxies, pool = _pg_poolers(w)
        arch, shards, copies = "primary_standby", 1, nodes
    else:
        replicas, nodes, shards, copies = 0, 1, 1, 1
        proxies, pool = _pg_poolers(w)
        arch = "standalone"
        why.insert(1, "standalone: fits one node with no availability requirement [P1]")
    if pool:
        why.append(pool)
    cost = nodes * NODE_MONTH + proxies * PROXY_MONTH + _storage_cost(data, copies)
    return Sizing(arch, nodes, shards, replicas, proxies, cost, [*why, "cost [COST]"])


# -- MySQL, and TiDB beyond one MySQL primary --------------------------------------------------

MY_READ_QPS = 15_000
MY_WRITE_TPS = 4_000
MY_DATA_GB = 3_000
MY_PROXY_THRESHOLD = 500
MY_CONN_PER_PROXY = 10_000
TIDB_QPS = 25_000
TIKV_DATA_GB = 4_000

MY_RULES = (
    G1,
    Rule(
        "M1",
        f"one MySQL node serves up to {MY_READ_QPS:,} read queries/s and {MY_WRITE_TPS:,} write "
        f"transactions/s, and keeps up to {MY_DATA_GB:,} GB; one TiDB server handles {TIDB_QPS:,} queries/s",
        "assumption",
        "round figures for a 16-vCPU / 64 GiB node on SSD",
    ),
    Rule(
        "M2",
        "high availability: a Group Replication group of 3 members (a group of n members tolerates "
        "floor((n - 1) / 2) failures) behind 2 MySQL Routers",
        "documented",
        "MySQL docs, Group Replication, Fault-tolerance; MySQL InnoDB Cluster and MySQL Router",
    ),
    Rule(
        "M3",
        "disaster recovery: one more, asynchronous replica in another region",
        "documented",
        "MySQL docs, Replication (asynchronous replication); InnoDB ClusterSet for whole-cluster DR",
    ),
    Rule(
        "M4",
        f"read/write split: ceil(read QPS / {MY_READ_QPS:,}) read replicas (at least 1) behind "
        f"ProxySQL, ceil(connections / {MY_CONN_PER_PROXY:,}) proxies (at least 2 with high availability); "
        f"above {MY_PROXY_THRESHOLD} connections a proxy multiplexes them even without a split",
        "documented",
        "MySQL docs: max_connections defaults to 151; ProxySQL docs (read/write split, multiplexing). "
        "The per-proxy figure is an assumption",
    ),
    Rule(
        "M5",
        f"move to TiDB when the one-year data exceeds {MY_DATA_GB:,} GB or writes exceed "
        f"{MY_WRITE_TPS:,} transactions/s: 3 PD, max(2, ceil(QPS / {TIDB_QPS:,})) TiDB servers, "
        f"max(replicas, ceil(replicas x data / {TIKV_DATA_GB:,} GB)) TiKV stores with 3 Raft replicas "
        "(5 with disaster recovery), 1 load balancer (2 with high availability)",
        "documented",
        "PingCAP docs, Software and Hardware Recommendations: production minimum 2 TiDB, 3 PD, 3 TiKV, keep "
        "each TiKV disk within 4 TB (PCIe SSD); PD docs, max-replicas defaults to 3, 5 for multi-region "
        "deployments. Thresholds from M1",
    ),
    COST,
)


def size_mysql_tidb(w: Workload) -> Sizing:
    data = w.data_1y
    why = [f"one-year data {data:,.0f} GB [G1]"]
    if data > MY_DATA_GB or w.tps > MY_WRITE_TPS:
        raft = 5 if w.dr else 3
        tikv = max(raft, _ceil(raft * data / TIKV_DATA_GB), _ceil(w.tps / MY_WRITE_TPS))
        tidb = max(2, _ceil(w.qps / TIDB_QPS))
        pd = 3
        proxies = 2 if w.ha else 1
        nodes = tidb + pd + tikv
        cost = (
            (tidb + tikv) * NODE_MONTH
            + pd * SMALL_NODE_MONTH
            + proxies * PROXY_MONTH
            + _storage_cost(data, raft)
        )
        why.insert(
            1,
            f"distributed (TiDB): {tidb} TiDB, {pd} PD, {tikv} TiKV with {raft} replicas for "
            f"{data:,.0f} GB / {w.tps:,.0f} TPS [M5, M1]",
        )
        return Sizing("distributed", nodes, tikv, raft - 1, proxies, cost, [*why, "cost [COST]"])
    if w.rw_split or w.read_qps > MY_READ_QPS:
        readers = max(1, _ceil(w.read_qps / MY_READ_QPS))
        replicas = max(readers, 2 if w.ha else 0) + int(w.dr)
        proxies = max(2 if w.ha else 1, _ceil(w.connections / MY_CONN_PER_PROXY))
        why.insert(
            1,
            f"read/write split: {readers} read replicas for {w.read_qps:,.0f} read QPS, {proxies} "
            "ProxySQL [M4, M1]",
        )
        arch = "read_write_split"
    elif w.ha or w.dr:
        replicas = (2 if w.ha else 0) + int(w.dr)
        proxies = 2 if w.ha else (1 if w.connections > MY_PROXY_THRESHOLD else 0)
        arch = "primary_standby"
    else:
        replicas = 0
        proxies = 1 if w.connections > MY_PROXY_THRESHOLD else 0
        arch = "standalone"
        why.insert(1, "standalone: fits one node with no availability requirement [M1]")
    if w.ha:
        why.append("Group Replication of 3 for HA [M2]")
    if w.dr:
        why.append("async replica in another region for DR [M3]")
    if proxies and arch != "read_write_split":
        why.append(f"{proxies} proxy/router [M2, M4]")
    nodes = 1 + replicas
    cost = nodes * NODE_MONTH + proxies * PROXY_MONTH + _storage_cost(data, nodes)
    return Sizing(arch, nodes, 1, replicas, proxies, cost, [*why, "cost [COST]"])


# -- drawing workloads and writing the files ----------------------------------------------------


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(math.log(lo) + rng.random() * (math.log(hi) - math.log(lo)))


def draw_workload(rng: random.Random, r: Ranges) -> Workload:
    """One workload; every figure comes from ``rng.random()`` (reproducible across Python versions)."""
    data = round(_log_uniform(rng, *r.data_gb), 1)
    qps = round(_log_uniform(rng, *r.qps))
    write = r.write_fraction[0] + rng.random() * (r.write_fraction[1] - r.write_fraction[0])
    tps = round(qps * write, 1)
    # Connections grow with load but far slower than 1:1 (clients keep connections open and idle).
    connections = int(min(50_000, max(10, round(_log_uniform(rng, qps / 200.0, qps / 10.0)))))
    tables = round(_log_uniform(rng, *r.tables))
    growth = round(r.growth[0] + rng.random() * (r.growth[1] - r.growth[0]))
    ha = rng.random() < r.p_ha
    dr = rng.random() < r.p_dr
    rw = rng.random() < r.p_rw_split
    return Workload(data, tables, float(qps), tps, connections, ha, dr, rw, float(growth))


def _scenario(w: Workload, s: Sizing) -> str:
    flags = [n for n, on in (("HA", w.ha), ("DR", w.dr), ("read/write split", w.rw_split)) if on]
    return (
        f"{s.architecture}: {w.data_gb:,.0f} GB growing {w.growth:.0f}%/year, {w.qps:,.0f} QPS, "
        f"{w.tps:,.0f} TPS, {w.connections:,} connections" + (", " + ", ".join(flags) if flags else "")
    )


def build(spec: Spec, n_cases: int = CASES, *, seed: int | None = None) -> dict[str, Any]:
    """The library as one JSON document (the single-document form), ``n_cases`` cases."""
    rng = random.Random(spec.seed if seed is None else seed)
    cases = []
    width = max(4, len(str(n_cases)))
    for i in range(1, n_cases + 1):
        w = draw_workload(rng, spec.ranges)
        s = spec.size(w)
        cases.append(
            {
                "id": f"{spec.prefix}-{i:0{width}d}",
                "source": spec.name,
                "timestamp": TIMESTAMP,
                "input": w.to_json(),
                "output": s.to_json(),
                "metadata": {
                    "industry": "reference (rule-derived)",
                    "scenario": _scenario(w, s),
                    "verified": False,
                    "accuracy_rating": None,
                    "notes": f"{NOT_A_CUSTOMER_CASE} Sized by the rules of this library "
                    f"({'; '.join(s.why)}); each rule's source is in the manifest's x-rules.",
                },
            }
        )
    return {
        "schemaVersion": 1,
        "name": spec.name,
        "version": VERSION,
        "description": spec.description,
        "licence": "Apache-2.0",
        "homepage": "https://github.com/foresight-dev/foresight/blob/main/docs/library-format.md",
        "createdAt": TIMESTAMP,
        "currency": "USD",
        "costPeriod": "month",
        "x-generator": "foresight.library.builtin.generate",
        "x-rules": [r.to_json() for r in spec.rules],
        "cases": cases,
    }


def dumps(doc: dict[str, Any]) -> str:
    """The manifest indented, then one case per line (readable diffs when a rule changes)."""
    head = json.dumps({k: v for k, v in doc.items() if k != "cases"}, indent=2, ensure_ascii=False)
    lines = ",\n".join("    " + json.dumps(c, ensure_ascii=False, sort_keys=True) for c in doc["cases"])
    return head[:-2] + ',\n  "cases": [\n' + lines + "\n  ]\n}\n"


LIBRARIES: dict[str, Spec] = {
    "postgresql-oltp": Spec(
        name="postgresql-oltp",
        prefix="pg",
        seed=20261201,
        description=(
            "Reference sizings of PostgreSQL OLTP deployments (standalone, primary with standbys, read/write "
            "split behind a proxy, Citus sharding), derived from documented PostgreSQL / PgBouncer / Citus "
            "practice plus round per-node capacity assumptions, for workloads drawn at random. Rule-derived "
            "reference cases, not customer deployments: x-rules lists every rule with its source and says "
            "which figures are assumptions."
        ),
        rules=PG_RULES,
        ranges=Ranges(
            data_gb=(5, 8000),
            qps=(200, 150_000),
            write_fraction=(0.05, 0.4),
            tables=(10, 3000),
            growth=(0, 120),
            p_ha=0.6,
            p_dr=0.25,
            p_rw_split=0.2,
        ),
        size=size_postgresql,
    ),
    "mysql-tidb": Spec(
        name="mysql-tidb",
        prefix="my",
        seed=20261202,
        description=(
            "Reference sizings of MySQL deployments (standalone, Group Replication, read/write split behind "
            "ProxySQL) and of TiDB clusters beyond one MySQL primary, derived from documented MySQL, "
            "ProxySQL and PingCAP sizing guidance plus round per-node capacity assumptions, for workloads "
            "drawn at random. Rule-derived reference cases, not customer deployments: x-rules lists every "
            "rule with its source and says which figures are assumptions."
        ),
        rules=MY_RULES,
        ranges=Ranges(
            data_gb=(10, 30_000),
            qps=(500, 400_000),
            write_fraction=(0.05, 0.5),
            tables=(20, 20_000),
            growth=(0, 150),
            p_ha=0.7,
            p_dr=0.3,
            p_rw_split=0.25,
        ),
        size=size_mysql_tidb,
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m foresight.library.builtin.generate", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent, help="directory to write into")
    parser.add_argument("--cases", type=int, default=CASES, help="cases per library")
    parser.add_argument("--only", choices=sorted(LIBRARIES), help="one library only")
    args = parser.parse_args(argv)
    for name, spec in LIBRARIES.items():
        if args.only and name != args.only:
            continue
        path = args.out / f"{name}.json"
        path.write_text(dumps(build(spec, args.cases)), encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
