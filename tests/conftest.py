"""Shared fixtures: every test gets its own results folder and no Ollama from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Never talk to a real Ollama a developer may have running: point at a closed port.
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    monkeypatch.delenv("MOEBENCH_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)
