"""A whole Q4_K_M-style model (Q4_K tensors with Q6_K for the head, attn_v and one ffn_down,
as llama.cpp mixes them) from an Ollama-style store: `moebench run --backend torch -m
ollama:NAME` reads it, stores router load, and the report draws heatmaps and the expert
specialisation. gguf-py 0.19 cannot quantise K-quants, so `gguf_kquants` writes them."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf")
transformers = pytest.importorskip("transformers")

from moebench.engine import load_model  # noqa: E402

from gguf_convert import convert, ollama_store  # noqa: E402
from gguf_kquants import quantize_q4_k, quantize_q6_k  # noqa: E402
from tiny_models import COMMON, PROMPT, REFERENCE_KW, build_from  # noqa: E402


def _mixtral_256() -> object:
    """Rows of 256 values, the K-quants' block: hidden 256, expert width 256."""
    return transformers.MixtralConfig(
        hidden_size=256, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
        max_position_embeddings=256, rope_parameters={"rope_type": "default", "rope_theta": 1e6},
        **COMMON, **REFERENCE_KW)


@pytest.fixture(scope="module")
def q4_k_m(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("q4km")
    case = build_from({"mixtral": (_mixtral_256, "MixtralForCausalLM")}, "mixtral", root)
    return case.folder, convert(case.folder, root / "tiny-q4_k_m.gguf", "Q4_K_M")


@pytest.mark.parametrize("qtype", ["Q4_K", "Q6_K"])
def test_k_quant_writer_round_trips(qtype: str) -> None:
    x = np.random.default_rng(1).standard_normal((4, 512)).astype(np.float32)
    kind = gguf.GGMLQuantizationType[qtype]
    raw = (quantize_q4_k if qtype == "Q4_K" else quantize_q6_k)(x)
    assert raw.shape == (4, 512 // 256 * gguf.GGML_QUANT_SIZES[kind][1])
    error = np.abs(gguf.quants.dequantize(raw, kind) - x).mean()
    assert error < (0.08 if qtype == "Q4_K" else 0.02)  # round to nearest on 4 / 6 bits


def test_q4_k_m_file_loads_with_its_type_mix(q4_k_m: tuple[Path, Path]) -> None:
    folder, path = q4_k_m
    engine = load_model(path)
    reference = load_model(folder)
    info = engine.info
    assert info.file_type == "Q4_K_M" and 4.5 < info.bits_per_weight < 7
    assert "Q4_K" in info.type_mix and "Q6_K" in info.type_mix
    ids = engine.tokenizer.encode(PROMPT)
    with torch.inference_mode():
        ours, ref = (e.model(torch.tensor([ids]), 0)[0] for e in (engine, reference))
    agree = (ours.argmax(-1) == ref.argmax(-1)).float().mean().item()
    print(f"\nQ4_K_M ({info.type_mix}, {info.bits_per_weight} bits/weight): max |Δlogit| "
          f"{(ours - ref).abs().max():.3f} (logits within ±{ref.abs().max():.1f}), "
          f"top-1 agreement {agree:.0%} over {len(ids)} positions")
    # 4-bit round to nearest on random weights: close in shape, not in the top-1 of flat logits
    assert torch.corrcoef(torch.stack([ours.flatten(), ref.flatten()]))[0, 1] > 0.8


def test_moebench_run_on_a_q4_k_m_ollama_pull(q4_k_m: tuple[Path, Path], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from moebench.cli import app

    ollama_store(tmp_path / "models", q4_k_m[1], "library/tiny-moe", "q4_k_m")
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "models"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(
        "suite: s\noptions: {max_tokens: 6, temperature: 0}\ntasks:\n"
        "  - name: add\n    scorer: exact\n    prompt: '{question}'\n    cases:\n"
        "      - {id: a, question: 'Seven plus five is', expected: '12'}\n"
        "      - {id: b, question: 'Two plus two is', expected: '4'}\n"
        "  - name: route\n    scorer: exact\n    prompt: '{question}'\n    cases:\n"
        "      - {id: c, question: 'A router picks the top experts', expected: 'x'}\n"
        "      - {id: d, question: 'The quick brown fox', expected: 'y'}\n")
    result = CliRunner().invoke(app, ["run", "--backend", "torch", "-m", "ollama:tiny-moe:q4_k_m",
                                      "-s", "s.yaml", "--out", "out", "--html", "r.html"])
    assert result.exit_code == 0, result.output
    facts = re.search(r"GGUF Q4_K_M · (\d+\.\d) bits/weight", result.stdout)
    assert facts and 4.5 < float(facts.group(1)) < 7, result.stdout
    assert "layers route the tasks" in result.stdout  # the specialisation table
    db = sqlite3.connect(next((tmp_path / "out").glob("*.db")))
    per_task = dict(db.execute("SELECT task, SUM(tokens) FROM router_load GROUP BY task"))
    assert set(per_task) == {"add", "route"} and min(per_task.values()) > 0
    assert db.execute("SELECT COUNT(*) FROM samples WHERE router IS NOT NULL").fetchone()[0] == 4
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "GGUF Q4_K_M" in html and "<svg" in html and "layer 1" in html
    assert "How differently the tasks use the experts" in html
