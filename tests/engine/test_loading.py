"""Loading checkpoints: folders, Hub cache layout, bad inputs, memory refusal, model facts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from moebench.engine import load_model, resolve_folder, supported_families
from moebench.engine.config import read_config_json
from moebench.engine.families import get_family
from moebench.engine.weights import Checkpoint
from moebench.errors import EngineError, OutOfMemoryRisk

from tiny_models import BUILDERS, Case


def _copy(case: Case, dest: Path) -> Path:
    shutil.copytree(case.folder, dest)
    return dest


def test_unknown_family_lists_supported(checkpoints: dict[str, Case], tmp_path: Path) -> None:
    folder = _copy(checkpoints["mixtral"], tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "model_type": "llama"}))
    with pytest.raises(EngineError, match="model_type 'llama' is not supported") as info:
        load_model(folder)
    for family in ("mixtral", "dbrx", "deepseek_v2"):
        assert family in str(info.value)
    assert supported_families() == sorted(supported_families())


@pytest.mark.parametrize(("remove", "message"), [
    ("config.json", "no config.json"),
    ("model.safetensors", "no \\*.safetensors"),
    ("tokenizer.json", "no tokenizer.json"),
])
def test_missing_files_are_named(checkpoints: dict[str, Case], tmp_path: Path, remove: str,
                                 message: str) -> None:
    folder = _copy(checkpoints["mixtral"], tmp_path / "m")
    (folder / remove).unlink()
    with pytest.raises(EngineError, match=message):
        load_model(folder)


def test_missing_folder_and_bad_options(checkpoints: dict[str, Case], tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="does not exist"):
        load_model(tmp_path / "nope")
    with pytest.raises(EngineError, match="dtype 'int4'"):
        load_model(checkpoints["mixtral"].folder, dtype="int4")
    with pytest.raises(EngineError, match="device 'tpu9'"):
        load_model(checkpoints["mixtral"].folder, device="tpu9")


def test_refuses_when_memory_is_short(checkpoints: dict[str, Case]) -> None:
    with pytest.raises(OutOfMemoryRisk, match=r"needs ~.* GiB in float32 .* dtype=bfloat16"):
        load_model(checkpoints["mixtral"].folder, available_bytes=10_000)
    assert load_model(checkpoints["mixtral"].folder, available_bytes=10**9).info.layers == 2


def test_hub_cache_folder_resolves_to_snapshot(checkpoints: dict[str, Case], tmp_path: Path) -> None:
    repo = tmp_path / "models--acme--tiny-mixtral"
    _copy(checkpoints["mixtral"], repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    assert resolve_folder(repo) == repo / "snapshots" / "0123abcd"
    assert load_model(repo).info.family == "mixtral"


@pytest.mark.parametrize("name", list(BUILDERS))
def test_every_checkpoint_tensor_is_used(checkpoints: dict[str, Case], name: str) -> None:
    folder = checkpoints[name].folder
    cfg = read_config_json(folder)
    family = get_family(cfg["model_type"])
    ckpt = Checkpoint(folder)
    family.load_weights(family.read_config(cfg), ckpt)
    assert ckpt.unused() == []


def _routed_expert_params(hf: Any) -> int:
    """Parameters of routed experts (`mlp.experts.*`, DBRX `ffn.experts.mlp.*`; not shared ones)."""
    return sum(p.numel() for n, p in hf.named_parameters() if ".experts." in n)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_info_counts_match_transformers(checkpoints: dict[str, Case], engines: dict[str, Any],
                                        name: str) -> None:
    hf, info = checkpoints[name].hf, engines[name].info
    assert info.total_params == sum(p.numel() for p in hf.parameters())
    routed = _routed_expert_params(hf)
    unused_share = (info.experts - info.top_k) / info.experts
    assert info.active_params == info.total_params - round(routed * unused_share)
    assert info.weight_bytes == info.total_params * 4
    assert info.family == checkpoints[name].hf.config.model_type


def test_info_moe_facts(engines: dict[str, Any]) -> None:
    info = engines["deepseek_v2"].info
    assert (info.layers, info.moe_layers, info.experts, info.top_k, info.shared_experts) == (3, 2, 8, 2, 2)
    assert engines["dbrx"].info.as_dict()["experts"] == 4


def test_tiny_models_decode_single_threaded(engines: dict[str, Any],
                                            checkpoints: dict[str, Case]) -> None:
    import torch

    engine = engines["mixtral"]
    assert engine.info.threads == 1  # a few KB per token: OpenMP would only cost time
    before = torch.get_num_threads()
    seen: list[int] = []
    engine.generate(engine.tokenizer.encode("The quick"), 3,
                    on_token=lambda _: seen.append(torch.get_num_threads()))
    assert set(seen) == {1} and torch.get_num_threads() == before
    assert load_model(checkpoints["mixtral"].folder, threads=0).info.threads == 0
