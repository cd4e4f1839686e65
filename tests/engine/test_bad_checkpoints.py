"""Broken or absurd checkpoint folders are one EngineError line, refused before building.

Uses a copy of the bundled demo-mixtral folder: a truncated or garbage `*.safetensors`, a
broken `tokenizer.json`, and configs with absurd sizes (hidden 1e9, 10^8 experts, 4 million
layers), which must get the memory refusal at once instead of allocating or hanging.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from moebench.engine import load_model
from moebench.errors import EngineError, OutOfMemoryRisk
from moebench.paths import DEMO_MODELS_DIR


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DEMO_MODELS_DIR / "demo-mixtral", tmp_path / "m"))


def _weights(folder: Path) -> Path:
    return sorted(folder.glob("*.safetensors"))[0]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_broken_safetensors_file_is_named(folder: Path, damage: str) -> None:
    path = _weights(folder)
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x93NUMPY" * 999,
                      "empty": b""}[damage])
    with pytest.raises(EngineError, match=r"(not a readable safetensors|lacks tensor|shape)"):
        load_model(folder)


def test_a_broken_tokenizer_json_is_named(folder: Path) -> None:
    (folder / "tokenizer.json").write_text('{"model": {"type": "BPE", "vocab": [1, 2')
    with pytest.raises(EngineError, match="tokenizer.json is not a readable tokenizer file"):
        load_model(folder)


@pytest.mark.parametrize("change", [
    {"hidden_size": 10**9}, {"num_local_experts": 10**8}, {"num_hidden_layers": 4_000_000},
    {"vocab_size": 10**12},
])
def test_absurd_sizes_get_the_memory_refusal_at_once(folder: Path, change: dict) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, **change}))
    start = time.perf_counter()
    with pytest.raises(OutOfMemoryRisk, match="needs ~"):
        load_model(folder)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("change", [{"hidden_size": 1e9}, {"num_hidden_layers": "four"},
                                    {"num_experts_per_tok": 0}, {"num_local_experts": -1}])
def test_wrongly_typed_sizes_are_named(folder: Path, change: dict) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, **change}))
    with pytest.raises(EngineError, match="config.json"):
        load_model(folder)
