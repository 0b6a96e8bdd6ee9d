"""A Kubernetes API server emulator for end-to-end tests: kmock's ``KubernetesEmulator``, extended.

kmock 0.8 ships storage, not an API server (see FACTS.md for the gaps). :class:`ApiServer`
subclasses ``kmock.KubernetesEmulator`` and keeps kmock's HTTP server, request parsing, bundled
resource discovery data and request recording, but replaces the object-serving part with the API
server behaviour that kopf and kubectl rely on:

- CRDs become discoverable when applied (short names, categories, subresources, printer columns);
- uid / global monotonic ``resourceVersion`` / ``creationTimestamp``; ``generation`` = 1 on create,
  bumped on changes outside ``metadata`` and ``status``; the ``status`` subresource only changes
  status and the main resource ignores status changes;
- list + watch honour ``resourceVersion`` (no lost events), bookmarks, ``timeoutSeconds``,
  label and field selectors (any dotted field, e.g. ``involvedObject.name``);
- merge, strategic-merge (lists of named items merged by name), JSON-patch (failed ``test`` = 422)
  and a simple server-side apply (create, or merge the applied fields);
- ``generateName``; namespaces; Table output (``as=Table``) with a CRD's printer columns;
- garbage collection by ``ownerReferences`` (cascading) and finalizers (``deletionTimestamp``);
- CRD schema admission (:mod:`tests.cluster.schema`): defaults, pruning, validation, CEL;
  rejections are 422 ``Status`` objects with ``details.causes[].field``;
- a request log (:attr:`ApiServer.log`) for checking which API calls a client made.

:class:`Cluster` runs it on 127.0.0.1 on a free port in a thread with its own event loop and writes
a kubeconfig; :class:`ApiClient` is a small synchronous client for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import json
import pathlib
import random
import re
import string
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
import jsonpatch
import kmock
import requests
import yaml
from jsonpath_ng.ext import parse as jsonpath_parse
from kmock._internal import rendering

from tests.cluster import schema as schema_mod

Obj = dict[str, Any]
TABLE_MEDIA = "as=Table"


class ApiError(Exception):
    """An API failure rendered as a Kubernetes ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> Obj:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


@dataclass
class ResourceType:
    """What the server knows about one resource (plural) of one group/version."""

    group: str
    version: str
    plural: str
    kind: str
    singular: str
    namespaced: bool
    shortnames: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    subresources: set[str] = field(default_factory=set)
    verbs: list[str] = field(
        default_factory=lambda: [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    )
    printer_columns: list[Obj] = field(default_factory=list)
    schema: Obj | None = None
    crd: str | None = None  # the CRD's name when this is a custom resource

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        # Storage is per group+plural: every served version of a kind shares the same objects.
        return (self.group, self.plural)


@dataclass(frozen=True)
class RequestRecord:
    """One API call as the server saw it (for RBAC-style assertions in tests)."""

    method: str
    path: str
    verb: str  # get, list, watch, create, update, patch, delete, deletecollection, or "" (non-resource)
    group: str | None
    resource: str | None
    subresource: str | None
    namespace: str | None
    name: str | None
    user_agent: str
    query: str


def now_iso() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return "<invalid>"
    seconds = int((datetime.datetime.now(tz=datetime.UTC) - then).total_seconds())
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400 * 2:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def jsonpath_values(obj: Obj, path: str) -> list[Any]:
    """Evaluate a printer-column JSONPath (``.a.b``, ``.a[0]``, ``.a[?(@.type=="Ready")].status``)."""
    expr = path.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1]
    if not expr.startswith("$"):
        expr = "$" + expr
    try:
        return [m.value for m in jsonpath_parse(expr).find(obj)]
    except Exception:  # a malformed column path shows as empty, like kubectl does
        return []


def dotted(obj: Obj, path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def parse_label_selector(text: str) -> list[tuple[str, str, list[str]]]:
    """Parse ``a=b,c!=d,e in (x,y),f notin (z),g,!h`` into (key, op, values) terms."""
    terms: list[tuple[str, str, list[str]]] = []
    for raw in re.split(r",(?![^()]*\))", text):
        part = raw.strip()
        if not part:
            continue
        m = re.match(r"^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$", part)
        if m:
            values = [v.strip() for v in m.group(3).split(",") if v.strip()]
            terms.append((m.group(1), m.group(2), values))
        elif "!=" in part:
            k, v = part.split("!=", 1)
            terms.append((k.strip(), "!=", [v.strip()]))
        elif "==" in part:
            k, v = part.split("==", 1)
            terms.append((k.strip(), "=", [v.strip()]))
        elif "=" in part:
            k, v = part.split("=", 1)
            terms.append((k.strip(), "=", [v.strip()]))
        elif part.startswith("!"):
            terms.append((part[1:].strip(), "!exists", []))
        else:
            terms.append((part, "exists", []))
    return terms


def labels_match(labels: dict[str, str], terms: list[tuple[str, str, list[str]]]) -> bool:
    for key, op, values in terms:
        have = labels.get(key)
        if op == "=" and have != values[0]:
            return False
        if op == "!=" and have == values[0]:
            return False
        if op == "in" and have not in values:
            return False
        if op == "notin" and have in values:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "!exists" and key in labels:
            return False
    return True


def parse_field_selector(text: str) -> list[tuple[str, bool, str]]:
    terms: list[tuple[str, bool, str]] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        if "!=" in part:
            k, v = part.split("!=", 1)
            terms.append((k.strip(), False, v.strip()))
        else:
            k, v = part.replace("==", "=").split("=", 1)
            terms.append((k.strip(), True, v.strip()))
    return terms


def fields_match(obj: Obj, terms: list[tuple[str, bool, str]]) -> bool:
    for path, equal, want in terms:
        have = dotted(obj, path)
        have_s = "" if have is None else str(have)
        if (have_s == want) != equal:
            return False
    return True


def parse_api_path(
    path: str,
) -> tuple[str | None, str | None, str | None, str | None, str | None, str | None]:
    """Split an API path into (group, version, plural, namespace, name, subresource).

    ``/api/v1/namespaces/NS`` is the Namespace object NS (not "the namespace NS" with no
    resource); ``/api/v1/namespaces/NS/pods/P/log`` is a namespaced subresource.
    """
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 2 and parts[0] == "apis":
        if len(parts) == 2:
            return parts[1], None, None, None, None, None
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None, None, None, None, None, None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    plural = rest[0] if rest else None
    name = rest[1] if len(rest) > 1 else None
    sub = "/".join(rest[2:]) or None
    return group, version, plural, namespace, name, sub


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """A simplified strategic merge patch: merge patch, but lists of named dicts merge by ``name``.

    Enough for what kubectl apply sends for built-in kinds (``$setElementOrder``, ``$patch``
    directives on containers, env, volumes, ports): those lists are keyed by ``name``.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    orders = {k.split("/", 1)[1]: v for k, v in patch.items() if k.startswith("$setElementOrder/")}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and _named_list(value) and _named_list(result.get(key)):
            merged = {item["name"]: copy.deepcopy(item) for item in result[key]}
            for item in value:
                if item.get("$patch") == "delete":
                    merged.pop(item["name"], None)
                else:
                    merged[item["name"]] = strategic_merge_patch(merged.get(item["name"]), item)
            order = [o["name"] for o in orders.get(key, []) if isinstance(o, dict) and "name" in o]
            names = order + [n for n in merged if n not in order]
            result[key] = [merged[n] for n in names if n in merged]
        elif isinstance(value, dict):
            result[key] = strategic_merge_patch(result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _named_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, dict) and "name" in i for i in value)


def _strip(obj: Obj, *keys: str) -> Obj:
    return {k: v for k, v in obj.items() if k not in keys}


class ApiServer(kmock.KubernetesEmulator):
    """The emulated API server (one per :class:`Cluster`); runs inside the cluster's event loop."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.types: dict[tuple[str, str, str], ResourceType] = {}
        self.store: dict[tuple[str, str], dict[tuple[str | None, str], Obj]] = {}
        self.rv = 0
        self.history: list[tuple[int, tuple[str, str], str, Obj]] = []
        self.watchers: list[asyncio.Queue[tuple[tuple[str, str], str, Obj]]] = []
        self.log: list[RequestRecord] = []
        self.log_provider: Callable[[str | None, str], str | None] | None = None
        # Fields the schema pruned, as "Kind namespace/name: path": a real API server drops them
        # silently, so tests assert this stays empty to catch a writer the schema does not know.
        self.pruned: list[str] = []
        self.resources.load_bundled()
        for res in list(self.resources):
            info = self.resources[res]
            if (
                not isinstance(res, kmock.resource)
                or res.group is None
                or res.version is None
                or res.plural is None
            ):
                continue
            self.types[(res.group, res.version, res.plural)] = ResourceType(
                group=res.group,
                version=res.version,
                plural=res.plural,
                kind=info.kind or res.plural.capitalize(),
                singular=info.singular or res.plural,
                namespaced=bool(info.namespaced),
                shortnames=sorted(info.shortnames),
                categories=sorted(info.categories),
                subresources=set(info.subresources),
                verbs=sorted(info.verbs),
            )
        for ns in ("default", "kube-system", "kube-public"):
            self._commit_create(self.types[("", "v1", "namespaces")], {"metadata": {"name": ns}})

    # ----------------------------------------------------------------------------- dispatching
    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # kmock's own path parser fails on ``/api/v1/namespaces`` (FACTS.md), so parse here.
        body = await raw_request.read()
        text = body.decode("utf-8", errors="replace")
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        group, version, plural, namespace, name, sub = parse_api_path(raw_request.path)
        resource = None if group is None else kmock.resource(group=group, version=version, plural=plural)
        request = rendering.Request(
            id=len(self._requests),
            raw_request=raw_request,
            url=raw_request.url,
            method=raw_request.method,
            params=dict(raw_request.query),
            headers=dict(raw_request.headers),
            data=data,
            body=body,
            text=text,
            resource=resource,
            namespace=namespace,
            name=name,
            subresource=sub,
        )
        self._requests.append(request)
        try:
            return await self._handle(request)
        except Exception as exc:  # an emulator bug: answer 500 with the traceback, like kmock does
            return await self._render_error(exc)

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        raw = request._raw_request
        assert raw is not None
        params = dict(raw.query)
        verb = self._verb(request, params)
        self.log.append(
            RequestRecord(
                method=str(raw.method),
                path=raw.path,
                verb=verb,
                group=request.resource.group if request.resource else None,
                resource=request.resource.plural if request.resource else None,
                subresource=request.subresource,
                namespace=request.namespace,
                name=request.name,
                user_agent=raw.headers.get("User-Agent", ""),
                query=raw.query_string,
            )
        )
        try:
            if raw.path in ("/version", "/version/"):
                return await super()._handle(request)
            if raw.path.rstrip("/") in ("/api", "/apis"):
                return self._json(self._discovery_root(raw.path))
            if request.resource is None:
                raise ApiError(
                    404, "NotFound", f"the server could not find the requested resource ({raw.path})"
                )
            if request.resource.plural is None:
                return self._json(self._discovery(request.resource.group or "", request.resource.version))
            rtype = self._type(request)
            if verb == "watch":
                return await self._watch(request, rtype, params)
            result = self._dispatch(request, rtype, params, verb)
            if isinstance(result, aiohttp.web.StreamResponse):
                return result
            if TABLE_MEDIA in raw.headers.get("Accept", "") and verb in ("get", "list"):
                result = self._table(rtype, result, params)
            return self._json(result, 201 if verb == "create" else 200)
        except ApiError as exc:
            return self._json(exc.status(), exc.code)

    @staticmethod
    def _json(body: Obj, status: int = 200) -> aiohttp.web.Response:
        return aiohttp.web.Response(text=json.dumps(body), status=status, content_type="application/json")

    @staticmethod
    def _verb(request: rendering.Request, params: dict[str, str]) -> str:
        method = str(request.method.value if request.method else "").upper()
        if request.resource is None or request.resource.plural is None:
            return ""
        if method == "GET":
            if params.get("watch") in ("true", "1"):
                return "watch"
            return "get" if request.name else "list"
        if method == "POST":
            return "create"
        if method == "PUT":
            return "update"
        if method == "PATCH":
            return "patch"
        if method == "DELETE":
            return "delete" if request.name else "deletecollection"
        return method.lower()

    def _type(self, request: rendering.Request) -> ResourceType:
        res = request.resource
        assert res is not None
        rtype = self.types.get((res.group or "", res.version or "", res.plural or ""))
        if rtype is None:
            raise ApiError(
                404, "NotFound", f"the server could not find the requested resource ({res.plural})"
            )
        return rtype

    def _dispatch(
        self, request: rendering.Request, rtype: ResourceType, params: dict[str, str], verb: str
    ) -> Obj | aiohttp.web.StreamResponse:
        ns = request.namespace if rtype.namespaced else None
        sub = request.subresource
        if sub and sub not in rtype.subresources:
            raise ApiError(
                404, "NotFound", f"the server could not find the requested resource ({rtype.plural}/{sub})"
            )
        if sub == "log" and verb == "get":
            text = self.log_provider(ns, request.name or "") if self.log_provider else None
            if text is None:
                raise ApiError(404, "NotFound", f'no logs for pod "{request.name}" (is the kubelet running?)')
            return aiohttp.web.Response(text=text, content_type="text/plain")
        dry_run = params.get("dryRun") == "All"
        sent_type = (request._raw_request.content_type if request._raw_request else "") or ""
        if "protobuf" in sent_type or "cbor" in sent_type:
            # kubectl's typed generators (`kubectl create namespace|configmap|secret`, `kubectl run`)
            # send protobuf; without the generated Kubernetes protos the emulator cannot read it.
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the API emulator accepts JSON and YAML only, not {sent_type}: write the object as YAML "
                "and use `kubectl apply -f` / `kubectl create -f` instead of a kubectl generator",
            )
        if verb == "get":
            return self._present(rtype, self._get(rtype, ns, request.name or ""))
        if verb == "list":
            return self._list(rtype, request.namespace if rtype.namespaced else None, params)
        if verb == "create":
            body = request.data if isinstance(request.data, dict) else self._parse_body(request.text)
            if ns:
                body.setdefault("metadata", {}).setdefault("namespace", ns)
            return self._present(rtype, self._create(rtype, body, params, dry_run))
        if verb == "update":
            body = request.data if isinstance(request.data, dict) else self._parse_body(request.text)
            return self._present(
                rtype, self._update(rtype, ns, request.name or "", body, sub, params, dry_run)
            )
        if verb == "patch":
            content_type = (request._raw_request.content_type if request._raw_request else "") or ""
            return self._present(
                rtype,
                self._patch(rtype, ns, request.name or "", request.text, content_type, sub, params, dry_run),
            )
        if verb == "delete":
            options = request.data if isinstance(request.data, dict) else {}
            policy = params.get("propagationPolicy") or options.get("propagationPolicy") or "Background"
            return self._present(rtype, self._delete(rtype, ns, request.name or "", policy, dry_run))
        if verb == "deletecollection":
            listed = self._list(rtype, request.namespace if rtype.namespaced else None, params)
            for item in listed["items"]:
                meta = item["metadata"]
                self._delete(rtype, meta.get("namespace"), meta["name"], "Background", dry_run)
            return listed
        raise ApiError(405, "MethodNotAllowed", f"{verb} is not supported on {rtype.plural}")

    @staticmethod
    def _parse_body(text: str) -> Obj:
        try:
            body = yaml.safe_load(text) if text else {}
        except yaml.YAMLError as exc:
            raise ApiError(400, "BadRequest", f"the request body is neither JSON nor YAML: {exc}") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body must be an object")
        return body

    # ----------------------------------------------------------------------------- discovery
    def _discovery_root(self, path: str) -> Obj:
        if path.startswith("/api/") or path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        groups: dict[str, list[str]] = {}
        for group, version, _ in self.types:
            if group and version not in groups.setdefault(group, []):
                groups[group].append(version)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [self._group_doc(g, vs) for g, vs in sorted(groups.items())],
        }

    @staticmethod
    def _group_doc(group: str, versions: list[str]) -> Obj:
        ordered = sorted(versions, key=lambda v: (("alpha" in v) + 2 * ("beta" in v) == 0, v), reverse=True)
        return {
            "name": group,
            "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in ordered],
            "preferredVersion": {"groupVersion": f"{group}/{ordered[0]}", "version": ordered[0]},
        }

    def _discovery(self, group: str, version: str | None) -> Obj:
        if version is None:
            versions = sorted({v for g, v, _ in self.types if g == group})
            if not versions:
                raise ApiError(
                    404, "NotFound", f"the server could not find the requested resource (group {group})"
                )
            doc = self._group_doc(group, versions)
            return {"kind": "APIGroup", "apiVersion": "v1", **doc}
        types = [t for (g, v, _), t in self.types.items() if g == group and v == version]
        if not types:
            raise ApiError(
                404, "NotFound", f"the server could not find the requested resource ({group}/{version})"
            )
        resources: list[Obj] = []
        for t in sorted(types, key=lambda t: t.plural):
            resources.append(
                {
                    "name": t.plural,
                    "singularName": t.singular,
                    "namespaced": t.namespaced,
                    "kind": t.kind,
                    "verbs": t.verbs,
                    "shortNames": t.shortnames,
                    "categories": t.categories,
                }
            )
            for sub in sorted(t.subresources):
                resources.append(
                    {
                        "name": f"{t.plural}/{sub}",
                        "singularName": "",
                        "namespaced": t.namespaced,
                        "kind": t.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def _register_crd(self, crd: Obj) -> None:
        spec = crd.get("spec", {})
        names = spec.get("names", {})
        group = spec.get("group", "")
        for gone in [k for k, t in self.types.items() if t.crd == crd["metadata"]["name"]]:
            del self.types[gone]
        for ver in spec.get("versions", []):
            if not ver.get("served", True):
                continue
            self.types[(group, ver["name"], names["plural"])] = ResourceType(
                group=group,
                version=ver["name"],
                plural=names["plural"],
                kind=names["kind"],
                singular=names.get("singular") or names["kind"].lower(),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                shortnames=list(names.get("shortNames") or []),
                categories=list(names.get("categories") or []),
                subresources=set((ver.get("subresources") or {}).keys()),
                printer_columns=list(ver.get("additionalPrinterColumns") or []),
                schema=(ver.get("schema") or {}).get("openAPIV3Schema"),
                crd=crd["metadata"]["name"],
            )
        self.store.setdefault((group, names["plural"]), {})

    def _unregister_crd(self, crd: Obj) -> None:
        name = crd["metadata"]["name"]
        gone = [k for k, t in self.types.items() if t.crd == name]
        for k in gone:
            rtype = self.types.pop(k)
            self.store.pop(rtype.key, None)

    # ----------------------------------------------------------------------------- storage
    def _bucket(self, rtype: ResourceType) -> dict[tuple[str | None, str], Obj]:
        return self.store.setdefault(rtype.key, {})

    def _get(self, rtype: ResourceType, ns: str | None, name: str) -> Obj:
        obj = self._bucket(rtype).get((ns, name))
        if obj is None:
            raise ApiError(
                404,
                "NotFound",
                f'{rtype.plural}{"." + rtype.group if rtype.group else ""} "{name}" not found',
                {"name": name, "group": rtype.group, "kind": rtype.plural},
            )
        return obj

    def _present(self, rtype: ResourceType, obj: Obj) -> Obj:
        out = copy.deepcopy(obj)
        out["apiVersion"] = rtype.api_version
        out["kind"] = rtype.kind
        return out

    def _emit(self, rtype: ResourceType, kind: str, obj: Obj) -> None:
        snapshot = self._present(rtype, obj)
        self.history.append((int(obj["metadata"]["resourceVersion"]), rtype.key, kind, snapshot))
        if len(self.history) > 20000:
            del self.history[:5000]
        for queue in self.watchers:
            queue.put_nowait((rtype.key, kind, snapshot))

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def _list(self, rtype: ResourceType, ns: str | None, params: dict[str, str]) -> Obj:
        items = [self._present(rtype, o) for o in self._select(rtype, ns, params)]
        items.sort(key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))
        return {
            "apiVersion": rtype.api_version,
            "kind": f"{rtype.kind}List",
            "metadata": {"resourceVersion": str(self.rv)},
            "items": items,
        }

    def _select(self, rtype: ResourceType, ns: str | None, params: dict[str, str]) -> list[Obj]:
        labels = parse_label_selector(params.get("labelSelector", ""))
        fields = parse_field_selector(params.get("fieldSelector", ""))
        return [
            obj
            for (obj_ns, _), obj in self._bucket(rtype).items()
            if (ns is None or obj_ns == ns) and self._matches(obj, labels, fields)
        ]

    @staticmethod
    def _matches(
        obj: Obj, labels: list[tuple[str, str, list[str]]], fields: list[tuple[str, bool, str]]
    ) -> bool:
        return labels_match(obj.get("metadata", {}).get("labels") or {}, labels) and fields_match(obj, fields)

    # ----------------------------------------------------------------------------- writes
    def _create(self, rtype: ResourceType, body: Obj, params: dict[str, str], dry_run: bool = False) -> Obj:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            if meta.get("generateName"):
                suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
                meta["name"] = f"{meta['generateName']}{suffix}"
            else:
                raise ApiError(
                    422,
                    "Invalid",
                    f"{rtype.kind} is invalid: metadata.name: Required value: "
                    "name or generateName is required",
                    {
                        "kind": rtype.kind,
                        "causes": [{"reason": "FieldValueRequired", "field": "metadata.name"}],
                    },
                )
        if rtype.namespaced:
            meta["namespace"] = meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        key = (meta.get("namespace"), meta["name"])
        if key in self._bucket(rtype):
            raise ApiError(
                409,
                "AlreadyExists",
                f'{rtype.plural}{"." + rtype.group if rtype.group else ""} "{meta["name"]}" already exists',
                {"name": meta["name"], "group": rtype.group, "kind": rtype.plural},
            )
        if "status" in rtype.subresources and rtype.crd:
            obj.pop("status", None)  # the status subresource owns status (CRDs drop it on create)
        obj = self._admit(rtype, obj, None, params)
        if dry_run:
            return obj
        return self._commit_create(rtype, obj)

    def _commit_create(self, rtype: ResourceType, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_iso()
        meta["generation"] = 1
        meta["resourceVersion"] = self._next_rv()
        meta.pop("deletionTimestamp", None)
        if rtype.plural == "namespaces":
            obj.setdefault("status", {"phase": "Active"})
        obj["apiVersion"] = rtype.api_version
        obj["kind"] = rtype.kind
        self._bucket(rtype)[(meta.get("namespace"), meta["name"])] = obj
        if rtype.plural == "customresourcedefinitions" and rtype.group == "apiextensions.k8s.io":
            self._register_crd(obj)
            obj["status"] = self._crd_status(obj)
        self._emit(rtype, "ADDED", obj)
        return obj

    @staticmethod
    def _crd_status(crd: Obj) -> Obj:
        names = crd.get("spec", {}).get("names", {})
        return {
            "acceptedNames": names,
            "storedVersions": [
                v["name"] for v in crd.get("spec", {}).get("versions", []) if v.get("storage")
            ],
            "conditions": [
                {"type": t, "status": "True", "reason": r, "message": m, "lastTransitionTime": now_iso()}
                for t, r, m in (
                    ("NamesAccepted", "NoConflicts", "no conflicts found"),
                    ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                )
            ],
        }

    def _admit(self, rtype: ResourceType, obj: Obj, old: Obj | None, params: dict[str, str]) -> Obj:
        if rtype.schema is None:
            return obj
        admitted, unknown, errors = schema_mod.admit(obj, rtype.schema, old)
        name = obj.get("metadata", {}).get("name", "")
        where = f"{rtype.kind} {obj.get('metadata', {}).get('namespace') or ''}/{name}"
        self.pruned += [f"{where}: {path}" for path in unknown]
        if unknown and params.get("fieldValidation") == "Strict":
            listed = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise ApiError(
                400,
                "BadRequest",
                f"{rtype.kind} in version {rtype.version!r} cannot be handled as a "
                f"{rtype.kind}: strict decoding error: {listed}",
            )
        if errors:
            raise ApiError(
                422,
                "Invalid",
                f'{rtype.kind}.{rtype.group} "{name}" is invalid: ' + ", ".join(str(e) for e in errors),
                {
                    "name": name,
                    "group": rtype.group,
                    "kind": rtype.kind,
                    "causes": [e.as_cause() for e in errors],
                },
            )
        return admitted

    def _update(
        self,
        rtype: ResourceType,
        ns: str | None,
        name: str,
        body: Obj,
        sub: str | None,
        params: dict[str, str],
        dry_run: bool = False,
    ) -> Obj:
        bucket = self._bucket(rtype)
        if (ns, name) not in bucket and sub is None:
            body.setdefault("metadata", {})["name"] = name
            if ns:
                body["metadata"]["namespace"] = ns
            return self._create(rtype, body, params, dry_run)  # PUT creates, as for the real API
        old = self._get(rtype, ns, name)
        wanted_rv = body.get("metadata", {}).get("resourceVersion")
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {rtype.plural} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
                {"name": name, "group": rtype.group, "kind": rtype.plural},
            )
        return self._replace(rtype, old, body, sub, params, dry_run)

    def _replace(
        self, rtype: ResourceType, old: Obj, new: Obj, sub: str | None, params: dict[str, str], dry_run: bool
    ) -> Obj:
        """Store ``new`` in place of ``old`` under the rules of the main resource or its status."""
        new = copy.deepcopy(new)
        if sub == "status":
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
            # As the real API server: a status write is defaulted, pruned and validated against the
            # schema too (an unknown status field is dropped silently, a bad value is a 422).
            result = self._admit(rtype, result, old, params)
        else:
            result = new
            if "status" in rtype.subresources:
                # The main resource ignores status changes when a status subresource exists.
                if "status" in old:
                    result["status"] = copy.deepcopy(old["status"])
                else:
                    result.pop("status", None)
            meta = result.setdefault("metadata", {})
            old_meta = old["metadata"]
            for kept in ("uid", "creationTimestamp", "generation", "namespace", "name", "deletionTimestamp"):
                if kept in old_meta:
                    meta[kept] = old_meta[kept]
                else:
                    meta.pop(kept, None)
            if old_meta.get("deletionTimestamp") and len(meta.get("finalizers") or []) > len(
                old_meta.get("finalizers") or []
            ):
                pass  # Kubernetes forbids adding finalizers while deleting; be lenient, tests never do it
            if _strip(result, "metadata", "status", "apiVersion", "kind") != _strip(
                old, "metadata", "status", "apiVersion", "kind"
            ):
                meta["generation"] = int(old_meta.get("generation", 1)) + 1
            result = self._admit(rtype, result, old, params)
        if dry_run:
            return result
        result["metadata"]["resourceVersion"] = self._next_rv()
        result["apiVersion"] = rtype.api_version
        result["kind"] = rtype.kind
        meta = result["metadata"]
        self._bucket(rtype)[(meta.get("namespace"), meta["name"])] = result
        if rtype.crd is None and rtype.plural == "customresourcedefinitions":
            self._register_crd(result)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._emit(rtype, "MODIFIED", result)
            self._remove(rtype, result, "Background")
        else:
            self._emit(rtype, "MODIFIED", result)
        return result

    def _patch(
        self,
        rtype: ResourceType,
        ns: str | None,
        name: str,
        text: str,
        content_type: str,
        sub: str | None,
        params: dict[str, str],
        dry_run: bool = False,
    ) -> Obj:
        bucket = self._bucket(rtype)
        if content_type == "application/apply-patch+yaml":
            applied = self._parse_body(text)
            if (ns, name) not in bucket:
                applied.setdefault("metadata", {})["name"] = name
                if ns:
                    applied["metadata"]["namespace"] = ns
                return self._create(rtype, applied, params, dry_run)
            old = self._get(rtype, ns, name)
            return self._replace(rtype, old, merge_patch(old, applied), sub, params, dry_run)
        old = self._get(rtype, ns, name)
        try:
            patch = json.loads(text or "null")
        except json.JSONDecodeError as exc:
            raise ApiError(400, "BadRequest", f"the patch is not valid JSON: {exc}") from exc
        if content_type == "application/json-patch+json":
            try:
                new = jsonpatch.apply_patch(old, patch)
            except jsonpatch.JsonPatchTestFailed as exc:
                raise ApiError(
                    422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
                ) from exc
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise ApiError(422, "Invalid", f"the JSON patch cannot be applied: {exc}") from exc
        elif content_type == "application/strategic-merge-patch+json":
            new = strategic_merge_patch(old, patch)
        else:
            new = merge_patch(old, patch)
        new_rv = (new.get("metadata") or {}).get("resourceVersion")
        if new_rv and new_rv != old["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {rtype.plural} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
            )
        return self._replace(rtype, old, new, sub, params, dry_run)

    def _delete(
        self, rtype: ResourceType, ns: str | None, name: str, policy: str, dry_run: bool = False
    ) -> Obj:
        obj = self._get(rtype, ns, name)
        if dry_run:
            return obj
        meta = obj["metadata"]
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = now_iso()
                meta["deletionGracePeriodSeconds"] = 0
                meta["resourceVersion"] = self._next_rv()
                self._emit(rtype, "MODIFIED", obj)
            if policy == "Foreground":
                self._collect_dependents(meta["uid"], "Background")
            return obj
        self._remove(rtype, obj, policy)
        return obj

    def _remove(self, rtype: ResourceType, obj: Obj, policy: str) -> None:
        meta = obj["metadata"]
        self._bucket(rtype).pop((meta.get("namespace"), meta["name"]), None)
        meta["resourceVersion"] = self._next_rv()
        self._emit(rtype, "DELETED", obj)
        if rtype.plural == "customresourcedefinitions" and rtype.group == "apiextensions.k8s.io":
            self._unregister_crd(obj)
        if rtype.plural == "namespaces":
            for other in list(self.types.values()):
                if other.namespaced:
                    for (obj_ns, obj_name), _ in list(self._bucket(other).items()):
                        if obj_ns == meta["name"]:
                            with contextlib.suppress(ApiError):
                                self._delete(other, obj_ns, obj_name, "Background")
        if policy == "Orphan":
            self._orphan_dependents(meta["uid"])
        else:
            self._collect_dependents(meta["uid"], policy)

    def _dependents(self, uid: str) -> Iterator[tuple[ResourceType, Obj]]:
        seen: set[tuple[str, str]] = set()
        for rtype in list(self.types.values()):
            if rtype.key in seen:
                continue
            seen.add(rtype.key)
            for obj in list(self._bucket(rtype).values()):
                refs = obj.get("metadata", {}).get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs):
                    yield rtype, obj

    def _collect_dependents(self, uid: str, policy: str) -> None:
        """Garbage collection: a dependent goes once none of its owners exist any more."""
        for rtype, obj in list(self._dependents(uid)):
            refs = obj["metadata"].get("ownerReferences") or []
            others = [r for r in refs if r.get("uid") != uid and self._uid_exists(r.get("uid", ""))]
            if others:
                continue
            meta = obj["metadata"]
            with contextlib.suppress(ApiError):
                self._delete(rtype, meta.get("namespace"), meta["name"], policy)

    def _orphan_dependents(self, uid: str) -> None:
        for rtype, obj in list(self._dependents(uid)):
            new = copy.deepcopy(obj)
            new["metadata"]["ownerReferences"] = [
                r for r in obj["metadata"]["ownerReferences"] if r.get("uid") != uid
            ]
            self._replace(rtype, obj, new, None, {}, False)

    def _uid_exists(self, uid: str) -> bool:
        return any(o["metadata"].get("uid") == uid for bucket in self.store.values() for o in bucket.values())

    # ----------------------------------------------------------------------------- watch
    async def _watch(
        self, request: rendering.Request, rtype: ResourceType, params: dict[str, str]
    ) -> aiohttp.web.StreamResponse:
        raw = request._raw_request
        assert raw is not None
        ns = request.namespace if rtype.namespaced else None
        labels = parse_label_selector(params.get("labelSelector", ""))
        fields = parse_field_selector(params.get("fieldSelector", ""))
        if request.name:
            fields.append(("metadata.name", True, request.name))
        as_table = TABLE_MEDIA in raw.headers.get("Accept", "")
        bookmarks = params.get("allowWatchBookmarks") == "true"
        timeout = float(params.get("timeoutSeconds") or 1800)
        since = params.get("resourceVersion") or ""
        initial: list[tuple[str, Obj]] = []
        # The snapshot/replay and the subscription happen with no await in between, so no event
        # can fall in the gap between what the client listed and what it will be streamed.
        if since in ("", "0") or params.get("sendInitialEvents") == "true":
            initial = [("ADDED", self._present(rtype, o)) for o in self._select(rtype, ns, params)]
        else:
            oldest = self.history[0][0] if self.history else self.rv + 1
            if int(since) < oldest - 1 and int(since) < self.rv:
                raise ApiError(410, "Expired", f"too old resource version: {since} ({oldest - 1})")
            initial = [
                (kind, obj)
                for rv, key, kind, obj in self.history
                if rv > int(since) and key == rtype.key and self._in_scope(obj, ns, labels, fields)
            ]
        queue: asyncio.Queue[tuple[tuple[str, str], str, Obj]] = asyncio.Queue()
        self.watchers.append(queue)
        response = aiohttp.web.StreamResponse(status=200)
        response.content_type = "application/json"
        response.enable_chunked_encoding()
        try:
            await response.prepare(raw)

            async def send(kind: str, obj: Obj) -> None:
                payload = self._table(rtype, obj, params) if as_table and kind != "BOOKMARK" else obj
                await response.write(json.dumps({"type": kind, "object": payload}).encode() + b"\n")

            for kind, obj in initial:
                await send(kind, obj)
            if params.get("sendInitialEvents") == "true" and bookmarks:
                await send("BOOKMARK", self._bookmark(rtype, initial_end=True))
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    key, kind, obj = await asyncio.wait_for(queue.get(), timeout=min(left, 1.0))
                except TimeoutError:
                    if bookmarks:
                        await send("BOOKMARK", self._bookmark(rtype))
                    continue
                if key == rtype.key and self._in_scope(obj, ns, labels, fields):
                    await send(kind, self._present(rtype, obj))
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.watchers.remove(queue)
        return response

    def _bookmark(self, rtype: ResourceType, initial_end: bool = False) -> Obj:
        meta: Obj = {"resourceVersion": str(self.rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"apiVersion": rtype.api_version, "kind": rtype.kind, "metadata": meta}

    def _in_scope(
        self,
        obj: Obj,
        ns: str | None,
        labels: list[tuple[str, str, list[str]]],
        fields: list[tuple[str, bool, str]],
    ) -> bool:
        return (ns is None or obj["metadata"].get("namespace") == ns) and self._matches(obj, labels, fields)

    # ----------------------------------------------------------------------------- tables
    def _table(self, rtype: ResourceType, result: Obj, params: dict[str, str]) -> Obj:
        items = result["items"] if "items" in result and result.get("kind", "").endswith("List") else [result]
        columns = self._columns(rtype)
        include = params.get("includeObject", "PartialObjectMetadata")
        rows = []
        for obj in items:
            if include == "Object":
                row_obj: Obj | None = obj
            elif include == "None":
                row_obj = None
            else:
                row_obj = {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj["metadata"],
                }
            rows.append({"cells": [cell(obj) for _, cell in columns], "object": row_obj})
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": result.get("metadata", {}).get("resourceVersion", str(self.rv))},
            "columnDefinitions": [definition for definition, _ in columns],
            "rows": rows,
        }

    def _columns(self, rtype: ResourceType) -> list[tuple[Obj, Callable[[Obj], Any]]]:
        def col(name: str, kind: str = "string", priority: int = 0, fmt: str = "") -> Obj:
            return {"name": name, "type": kind, "format": fmt, "description": name, "priority": priority}

        name_col = (col("Name", fmt="name"), lambda o: o["metadata"]["name"])
        age_col = (col("Age"), lambda o: human_age(o["metadata"].get("creationTimestamp")))
        if rtype.crd is not None:
            columns = [name_col]
            has_age = False
            for pc in rtype.printer_columns:
                path = pc.get("jsonPath", "")
                has_age = has_age or path == ".metadata.creationTimestamp"
                columns.append(
                    (
                        col(
                            pc["name"],
                            pc.get("type", "string"),
                            int(pc.get("priority", 0)),
                            pc.get("format", ""),
                        ),
                        self._column_cell(path, pc.get("type", "string")),
                    )
                )
            if not has_age:
                columns.append(age_col)
            return columns
        status = dotted
        by_kind: dict[str, list[tuple[Obj, Callable[[Obj], Any]]]] = {
            "Pod": [
                name_col,
                (col("Ready"), _pod_ready),
                (col("Status"), lambda o: status(o, "status.phase") or "Pending"),
                (col("Restarts", "integer"), _pod_restarts),
                age_col,
            ],
            "Job": [
                name_col,
                (col("Status"), _job_status),
                (
                    col("Completions"),
                    lambda o: f"{status(o, 'status.succeeded') or 0}/{status(o, 'spec.completions') or 1}",
                ),
                age_col,
            ],
            "Deployment": [
                name_col,
                (
                    col("Ready"),
                    lambda o: f"{status(o, 'status.readyReplicas') or 0}/{status(o, 'spec.replicas') or 1}",
                ),
                (col("Up-to-date", "integer"), lambda o: status(o, "status.updatedReplicas") or 0),
                (col("Available", "integer"), lambda o: status(o, "status.availableReplicas") or 0),
                age_col,
            ],
            "Service": [
                name_col,
                (col("Type"), lambda o: status(o, "spec.type") or "ClusterIP"),
                (col("Cluster-IP"), lambda o: status(o, "spec.clusterIP") or "None"),
                (
                    col("Port(s)"),
                    lambda o: ",".join(
                        f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in status(o, "spec.ports") or []
                    ),
                ),
                age_col,
            ],
            "ConfigMap": [name_col, (col("Data", "integer"), lambda o: len(o.get("data") or {})), age_col],
            "Secret": [
                name_col,
                (col("Type"), lambda o: o.get("type", "Opaque")),
                (col("Data", "integer"), lambda o: len(o.get("data") or {}) + len(o.get("stringData") or {})),
                age_col,
            ],
            "Namespace": [
                name_col,
                (col("Status"), lambda o: status(o, "status.phase") or "Active"),
                age_col,
            ],
            "Event": [
                (
                    col("Last Seen"),
                    lambda o: human_age(o.get("lastTimestamp") or o["metadata"].get("creationTimestamp")),
                ),
                (col("Type"), lambda o: o.get("type", "")),
                (col("Reason"), lambda o: o.get("reason", "")),
                (
                    col("Object"),
                    lambda o: (
                        f"{(o.get('involvedObject') or {}).get('kind', '').lower()}/"
                        f"{(o.get('involvedObject') or {}).get('name', '')}"
                    ),
                ),
                (col("Message"), lambda o: o.get("message") or o.get("note", "")),
            ],
            "CustomResourceDefinition": [
                name_col,
                (col("Created At", "date"), lambda o: o["metadata"].get("creationTimestamp", "")),
            ],
        }
        return by_kind.get(rtype.kind, [name_col, age_col])

    @staticmethod
    def _column_cell(path: str, kind: str) -> Callable[[Obj], Any]:
        def cell(obj: Obj) -> Any:
            values = jsonpath_values(obj, path)
            if not values:
                return None
            if kind == "date":
                return human_age(str(values[0]))
            if len(values) == 1:
                value = values[0]
                return json.dumps(value) if isinstance(value, (dict, list)) else value
            return ",".join(str(v) for v in values)

        return cell


def _pod_ready(pod: Obj) -> str:
    statuses = dotted(pod, "status.containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or []) or len(statuses)
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_restarts(pod: Obj) -> int:
    return sum(int(s.get("restartCount", 0)) for s in dotted(pod, "status.containerStatuses") or [])


def _job_status(job: Obj) -> str:
    for cond in dotted(job, "status.conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            return str(cond["type"])
    if dotted(job, "spec.suspend"):
        return "Suspended"
    return "Running"


# --------------------------------------------------------------------------------- cluster
class Cluster:
    """An emulated cluster: :class:`ApiServer` in a thread with its own loop, and a kubeconfig.

    Use as a context manager (``with Cluster() as cluster``) or call :meth:`start` / :meth:`stop`.
    ``cluster.url``, ``cluster.kubeconfig`` (a no-auth http kubeconfig in a temp dir),
    ``cluster.api`` (:class:`ApiClient`) and ``cluster.requests()`` (the request log).
    """

    def __init__(self, workdir: pathlib.Path | None = None, namespace: str = "default") -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="foresight-cluster-")
            workdir = pathlib.Path(self._tmp.name)
        self.workdir = workdir
        self.namespace = namespace
        self.server = ApiServer()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.url = ""
        self.kubeconfig = workdir / "kubeconfig"
        self.api: ApiClient

    def start(self) -> Cluster:
        self._thread = threading.Thread(target=self._run, name="k8s-emulator", daemon=True)
        self._thread.start()
        if not self._started.wait(30) or self._error is not None:
            raise RuntimeError(f"the API emulator did not start: {self._error!r}")
        self.kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
                    "users": [{"name": "tester", "user": {}}],
                    "contexts": [
                        {
                            "name": "emulator",
                            "context": {"cluster": "emulator", "user": "tester", "namespace": self.namespace},
                        }
                    ],
                    "current-context": "emulator",
                }
            )
        )
        self.api = ApiClient(self.url)
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced to start() so a failed start says why
            self._error = exc
            self._started.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with self.server, kmock.Server(self.server, host="127.0.0.1") as srv:
            self.url = f"http://127.0.0.1:{srv.port}"
            self._started.set()
            await self._stop.wait()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def requests(self, user_agent: str | None = None) -> list[RequestRecord]:
        """The API calls made so far, optionally only those whose User-Agent contains a string."""
        log = list(self.server.log)
        return [r for r in log if user_agent is None or user_agent in r.user_agent]

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` inside the server's event loop (for reading server state race-free)."""
        assert self._loop is not None

        async def wrapper() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(10)


class ApiClient:
    """A tiny synchronous API client for tests (``requests`` based).

    ``resource`` is ``"v1/pods"``, ``"batch/v1/jobs"`` or ``"example.dev/v1/widgets"``.
    Every failing call raises :class:`ApiClientError` carrying the server's ``Status``.
    """

    def __init__(self, url: str, user_agent: str = "foresight-tests") -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent

    def path(
        self, resource: str, namespace: str | None = None, name: str | None = None, sub: str | None = None
    ) -> str:
        parts = resource.strip("/").split("/")
        plural = parts[-1]
        prefix = "/api/" + parts[0] if len(parts) == 2 else f"/apis/{parts[0]}/{parts[1]}"
        path = prefix + (f"/namespaces/{namespace}" if namespace else "") + f"/{plural}"
        if name:
            path += f"/{name}"
        if sub:
            path += f"/{sub}"
        return path

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.session.request(method, self.url + path, timeout=30, **kwargs)
        if resp.status_code >= 400:
            try:
                status = resp.json()
            except ValueError:
                status = {"message": resp.text}
            raise ApiClientError(resp.status_code, status)
        ctype = resp.headers.get("Content-Type", "")
        return resp.json() if "json" in ctype else resp.text

    def get(self, resource: str, name: str, namespace: str | None = None, sub: str | None = None) -> Obj:
        return dict(self.request("GET", self.path(resource, namespace, name, sub)))

    def find(self, resource: str, name: str, namespace: str | None = None) -> Obj | None:
        """Like :meth:`get`, but None when the object does not exist."""
        try:
            return self.get(resource, name, namespace)
        except ApiClientError as exc:
            if exc.code == 404:
                return None
            raise

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        params = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        return list(self.request("GET", self.path(resource, namespace), params=params)["items"])

    def create(self, resource: str, body: Obj, namespace: str | None = None) -> Obj:
        ns = namespace or body.get("metadata", {}).get("namespace")
        return dict(self.request("POST", self.path(resource, ns), json=body))

    def replace(self, resource: str, body: Obj, namespace: str | None = None, sub: str | None = None) -> Obj:
        ns = namespace or body.get("metadata", {}).get("namespace")
        return dict(self.request("PUT", self.path(resource, ns, body["metadata"]["name"], sub), json=body))

    def patch(
        self,
        resource: str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        sub: str | None = None,
        type: str = "merge",
    ) -> Obj:
        content_type = {
            "merge": "application/merge-patch+json",
            "strategic": "application/strategic-merge-patch+json",
            "json": "application/json-patch+json",
        }[type]
        return dict(
            self.request(
                "PATCH",
                self.path(resource, namespace, name, sub),
                data=json.dumps(patch),
                headers={"Content-Type": content_type},
            )
        )

    def delete(
        self, resource: str, name: str, namespace: str | None = None, propagation: str | None = None
    ) -> Obj:
        body = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            body["propagationPolicy"] = propagation
        return dict(self.request("DELETE", self.path(resource, namespace, name), json=body))

    def wait_for(
        self,
        resource: str,
        name: str,
        predicate: Callable[[Obj | None], bool],
        namespace: str | None = None,
        timeout: float = 30,
        interval: float = 0.05,
    ) -> Obj | None:
        """Poll until ``predicate(obj)`` holds (obj is None while absent); return that object.

        Raises TimeoutError with the last seen object, so a failing test shows what was there.
        """
        deadline = time.monotonic() + timeout
        obj: Obj | None = None
        while True:
            obj = self.find(resource, name, namespace)
            if predicate(obj):
                return obj
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{resource} {namespace}/{name} did not reach the wanted state in {timeout}s; "
                    f"last seen (status first): {json.dumps(_status_first(obj), indent=1)[:4000]}"
                )
            time.sleep(interval)


class ApiClientError(Exception):
    """A non-2xx answer; ``code`` is the HTTP status and ``status`` the ``Status`` object."""

    def __init__(self, code: int, status: Obj) -> None:
        super().__init__(f"HTTP {code}: {status.get('reason')}: {status.get('message')}")
        self.code = code
        self.status = status


def _status_first(obj: Obj | None) -> Obj | None:
    """The object with its status (what a wait is usually about) before its long spec."""
    if not obj:
        return obj
    return {"status": obj.get("status"), "metadata": {"name": obj.get("metadata", {}).get("name")}, **obj}
