"""The engine on GGUF files converted from the tiny HF checkpoints: parity, quantisation, metadata.

F32 GGUF files must give transformers' logits (1e-4) and greedy tokens; Q8_0 files logits close
to them with ≥ 95% teacher-forced top-1 agreement (the figures are printed with `-s`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf")

from moebench.engine import load_model  # noqa: E402
from moebench.engine.gguf_file import GGUFFile  # noqa: E402
from moebench.errors import EngineError, OutOfMemoryRisk  # noqa: E402

from gguf_convert import convert  # noqa: E402
from tiny_models import PROMPT, SENTENCES, TOL, Case, greedy_tokens, max_diff  # noqa: E402
from tiny_models_more import build_more  # noqa: E402

GREEDY = ["mixtral", "deepseek_v2", "qwen2_moe"]


@pytest.fixture(scope="module")
def cases(checkpoints: dict[str, Case], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    root = tmp_path_factory.mktemp("more")
    more = {name: build_more(name, root) for name in ("qwen2_moe", "qwen3_moe", "olmoe", "gpt_oss")}
    return {**checkpoints, **more}


@pytest.fixture(scope="module")
def gguf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gguf")


def _engine(cases: dict[str, Case], gguf_dir: Path, name: str, qtype: str = "F32",
            **kw: Any) -> Any:
    suffix = "".join(f"-{k}" for k, v in kw.items() if v)
    path = gguf_dir / f"{name}-{qtype}{suffix}.gguf"
    if not path.is_file():
        convert(cases[name].folder, path, qtype, **kw)
    return load_model(path)


@pytest.mark.parametrize("name", GREEDY)
def test_f32_gguf_greedy_tokens_equal_transformers(cases: dict[str, Case], gguf_dir: Path,
                                                   name: str) -> None:
    engine = _engine(cases, gguf_dir, name)
    ours, theirs = greedy_tokens(engine, cases[name], n=64)
    assert ours == theirs


@pytest.mark.parametrize("name,kw", [
    ("dbrx", {}), ("deepseek_v2_yarn", {}), ("qwen3_moe", {}), ("olmoe", {}), ("gpt_oss", {}),
    ("deepseek_v2", {"legacy_kv_b": True}),  # Ollama / older llama.cpp: attn_kv_b, key_length
    ("mixtral", {"split_experts": True}),  # old Mixtral pulls: blk.N.ffn_gate.E.weight
    ("mixtral", {"ollama_swap": True}),  # Ollama's convert_mixtral: w2 under ffn_up_exps
])
def test_f32_gguf_logits_match_transformers(cases: dict[str, Case], gguf_dir: Path, name: str,
                                            kw: dict[str, bool]) -> None:
    engine = _engine(cases, gguf_dir, name, **kw)
    assert max_diff(engine, cases[name].hf, steps=8) < TOL


def test_every_gguf_tensor_is_read(cases: dict[str, Case], gguf_dir: Path) -> None:
    path = gguf_dir / "deepseek_v2-F32.gguf"
    _engine(cases, gguf_dir, "deepseek_v2")
    from moebench.engine.families import get_family
    from moebench.engine.gguf_config import hf_config
    from moebench.engine.gguf_weights import GGUFCheckpoint, virtual_tensors

    file = GGUFFile(path)
    family, cfg = hf_config(file)
    ckpt = GGUFCheckpoint(file, virtual_tensors(file, family, cfg), torch.float32, "cpu")
    get_family(family).load_weights(get_family(family).read_config(cfg), ckpt)
    assert ckpt.unused() == []


@pytest.mark.parametrize("name", GREEDY)
def test_q8_0_logits_close_and_top1_agrees(cases: dict[str, Case], gguf_dir: Path,
                                           name: str) -> None:
    engine = _engine(cases, gguf_dir, name, "Q8_0")
    case = cases[name]
    ids = engine.tokenizer.encode(PROMPT)
    # force transformers' greedy sequence (= the F32 GGUF engine's, tested above; cheaper)
    theirs = _engine(cases, gguf_dir, name).generate(ids, max_new_tokens=64, ignore_eos=True)
    with torch.inference_mode():
        ref = case.hf(torch.tensor([ids + theirs])).logits[0]
        ours = engine.model(torch.tensor([ids + theirs]), 0)[0]
    agree = (ours.argmax(-1) == ref.argmax(-1)).float().mean().item()
    per_position = (ours - ref).abs().amax(-1)  # [T]
    print(f"\n{name} Q8_0: max |Δlogit| {per_position.max():.4f}, median per position "
          f"{per_position.median():.4f} (logits within ±{ref.abs().max():.1f}), top-1 agreement "
          f"{agree:.1%} over {len(ids) + 64} positions")
    assert agree >= 0.95
    # a near-tie router choice that flips moves one position a lot; the typical one stays close
    assert per_position.median().item() < 0.05 * ref.abs().max().item()
    assert engine.info.file_type == "Q8_0" and 8.0 < engine.info.bits_per_weight < 9.5


def test_mxfp4_gpt_oss_experts(cases: dict[str, Case], gguf_dir: Path) -> None:
    """GPT-OSS as llama.cpp ships it: MXFP4 experts (4.25 bits), the rest F32 here."""
    engine = _engine(cases, gguf_dir, "gpt_oss", "MXFP4")
    ids = engine.tokenizer.encode(PROMPT)
    ids += engine.generate(ids, max_new_tokens=32, ignore_eos=True)
    with torch.inference_mode():
        ref = cases["gpt_oss"].hf(torch.tensor([ids])).logits[0]
        ours = engine.model(torch.tensor([ids]), 0)[0]
    agree = (ours.argmax(-1) == ref.argmax(-1)).float().mean().item()
    print(f"\ngpt_oss MXFP4 experts: max |Δlogit| {(ours - ref).abs().max():.4f}, "
          f"top-1 agreement {agree:.1%} over {len(ids)} positions")
    assert agree >= 0.8 and engine.info.type_mix.startswith("MXFP4")


@pytest.mark.parametrize("qtype", ["Q4_K", "Q6_K", "Q5_K", "Q3_K", "Q2_K", "Q4_0", "Q5_1"])
def test_per_expert_dequantisation_equals_gguf_quants(tmp_path: Path, qtype: str) -> None:
    """Random blocks of `qtype` in a stacked [E, rows, 256] tensor: slice e read alone is, bit for
    bit, gguf.quants' dequantisation of the whole tensor's slice e."""
    kind = gguf.GGMLQuantizationType[qtype]
    block, size = gguf.GGML_QUANT_SIZES[kind]
    experts, rows, cols = 3, 4, 256
    raw = np.random.default_rng(0).integers(0, 256, (experts, rows, cols // block * size), np.uint8)
    writer = gguf.GGUFWriter(str(tmp_path / "q.gguf"), "llama")
    writer.add_tensor("blk.0.ffn_gate_exps.weight", raw, raw_dtype=kind)
    writer.write_header_to_file(); writer.write_kv_data_to_file(); writer.write_tensors_to_file()
    writer.close()
    file = GGUFFile(tmp_path / "q.gguf")
    with np.errstate(invalid="ignore", over="ignore"):  # random bytes: some NaN/inf scales
        whole = gguf.quants.dequantize(raw, kind)
        slices = [file.array("blk.0.ffn_gate_exps.weight", e) for e in range(experts)]
    for e, one in enumerate(slices):
        assert one.shape == (rows, cols)
        assert np.array_equal(one.view(np.uint32), whole[e].view(np.uint32))  # NaN bits too


def test_gguf_tokenizer_equals_hf_tokenizer(cases: dict[str, Case], gguf_dir: Path) -> None:
    from tokenizers import Tokenizer as HF

    engine = _engine(cases, gguf_dir, "mixtral")
    hf = HF.from_file(str(cases["mixtral"].folder / "tokenizer.json"))
    corpus = [*SENTENCES, PROMPT, "  spaces\tand\nnewlines  ", "naïve café — ünïcödé 数字 123456",
              "<s> special </s> tokens", "emoji 🙂 and 'quotes' it's"]
    for text in corpus:
        assert engine.tokenizer.encode(text) == hf.encode(text).ids, text
        ids = hf.encode(text).ids
        assert engine.tokenizer.decode(ids) == hf.decode(ids), text
    assert engine.tokenizer.chat_template and engine.eos_ids == (2,)


def test_sentencepiece_vocab_round_trips() -> None:
    from moebench.engine.gguf_tokenizer import from_gguf

    pieces = ["<unk>", "<s>", "</s>", *[f"<0x{b:02X}>" for b in range(256)], "▁", "h", "e", "l", "o",
              "▁h", "el", "ll", "lo", "▁he", "llo", "▁hello"]
    types = [2, 3, 3, *[6] * 256, *[1] * (len(pieces) - 259)]
    merged = {"▁h": -1.0, "▁he": -2.0, "ll": -3.0, "llo": -4.0, "▁hello": -5.0, "el": -6.0, "lo": -7.0}
    scores = [merged.get(p, 0.0) for p in pieces]
    tok = from_gguf({"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": pieces,
                     "tokenizer.ggml.scores": scores, "tokenizer.ggml.token_type": types,
                     "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2})
    ids = tok.encode("hello hé")
    assert ids[0] == 1 and pieces.index("▁hello") in ids
    assert tok.decode(ids) == "hello hé"  # é through byte fallback


def test_memory_is_checked_before_dequantising(cases: dict[str, Case], gguf_dir: Path) -> None:
    _engine(cases, gguf_dir, "mixtral", "Q8_0")
    with pytest.raises(OutOfMemoryRisk, match="needs"):
        load_model(gguf_dir / "mixtral-Q8_0.gguf", available_bytes=1000)


def test_missing_keys_are_named(tmp_path: Path) -> None:
    writer = gguf.GGUFWriter(str(tmp_path / "bad.gguf"), "llama")
    writer.add_expert_count(4)
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), np.float32))
    writer.write_header_to_file(); writer.write_kv_data_to_file(); writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(EngineError, match="lacks llama.attention.head_count, llama.embedding_length, "
                                          "llama.block_count, llama.expert_used_count"):
        load_model(tmp_path / "bad.gguf")


def test_dense_and_unknown_architectures_are_refused(tmp_path: Path) -> None:
    for arch in ("llama", "bert"):
        writer = gguf.GGUFWriter(str(tmp_path / f"{arch}.gguf"), arch)
        writer.write_header_to_file(); writer.write_kv_data_to_file(); writer.write_tensors_to_file()
        writer.close()
        with pytest.raises(EngineError, match="not an MoE the engine reads"):
            load_model(tmp_path / f"{arch}.gguf")
