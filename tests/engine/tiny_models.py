"""Builders of tiny random checkpoints of every engine family (used by conftest and tests).

Each case is a real `save_pretrained` folder (Hub-layout tensor names, v5 config.json) plus a
small byte-level BPE tokenizer trained here on a few sentences, with a chat template. The
transformers model object is kept as the reference (eager attention, eager experts, fp32).
Also the parity helpers both parity test modules use (engine vs reference logits and tokens).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers

VOCAB = 320
PROMPT = "Question: how many experts does the router pick for every token?"
TOL = 1e-4  # fp32 parity: largest |engine − transformers| logit
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Mixture of experts models route every token to a few experts.",
    "Question: how many apples are left? Answer: Let's think step by step.",
    "A router picks the top experts; the shared expert sees every token.",
    "Seven plus five is twelve, and twelve minus two is ten.",
]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}\n"
    "  {% if message['role'] == 'system' %}{{ '<<SYS>> ' + message['content'] | trim + ' <</SYS>>\\n' }}\n"
    "  {% elif message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}\n"
    "  {% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}\n"
    "  {% else %}{{ raise_exception('Unknown role: ' + message['role']) }}\n"
    "  {% endif %}\n"
    "{% endfor %}\n"
    "{% if add_generation_prompt %}{{ ' ' }}{% endif %}"
)
REFERENCE_KW = {"attn_implementation": "eager", "experts_implementation": "eager"}
COMMON = {"vocab_size": VOCAB, "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": False}


@dataclass
class Case:
    """One saved tiny checkpoint and its transformers reference model."""

    name: str
    folder: Path
    hf: Any


def _mixtral() -> Any:
    return transformers.MixtralConfig(
        hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
        max_position_embeddings=256, rope_parameters={"rope_type": "default", "rope_theta": 1e6},
        **COMMON, **REFERENCE_KW)


def _mixtral_window() -> Any:
    config = _mixtral()
    config.sliding_window = 5
    return config


def _dbrx() -> Any:
    return transformers.DbrxConfig(
        d_model=64, n_heads=4, n_layers=2, max_seq_len=256,
        attn_config={"clip_qkv": 0.3, "kv_n_heads": 2, "rope_theta": 5000.0},
        ffn_config={"ffn_hidden_size": 96, "moe_num_experts": 4, "moe_top_k": 2},
        rope_parameters={"rope_type": "default", "rope_theta": 5000.0}, **COMMON, **REFERENCE_KW)


def _deepseek(**extra: Any) -> Any:
    values: dict[str, Any] = dict(
        hidden_size=64, intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=3,
        num_attention_heads=4, n_routed_experts=8, n_shared_experts=2, num_experts_per_tok=2,
        first_k_dense_replace=1, routed_scaling_factor=1.5, topk_method="greedy",
        q_lora_rank=None, kv_lora_rank=16, qk_nope_head_dim=16, qk_rope_head_dim=8,
        v_head_dim=16, max_position_embeddings=256)
    values.update(extra)
    return transformers.DeepseekV2Config(**values, **COMMON, **REFERENCE_KW)


def _deepseek_yarn() -> Any:
    return _deepseek(
        topk_method="group_limited_greedy", n_group=4, topk_group=2, q_lora_rank=24,
        attention_bias=True,
        rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                         "original_max_position_embeddings": 64, "beta_fast": 32,
                         "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707})


Builders = dict[str, tuple[Callable[[], Any], str]]  # name → (config maker, model class)

BUILDERS: Builders = {
    "mixtral": (_mixtral, "MixtralForCausalLM"),
    "mixtral_window": (_mixtral_window, "MixtralForCausalLM"),
    "dbrx": (_dbrx, "DbrxForCausalLM"),
    "deepseek_v2": (_deepseek, "DeepseekV2ForCausalLM"),
    "deepseek_v2_yarn": (_deepseek_yarn, "DeepseekV2ForCausalLM"),
}


def save_tokenizer(folder: Path, template: str | None = CHAT_TEMPLATE) -> None:
    """A byte-level BPE tokenizer trained on SENTENCES, with `<s>` prepended on encode."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(SENTENCES, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok.save(str(folder / "tokenizer.json"))
    config: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>",
                              "eos_token": "</s>", "unk_token": "<unk>"}
    if template is not None:
        config["chat_template"] = template
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def randomize(model: Any, seed: int) -> None:
    """Larger-than-init random weights (clearer logits), norms around 1, zero-init biases set."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if "norm" in name and param.dim() == 1:
                param.copy_(1.0 + 0.1 * noise)
            else:
                param.copy_(0.08 * noise)


def build_from(builders: Builders, name: str, root: Path,
               extra: Callable[[Any, int], None] | None = None, **save_kw: Any) -> Case:
    """Build, randomize (then `extra(model, seed)`) and save `builders[name]` under `root/name`."""
    make_config, cls = builders[name]
    torch.manual_seed(0)
    model = getattr(transformers, cls)(make_config()).eval()
    randomize(model, seed=len(name))
    if extra is not None:
        extra(model, len(name))
    folder = root / name
    model.save_pretrained(folder, **save_kw)
    save_tokenizer(folder)
    return Case(name, folder, model)


def build(name: str, root: Path, **save_kw: Any) -> Case:
    """Build, randomize and save the tiny model `name` under `root/name`."""
    return build_from(BUILDERS, name, root, **save_kw)


def stepwise_logits(engine: Any, ids: list[int], steps: int) -> tuple[torch.Tensor, list[int]]:
    """Prefill logits for every prompt position, then `steps` greedy KV-cache decode steps."""
    model = engine.model
    with torch.inference_mode():
        rows = [model(torch.tensor([ids]), 0)[0]]  # [T, V]
        tokens = [int(rows[0][-1].argmax())]
        for _ in range(steps):
            rows.append(model(torch.tensor([[tokens[-1]]]), len(ids) + len(tokens) - 1)[0])
            tokens.append(int(rows[-1][-1].argmax()))
    return torch.cat(rows), tokens


def reference_logits(hf: Any, ids: list[int]) -> torch.Tensor:
    """transformers' logits `[T, V]` for `ids` in one forward pass."""
    with torch.inference_mode():
        return hf(torch.tensor([ids])).logits[0]


def max_diff(engine: Any, hf: Any, steps: int = 0) -> float:
    """Largest |engine − transformers| logit over PROMPT and `steps` decode steps."""
    ids = engine.tokenizer.encode(PROMPT)
    ours, tokens = stepwise_logits(engine, ids, steps)
    return (ours - reference_logits(hf, ids + tokens[:-1])).abs().max().item()


def greedy_tokens(engine: Any, case: Case, n: int = 64) -> tuple[list[int], list[int]]:
    """The engine's and transformers' greedy continuations of PROMPT, `n` tokens each (no eos)."""
    ids = engine.tokenizer.encode(PROMPT)
    ours = engine.generate(ids, max_new_tokens=n, temperature=0.0, ignore_eos=True)
    case.hf.generation_config.eos_token_id = None  # let both run the full n tokens
    with torch.inference_mode():
        out = case.hf.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False,
                               pad_token_id=0)
    return ours, out[0, len(ids):].tolist()


def bfloat16_row_max(case: Case) -> tuple[Any, torch.Tensor]:
    """The engine in bf16 and its largest |logit − transformers-in-bf16| per position `[T]`.

    Compare like with like: bf16 rounding flips near-tie routing choices (transformers' own eager
    and sdpa bf16 runs disagree at a position or two), so tests judge most positions.
    """
    from moebench.engine import load_model

    engine = load_model(case.folder, dtype="bfloat16")
    ids = engine.tokenizer.encode(PROMPT)
    reference = copy.deepcopy(case.hf).to(torch.bfloat16)
    with torch.inference_mode():
        ours = engine.model(torch.tensor([ids]), 0)[0].float()
        ref = reference(torch.tensor([ids])).logits[0].float()
    return engine, (ours - ref).abs().amax(dim=-1)  # logit std ≈ 0.65, bf16 eps = 2^-8


def logits(engine: Any, ids: list[int]) -> Any:
    """Teacher-forced logits `[T, V]` of `ids` from one forward pass of the engine's model."""
    import torch

    with torch.inference_mode():
        return engine.model(torch.tensor([ids]), 0)[0]


def compiled_matches_eager(folder: Any, prompt: str = PROMPT, new_tokens: int = 24) -> Any:
    """Load `folder` fresh (compiling changes an engine), decode `new_tokens` of `prompt`
    eagerly, compile the decode step for 64 positions, and assert the same tokens and router
    counts; returns (the compiled engine, the prompt ids, the eager tokens). Skips without a
    C compiler."""
    import shutil

    import pytest

    from moebench.engine import load_model

    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("torch.compile on CPU needs a C compiler")
    engine = load_model(folder)
    ids = engine.tokenizer.encode(prompt)
    engine.reset_router_stats()
    eager = engine.generate(ids, new_tokens, ignore_eos=True)
    counts = engine.router_stats()
    assert engine.compile_decode(length=64) > 0
    engine.reset_router_stats()
    assert engine.generate(ids, new_tokens, ignore_eos=True) == eager
    assert engine.router_stats() == counts
    return engine, ids, eager
