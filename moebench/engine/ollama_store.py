"""Model references into the local Ollama store: `ollama:NAME[:TAG]` → the GGUF blob Ollama pulled.

Ollama keeps `<root>/manifests/<registry>/<namespace>/<model>/<tag>` (JSON, an OCI-style
manifest) and `<root>/blobs/sha256-<hex>`. The manifest's layer with media type
`application/vnd.ollama.image.model` is the GGUF file. `<root>` is `$OLLAMA_MODELS`, else
`~/.ollama/models`, else the Linux service's `/usr/share/ollama/.ollama/models`.

Names resolve as Ollama resolves them: `mixtral` → `registry.ollama.ai/library/mixtral:latest`,
`user/model:tag` → namespace `user`, `host.example/ns/model:tag` → another registry. The
display name and the digest (sha256 of the manifest file, 64 hex, what `/api/tags` reports) are
those the Ollama backend records, so torch and Ollama runs of one pull line up in reports.
Pure standard library: no torch, cheap to import.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from moebench.errors import ModelNotFound

PREFIX = "ollama:"
DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
SERVICE_STORE = Path("/usr/share/ollama/.ollama/models")


@dataclass(frozen=True)
class OllamaModel:
    """One pulled model: its display name, manifest, GGUF blob and manifest digest."""

    name: str  # as Ollama lists it: `mixtral:8x7b`, `user/model:tag`, `host/ns/model:tag`
    manifest: Path
    gguf: Path
    digest: str  # sha256 hex of the manifest file (no `sha256:` prefix)
    store: Path


def is_reference(model: str) -> bool:
    """Whether `model` is an `ollama:NAME[:TAG]` reference."""
    return model.startswith(PREFIX)


def store_roots() -> list[Path]:
    """Candidate store folders, in the order Ollama's defaults apply."""
    env = os.environ.get("OLLAMA_MODELS")
    if env:
        return [Path(env).expanduser()]
    return [Path.home() / ".ollama" / "models", SERVICE_STORE]


def split_name(name: str) -> tuple[str, str, str, str]:
    """(registry, namespace, model, tag) of an Ollama model name (`latest` when no tag)."""
    path, tag = name.strip(), "latest"
    if ":" in path.rsplit("/", 1)[-1]:
        path, _, tag = path.rpartition(":")
    parts = [p for p in path.split("/") if p]
    if not parts or not tag:
        raise ModelNotFound(f"'{name}' is not an Ollama model name — write ollama:NAME[:TAG]")
    if len(parts) == 1:
        return DEFAULT_REGISTRY, DEFAULT_NAMESPACE, parts[0], tag
    if len(parts) == 2:
        return DEFAULT_REGISTRY, parts[0], parts[1], tag
    return parts[0], "/".join(parts[1:-1]), parts[-1], tag


def display_name(registry: str, namespace: str, model: str, tag: str) -> str:
    """The name `ollama list` shows (short for the default registry and namespace)."""
    if registry == DEFAULT_REGISTRY:
        prefix = "" if namespace == DEFAULT_NAMESPACE else f"{namespace}/"
        return f"{prefix}{model}:{tag}"
    return f"{registry}/{namespace}/{model}:{tag}"


def resolve(reference: str, roots: list[Path] | None = None) -> OllamaModel:
    """The pulled model named by `ollama:NAME[:TAG]` (or a bare NAME), or ModelNotFound
    listing what the store holds."""
    name = reference.removeprefix(PREFIX)
    registry, namespace, model, tag = split_name(name)
    roots = store_roots() if roots is None else roots
    for root in roots:
        manifest = root / "manifests" / registry / namespace / model / tag
        if manifest.is_file():
            return _read(manifest, root, display_name(registry, namespace, model, tag))
    raise ModelNotFound(_not_found(name, roots))


def installed(root: Path) -> list[str]:
    """Display names of every manifest under `root`, sorted."""
    base = root / "manifests"
    if not base.is_dir():
        return []
    names = []
    for manifest in base.rglob("*"):
        parts = manifest.relative_to(base).parts
        if manifest.is_file() and len(parts) >= 4:
            names.append(display_name(parts[0], "/".join(parts[1:-2]), parts[-2], parts[-1]))
    return sorted(names)


def _read(manifest: Path, root: Path, name: str) -> OllamaModel:
    raw = manifest.read_bytes()
    try:
        layers = json.loads(raw).get("layers") or []
    except (ValueError, AttributeError):
        raise ModelNotFound(f"Ollama manifest {manifest} is not valid JSON — re-pull with: "
                            f"ollama pull {name}") from None
    digest = next((layer.get("digest") for layer in layers if isinstance(layer, dict)
                   and layer.get("mediaType") == MODEL_MEDIA_TYPE), None)
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise ModelNotFound(f"Ollama manifest of {name} has no model layer ({MODEL_MEDIA_TYPE}) — "
                            f"re-pull with: ollama pull {name}")
    blob = root / "blobs" / digest.replace(":", "-")
    if not blob.is_file():
        raise ModelNotFound(f"the GGUF blob of {name} ({blob.name}) is missing from {root / 'blobs'}"
                            f" — finish the download with: ollama pull {name}")
    return OllamaModel(name=name, manifest=manifest, gguf=blob,
                       digest=hashlib.sha256(raw).hexdigest(), store=root)


def _not_found(name: str, roots: list[Path]) -> str:
    where = " or ".join(str(r) for r in roots)
    have = sorted({n for root in roots for n in installed(root)})
    listed = f"the store has: {', '.join(have)}" if have else "the store has no models"
    return (f"Ollama model '{name}' is not in the local store ({where}) — {listed} "
            f"(pull it with: ollama pull {name}, or set OLLAMA_MODELS)")
