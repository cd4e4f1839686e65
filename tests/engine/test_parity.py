"""The engine against transformers on the same tiny checkpoints: logits and greedy tokens (fp32)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from moebench.engine import load_model

from tiny_models import (BUILDERS, PROMPT, TOL, Case, bfloat16_row_max, build, greedy_tokens,
                         reference_logits, stepwise_logits)

FAMILY_CASES = list(BUILDERS)


@pytest.mark.parametrize("name", FAMILY_CASES)
def test_logits_match_after_prefill_and_16_decode_steps(checkpoints: dict[str, Case],
                                                        engines: dict[str, Any], name: str) -> None:
    engine = engines[name]
    ids = engine.tokenizer.encode(PROMPT)
    ours, tokens = stepwise_logits(engine, ids, steps=16)
    ref = reference_logits(checkpoints[name].hf, ids + tokens[:-1])
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max().item() < TOL


@pytest.mark.parametrize("name", FAMILY_CASES)
def test_greedy_tokens_equal_transformers_generate(checkpoints: dict[str, Case],
                                                   engines: dict[str, Any], name: str) -> None:
    ours, theirs = greedy_tokens(engines[name], checkpoints[name], n=64)
    assert ours == theirs


def test_sliding_window_is_applied(engines: dict[str, Any]) -> None:
    ids = engines["mixtral"].tokenizer.encode(PROMPT)
    with torch.inference_mode():
        windowed = engines["mixtral_window"].model(torch.tensor([ids]), 0)
        full = engines["mixtral"].model(torch.tensor([ids]), 0)
    assert (windowed[0, -1] - full[0, -1]).abs().max().item() > 1e-2  # same weights, other mask


def _legacy_rope(cfg: dict[str, Any]) -> dict[str, Any]:
    """transformers-4 spelling: top-level rope_theta + rope_scaling with `type`."""
    params = dict(cfg.pop("rope_parameters"))
    cfg["rope_theta"] = params.pop("rope_theta")
    kind = params.pop("rope_type")
    cfg["rope_scaling"] = None if kind == "default" else {"type": kind, **params}
    return cfg


@pytest.mark.parametrize("name", ["mixtral", "deepseek_v2_yarn"])
def test_legacy_rope_spelling_gives_same_logits(checkpoints: dict[str, Case], tmp_path: Path,
                                                name: str) -> None:
    case = checkpoints[name]
    folder = tmp_path / name
    shutil.copytree(case.folder, folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(_legacy_rope(cfg)))
    engine = load_model(folder)
    ids = engine.tokenizer.encode(PROMPT)
    ours, _ = stepwise_logits(engine, ids, steps=0)
    assert (ours - reference_logits(case.hf, ids)).abs().max().item() < TOL


def test_dbrx_reads_rope_theta_from_attn_config(checkpoints: dict[str, Case], tmp_path: Path) -> None:
    folder = tmp_path / "dbrx"
    shutil.copytree(checkpoints["dbrx"].folder, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg.pop("rope_parameters", None)  # a Hub DBRX config: θ only inside attn_config
    (folder / "config.json").write_text(json.dumps(cfg))
    engine = load_model(folder)
    assert engine.args.rope.theta == cfg["attn_config"]["rope_theta"]
    ids = engine.tokenizer.encode(PROMPT)
    ours, _ = stepwise_logits(engine, ids, steps=0)
    assert (ours - reference_logits(checkpoints["dbrx"].hf, ids)).abs().max().item() < TOL


def test_sharded_checkpoint_with_index_loads_identically(tmp_path: Path) -> None:
    case = build("mixtral", tmp_path, max_shard_size="100KB")
    index = json.loads((case.folder / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    engine = load_model(case.folder)
    ids = engine.tokenizer.encode(PROMPT)
    ours, tokens = stepwise_logits(engine, ids, steps=2)
    ref = reference_logits(case.hf, ids + tokens[:-1])
    assert (ours - ref).abs().max().item() < TOL


@pytest.mark.parametrize("name", FAMILY_CASES)
def test_bfloat16_logits_match_transformers_in_bfloat16(checkpoints: dict[str, Case],
                                                        name: str) -> None:
    # bf16 rounding flips near-tie routing choices, so judge most positions (bfloat16_row_max)
    engine, row_max = bfloat16_row_max(checkpoints[name])  # [T]
    assert engine.model.output.weight.dtype == torch.bfloat16
    assert (row_max < 0.06).float().mean().item() >= 0.9
