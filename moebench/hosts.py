"""Several hosts in one run: the host list, `-m NAME@HOST` pins, and which model runs where.

`--host URL` is repeatable and `--hosts FILE` reads one URL per line (`#` comments and blank
lines allowed; a bad URL is `file:line: message`). Models are placed before the run starts:
a pinned model (`-m NAME@HOST`, HOST a URL or `host:port` of one of the given hosts) goes to
its host; a model some hosts already have goes to the one of those with the fewest models so
far; any other model goes round-robin (fewest models first, then host order). The same model
on two hosts is two models of the run, stored as `model@host:port`; a model on one host keeps
its plain name. The `Assignment` is stored with the run, so `--resume` puts every model back
where it ran. `moebench.scheduler` executes a multi-host assignment.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from moebench.errors import BackendUnavailable, MoebenchError
from moebench.paths import check_host, normalize_host
from moebench.types import ModelInfo

#: backends that talk to a server at `--host` (the torch engine runs in-process)
SERVER_BACKENDS = ("ollama", "langchain", "openai")


class HostsFileError(MoebenchError):
    """`--hosts FILE` cannot be read or holds a line that is not a URL."""


class UnknownHost(MoebenchError):
    """`-m NAME@HOST` names a host that is none of the run's hosts."""


@dataclass(frozen=True)
class Placement:
    """Where one model of the run (by position) runs, and the name it is stored under."""

    model: str
    host: str
    #: `host:port` when the model runs on several hosts (stored as `model@host:port`), else ""
    suffix: str = ""
    pinned: bool = False

    def name(self, reported: str) -> str:
        """The stored name of the model the backend reports as `reported`."""
        if not self.suffix or reported.endswith(f"@{self.suffix}"):  # placed already
            return reported
        return f"{reported}@{self.suffix}"


@dataclass(frozen=True)
class Assignment:
    """The run's hosts (base URLs, in order), their server versions and each model's place."""

    hosts: tuple[str, ...]
    placements: tuple[Placement, ...]
    versions: Mapping[str, str | None] = field(default_factory=dict)
    #: host → models it has (None when it could not say), for moving models off a dead host
    present: Mapping[str, frozenset[str] | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The run row's `assignment` value."""
        return {"hosts": list(self.hosts), "versions": dict(self.versions),
                "placements": [vars(p) for p in self.placements],
                "present": {h: sorted(m) if m is not None else None
                            for h, m in self.present.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Assignment:
        """Read back what `to_json` stored."""
        present = {h: frozenset(m) if m is not None else None
                   for h, m in (data.get("present") or {}).items()}
        return cls(tuple(data["hosts"]), tuple(Placement(**p) for p in data["placements"]),
                   dict(data.get("versions") or {}), present)

    def moved(self, position: int, host: str) -> Assignment:
        """The assignment with model `position` on `host` (its host stopped answering)."""
        placements = list(self.placements)
        placements[position] = replace(placements[position], host=host)
        return replace(self, placements=tuple(placements))

    def place(self, position: int, info: ModelInfo) -> ModelInfo:
        """`info` under its stored name, with its host and that host's server version."""
        where = self.placements[position]
        return replace(info, name=where.name(info.name), host=where.host,
                       server_version=self.versions.get(where.host))


def host_label(url: str) -> str:
    """`http://10.0.0.2:11434` → `10.0.0.2:11434` (what a stored `model@host` name carries)."""
    parts = urlsplit(url)
    return parts.netloc + (parts.path.rstrip("/") if parts.path not in ("", "/v1") else "")


def read_hosts_file(path: Path) -> list[str]:
    """The URLs of a `--hosts FILE` (normalised), one per line; `#` starts a comment."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise HostsFileError(f"--hosts {path}: cannot read it ({error}) — pass a text file "
                             "with one URL per line") from None
    hosts = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        problem = check_host(text) if " " not in text else f"{text!r} is not one URL"
        if problem:
            raise HostsFileError(f"{path}:{number}: {problem}")
        hosts.append(normalize_host(text))
    if not hosts:
        raise HostsFileError(f"--hosts {path}: no URL in it — write one URL per line, e.g. "
                             "http://127.0.0.1:11434")
    return hosts


def unique_hosts(hosts: Iterable[str]) -> list[str]:
    """Normalised hosts in order, each once."""
    return list(dict.fromkeys(normalize_host(h) for h in hosts))


def match_host(spec: str, hosts: Sequence[str]) -> str | None:
    """The host `spec` names: the same URL, or its `host:port` (or bare hostname when only
    one host has that name)."""
    if not check_host(spec):
        wanted = normalize_host(spec)
        if wanted in hosts:
            return wanted
    for host in hosts:
        if spec in (host_label(host), host):
            return host
    named = [h for h in hosts if urlsplit(h).hostname == spec]
    return named[0] if len(named) == 1 else None


def split_pins(models: Sequence[str], hosts: Sequence[str]) -> list[tuple[str, str | None]]:
    """(model, pinned host or None) per `-m`; `NAME@HOST` must name one of `hosts`."""
    out: list[tuple[str, str | None]] = []
    for model in models:
        if "@" not in model:
            out.append((model, None))
            continue
        name, spec = model.rsplit("@", 1)
        host = match_host(spec, hosts)
        if host is None or not name:
            raise UnknownHost(
                f"-m {model}: '{spec}' matches none of the run's hosts ({', '.join(hosts)}) — "
                "pin to one of them (URL or host:port), or add it with --host URL")
        out.append((name, host))
    return out


def _canonical(backend: str, model: str) -> str:
    if backend == "openai":
        return model
    from moebench.backends.ollama_api import normalize_name

    return normalize_name(model)


def _has(present: frozenset[str] | None, backend: str, model: str) -> bool:
    if present is None:
        return False
    return _canonical(backend, model) in present or model in present


def assign(backend: str, wanted: Sequence[tuple[str, str | None]], hosts: Sequence[str],
           present: Mapping[str, frozenset[str] | None]) -> tuple[Placement, ...]:
    """Place every model (see the module docstring); a model given twice goes to two hosts."""
    load = dict.fromkeys(hosts, 0)
    taken: set[tuple[str, str]] = set()
    chosen: dict[int, str] = {}
    for i in sorted(range(len(wanted)), key=lambda i: wanted[i][1] is None):  # pins first
        model, pin = wanted[i]
        key = _canonical(backend, model)
        free = [h for h in hosts if (key, h) not in taken]
        if (pin is not None and (key, pin) in taken) or not free:
            raise MoebenchError(f"-m {model} is given more often than there are hosts for it — "
                                "give each copy its own host (NAME@HOST)")
        having = [h for h in free if _has(present.get(h), backend, model)]
        host = pin or min(having or free, key=lambda h: (load[h], hosts.index(h)))
        load[host] += 1
        taken.add((key, host))
        chosen[i] = host
    copies = Counter(_canonical(backend, model) for model, _ in wanted)
    return tuple(Placement(model, chosen[i], host_label(chosen[i])
                           if copies[_canonical(backend, model)] > 1 else "", pin is not None)
                 for i, (model, pin) in enumerate(wanted))


def plan_hosts(backend: str, models: Sequence[str], hosts: Sequence[str],
               version: str | None) -> Assignment:
    """Where each model runs: one host → every model there (pins checked); several → ask
    each host what it has and `assign`. Raises BackendUnavailable for a host that is down."""
    wanted = split_pins(models, hosts)
    if len(hosts) == 1:
        return Assignment(tuple(hosts), tuple(Placement(m, hosts[0], "", p is not None)
                                              for m, p in wanted), {hosts[0]: version})
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(hosts)) as pool:  # remote hosts answer in parallel
        probes = dict(zip(hosts, pool.map(lambda h: _probe(backend, h), hosts), strict=True))
    present = {h: models for h, (models, _) in probes.items()}
    versions = {h: version for h, (_, version) in probes.items()}
    return Assignment(tuple(hosts), assign(backend, wanted, hosts, present), versions, present)


def _probe(backend: str, host: str) -> tuple[frozenset[str] | None, str | None]:
    """(the models `host` has, its server version) — BackendUnavailable when it is down."""
    models = host_models(backend, host)
    if backend == "openai":
        return models, None
    from moebench.backends.ollama_api import ping

    return models, ping(host, timeout=5.0)


def host_models(backend: str, host: str, timeout: float = 5.0) -> frozenset[str] | None:
    """The models `host` has (`/api/tags`; `/v1/models` for openai); None when it cannot say.

    Raises BackendUnavailable when nothing answers there.
    """
    if backend == "openai":
        return _openai_models(host, timeout)
    import httpx
    import ollama

    from moebench.backends.ollama_api import digests, make_client, unreachable

    try:  # the official client, as `moebench models` lists them
        return frozenset(digests(make_client(host, timeout)))
    except (ConnectionError, httpx.TransportError):
        raise unreachable(host, " (or drop that --host)") from None
    except (ollama.ResponseError, httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def _openai_models(host: str, timeout: float) -> frozenset[str] | None:
    """`/v1/models` ids of an OpenAI-compatible server; None when it has no such route."""
    import httpx

    from moebench.backends.ollama_api import _tls_context

    try:  # the shared TLS context: no CA-bundle load per probe
        reply = httpx.get(_openai_base(host) + "/models", timeout=timeout,
                          verify=_tls_context())
    except httpx.HTTPError:
        raise BackendUnavailable(f"nothing answers at {host} — start the server or drop "
                                 "that --host") from None
    try:
        reply.raise_for_status()
        return frozenset(str(r["id"]) for r in reply.json()["data"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def _openai_base(host: str) -> str:
    from moebench.backends.openai import base_url

    return base_url(host)


def resumed_assignment(run: Mapping[str, Any], options: Any) -> Assignment | None:
    """A resumed multi-host run keeps its stored assignment; one host follows --host."""
    stored = Assignment.from_json(run["assignment"]) if run.get("assignment") else None
    if stored is None or len(stored.hosts) > 1:
        return stored
    host = normalize_host(options.host)
    return plan_hosts(str(options.backend), options.models, [host],
                      run.get("server_version") if host == run.get("host") else None)
