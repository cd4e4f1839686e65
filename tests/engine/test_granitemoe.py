"""Granite MoE (and GraniteMoeShared) against transformers: the four scales folded into weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import transformers

from moebench.engine import load_model

from tiny_models import (COMMON, PROMPT, REFERENCE_KW, TOL, Builders, Case, build_from,
                         greedy_tokens, max_diff)

SCALES = {"embedding_multiplier": 6.0, "attention_multiplier": 0.09, "residual_multiplier": 0.4,
          "logits_scaling": 2.5}
SIZES = {"hidden_size": 64, "intermediate_size": 32, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "num_local_experts": 8,
         "num_experts_per_tok": 2, "max_position_embeddings": 256}


def _granite() -> Any:
    return transformers.GraniteMoeConfig(**SIZES, **SCALES, **COMMON, **REFERENCE_KW)


def _granite_shared() -> Any:
    common = {**COMMON, "tie_word_embeddings": True}
    return transformers.GraniteMoeSharedConfig(**SIZES, **SCALES, shared_intermediate_size=48,
                                               **common, **REFERENCE_KW)


GRANITE: Builders = {"granitemoe": (_granite, "GraniteMoeForCausalLM"),
                     "granitemoeshared": (_granite_shared, "GraniteMoeSharedForCausalLM")}


@pytest.fixture(scope="module")
def granite(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    root = tmp_path_factory.mktemp("granite")
    return {name: build_from(GRANITE, name, root) for name in GRANITE}


@pytest.mark.parametrize("name", list(GRANITE))
def test_granite_logits_and_greedy_tokens_match(granite: dict[str, Case], name: str) -> None:
    engine = load_model(granite[name].folder)
    assert max_diff(engine, granite[name].hf, steps=8) < TOL
    ours, theirs = greedy_tokens(engine, granite[name], n=32)
    assert ours == theirs
    assert engine.info.family == "granitemoe" and engine.info.experts == 8


def test_granite_reads_every_tensor(granite: dict[str, Case]) -> None:
    from moebench.engine.config import read_config_json
    from moebench.engine.families import get_family
    from moebench.engine.weights import Checkpoint

    for case in granite.values():
        cfg = read_config_json(case.folder)
        family = get_family(cfg["model_type"])
        ckpt = Checkpoint(Path(case.folder))
        family.load_weights(family.read_config(cfg), ckpt)
        assert ckpt.unused() == []


@pytest.mark.parametrize("name", list(GRANITE))
def test_granite_gguf_matches_transformers(granite: dict[str, Case], tmp_path: Path,
                                          name: str) -> None:
    pytest.importorskip("gguf")
    from gguf_convert import convert

    path = convert(granite[name].folder, tmp_path / f"{name}.gguf")  # llama.cpp: granitemoe arch
    engine = load_model(path)
    assert engine.info.family == "granitemoe" and engine.info.weights_format == "gguf"
    assert max_diff(engine, granite[name].hf, steps=8) < TOL


def test_granite_native_decode_gives_the_eager_tokens(granite: dict[str, Case]) -> None:
    import shutil

    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("the native decode step needs a C compiler")
    engine = load_model(granite["granitemoe"].folder)
    ids = engine.tokenizer.encode(PROMPT)
    eager = engine.generate(ids, 32, ignore_eos=True)
    engine.native_decode()  # its multipliers are folded into the weights at load
    assert engine.generate(ids, 32, ignore_eos=True) == eager
