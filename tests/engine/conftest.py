"""Session fixtures: every tiny checkpoint built once, and loaded once by the engine."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("transformers")

from tiny_models import BUILDERS, Case, build  # noqa: E402  (tests/engine/tiny_models.py)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    """Every tiny checkpoint, built once per session."""
    root = tmp_path_factory.mktemp("ckpts")
    return {name: build(name, root) for name in BUILDERS}


@pytest.fixture(scope="session")
def engines(checkpoints: dict[str, Case]) -> dict[str, Any]:
    """Each checkpoint loaded by the engine once (fp32, CPU)."""
    from moebench.engine import load_model

    return {name: load_model(case.folder) for name, case in checkpoints.items()}
