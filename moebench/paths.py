"""Where things live: bundled suites, bundled demo models, the default results folder.

The bundled suites live in the repo's top-level `tasks/`; the wheel carries the same files
as `moebench/tasks/` (pyproject maps the folder into the package at build time), so
`bundled_tasks()` looks inside the package first and falls back to the checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def bundled_tasks(package_dir: Path = PACKAGE_DIR) -> Path:
    """The bundled suites: `moebench/tasks/` in an installed wheel, else the checkout's
    top-level `tasks/` (clones, editable installs, PYTHONPATH=checkout)."""
    installed = package_dir / "tasks"
    return installed if installed.is_dir() else package_dir.parent / "tasks"


#: the bundled suites folder (see `bundled_tasks`)
BUNDLED_TASKS = bundled_tasks()
#: tiny trained demo checkpoints, shipped inside the package so any install has them
DEMO_MODELS_DIR = PACKAGE_DIR / "demo_models"
DEFAULT_OUT = Path("results")
DB_NAME = "moebench.db"


def normalize_host(host: str | None) -> str:
    """`--host`, else $OLLAMA_HOST, else http://127.0.0.1:11434, as a base URL
    (`127.0.0.1:11434` → `http://127.0.0.1:11434`; `http://host` gets Ollama's port)."""
    host = (host or os.environ.get("OLLAMA_HOST", "")).strip() or "http://127.0.0.1:11434"
    host = host.rstrip("/")
    if "://" not in host:
        host = "http://" + host
    if host.count(":") == 1:  # "http://host" without a port: Ollama's default port
        host += ":11434"
    return host


def check_host(host: str) -> str | None:
    """Why `host` is not a usable base URL (None when it is)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(normalize_host(host))
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as error:
        return f"{host!r} is not a URL ({error}) — e.g. http://127.0.0.1:11434"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{host!r} is not an http(s) URL — e.g. http://127.0.0.1:11434"
    return None


def default_host() -> str:
    """$OLLAMA_HOST (normalised) or http://127.0.0.1:11434."""
    return normalize_host(None)
