"""Fixtures: every tiny checkpoint built once, and loaded once by the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")

from tiny_models import BUILDERS, Case, build  # noqa: E402  (tests/engine/tiny_models.py)
from tiny_models_more import BUILDERS_MORE, build_more  # noqa: E402


def _load_all(cases: dict[str, Case]) -> dict[str, Any]:
    """Each checkpoint loaded by the engine (fp32, CPU)."""
    from moebench.engine import load_model

    return {name: load_model(case.folder) for name, case in cases.items()}


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    """Every tiny checkpoint of tiny_models.BUILDERS, built once per session."""
    root = tmp_path_factory.mktemp("ckpts")
    return {name: build(name, root) for name in BUILDERS}


@pytest.fixture(scope="session")
def engines(checkpoints: dict[str, Case]) -> dict[str, Any]:
    """Each of `checkpoints` loaded by the engine once."""
    return _load_all(checkpoints)


@pytest.fixture(scope="module")
def checkpoints_more(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    """Every tiny checkpoint of tiny_models_more.BUILDERS_MORE, built once per module."""
    root = tmp_path_factory.mktemp("ckpts_more")
    return {name: build_more(name, root) for name in BUILDERS_MORE}


@pytest.fixture(scope="module")
def engines_more(checkpoints_more: dict[str, Case]) -> dict[str, Any]:
    """Each of `checkpoints_more` loaded by the engine once."""
    return _load_all(checkpoints_more)


@pytest.fixture(scope="session")
def q8_file(checkpoints: dict[str, Case], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Mixtral converted to a Q8_0 GGUF once (the int8 modes' reference file)."""
    pytest.importorskip("gguf")
    from gguf_convert import convert

    path = tmp_path_factory.mktemp("q8") / "mixtral-Q8_0.gguf"
    convert(checkpoints["mixtral"].folder, path, "Q8_0")
    return path

