"""Shared fixtures: every test gets its own results folder and no Ollama from the environment."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              tmp_path_factory: pytest.TempPathFactory) -> None:
    # Never talk to a real Ollama a developer may have running: point at a closed port.
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    # The scorers' lookup cache (moebench.scorers._memo): one per session, not the user's.
    monkeypatch.setenv("MOEBENCH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv("MOEBENCH_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs (root only, else the test is skipped): a real disk that fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
            capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
