"""Family-agnostic model arguments, read from a Hugging Face `config.json`.

`ModelArgs` is the one description `model.py` builds from: sizes, attention kind (GQA or MLA),
RoPE, and the MoE layout (router kind, experts, shared experts, dense first layers). Each
family module in `families/` maps its own config keys onto it; this module holds the pieces
they share (RoPE in both spellings, EOS ids, parameter counts).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moebench.errors import EngineError

#: RoPE variants the engine implements (`rope_type` in config.json).
ROPE_KINDS = ("default", "linear", "yarn")


@dataclass(frozen=True)
class RopeArgs:
    """Rotary embedding: base, scaling variant and pair layout."""

    theta: float = 10000.0
    kind: str = "default"  # default | linear | yarn
    factor: float = 1.0
    original_max_position: int = 4096
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    mscale: float | None = None
    mscale_all_dim: float | None = None
    attention_factor: float | None = None
    truncate: bool = True
    #: DeepSeek rotates pairs (i, i+1); HF Llama-style checkpoints rotate (i, i + d/2)
    interleaved: bool = False


@dataclass(frozen=True)
class MoEArgs:
    """Routed experts, router variant, shared experts and which layers are dense."""

    n_experts: int
    top_k: int
    ffn_dim: int  # per routed expert
    router: str  # a key of moe.ROUTERS
    #: DBRX: divide the top-k weights by their p-norm (None: leave them)
    norm_p: float | None = None
    #: DeepSeek: multiply the top-k weights by this (no renormalisation)
    scaling: float = 1.0
    n_group: int = 1
    topk_group: int = 1
    group_limited: bool = False
    n_shared: int = 0
    shared_ffn_dim: int = 0  # width of the one fused shared MLP (all shared experts together)
    first_dense: int = 0  # layers [0, first_dense) use a dense MLP
    activation: str = "silu"
    #: further dense-MLP layers (Qwen's `mlp_only_layers` and `decoder_sparse_step`)
    dense_layers: tuple[int, ...] = ()
    #: Qwen2-MoE: the shared expert's output is scaled by sigmoid(shared_expert_gate(x))
    shared_gate: bool = False
    #: "swiglu", or "clamped_swiglu" (GPT-OSS: router and expert biases, clamped SwiGLU, up + 1)
    experts: str = "swiglu"
    swiglu_alpha: float = 1.702
    swiglu_limit: float = 7.0


@dataclass(frozen=True)
class MLAArgs:
    """DeepSeek multi-head latent attention sizes."""

    q_lora_rank: int | None
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int


@dataclass(frozen=True)
class ModelArgs:
    """Everything `model.Transformer` needs, independent of the checkpoint's naming."""

    family: str
    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    moe: MoEArgs
    rope: RopeArgs = field(default_factory=RopeArgs)
    dense_ffn_dim: int = 0
    norm: str = "rms"  # rms | layer (LayerNorm without bias)
    norm_eps: float = 1e-5
    mla: MLAArgs | None = None
    clip_qkv: float | None = None
    sliding_window: int | None = None
    qkv_bias: bool = False
    out_bias: bool = False
    tie_embeddings: bool = False
    max_seq_len: int = 4096
    eos_ids: tuple[int, ...] = ()
    bos_id: int | None = None
    #: "head": RMSNorm over each head's q and k (Qwen3-MoE); "full": over the whole q and k
    #: projections (OLMoE); None: no q/k norm
    qk_norm: str | None = None
    #: GPT-OSS: a learned per-head logit joins every attention softmax, then is dropped
    attn_sinks: bool = False
    #: per layer "sliding_attention" | "full_attention"; empty: `sliding_window` holds everywhere
    layer_types: tuple[str, ...] = ()
    #: Granite's (embedding, attention, residual multipliers, logits scaling); the family folds
    #: them into the weights at load, so the model never reads them
    granite_scales: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)

    def is_moe_layer(self, layer: int) -> bool:
        """Whether `layer` routes through experts (DeepSeek's first layers are dense)."""
        return layer >= self.moe.first_dense and layer not in self.moe.dense_layers

    def window(self, layer: int) -> int | None:
        """The sliding window of `layer` (None: full causal attention)."""
        if self.layer_types and self.layer_types[layer] != "sliding_attention":
            return None
        return self.sliding_window


def read_config_json(folder: Path) -> dict[str, Any]:
    """Load `config.json`, with a one-line error naming the fix when it is missing or broken."""
    path = folder / "config.json"
    if not path.is_file():
        raise EngineError(f"{folder} has no config.json — point at a Hugging Face checkpoint folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise EngineError(f"{path} is not valid JSON ({error}) — re-download the checkpoint") from None
    if not isinstance(data, dict):
        raise EngineError(f"{path} is not a JSON object — re-download the checkpoint")
    return data


def read_rope(cfg: Mapping[str, Any], default_theta: float, *, interleaved: bool = False,
              theta: float | None = None) -> RopeArgs:
    """RoPE from `rope_parameters` (transformers 5) or legacy `rope_theta` + `rope_scaling`.

    Mirrors `standardize_rope_params`: values in the dict win over the top-level `rope_theta`;
    `theta` (when given, e.g. DBRX's `attn_config.rope_theta`) wins over both.
    """
    params = dict(cfg.get("rope_parameters") or cfg.get("rope_scaling") or {})
    kind = params.get("rope_type") or params.get("type") or "default"
    if kind not in ROPE_KINDS:
        raise EngineError(f"rope_type '{kind}' is not supported by the engine — supported: "
                          f"{', '.join(ROPE_KINDS)}")
    base = theta or params.get("rope_theta") or cfg.get("rope_theta") or default_theta
    original = params.get("original_max_position_embeddings") or cfg.get(
        "max_position_embeddings", 4096)
    return RopeArgs(
        theta=float(base), kind=kind, factor=float(params.get("factor") or 1.0),
        original_max_position=int(original),
        beta_fast=float(params.get("beta_fast") or 32.0),
        beta_slow=float(params.get("beta_slow") or 1.0),
        mscale=params.get("mscale"), mscale_all_dim=params.get("mscale_all_dim"),
        attention_factor=params.get("attention_factor"),
        truncate=bool(params.get("truncate", True)), interleaved=interleaved,
    )


def eos_ids(cfg: Mapping[str, Any]) -> tuple[int, ...]:
    """`eos_token_id` as a tuple (config.json allows an int, a list or null)."""
    value = cfg.get("eos_token_id")
    if value is None:
        return ()
    return tuple(int(v) for v in value) if isinstance(value, list) else (int(value),)


def require(cfg: Mapping[str, Any], *keys: str) -> list[Any]:
    """The values of `keys`, or an EngineError naming the first missing one."""
    missing = [key for key in keys if cfg.get(key) is None]
    if missing:
        raise EngineError(f"config.json lacks '{missing[0]}' — is this a complete "
                          f"{cfg.get('model_type', 'HF')} checkpoint?")
    return [cfg[key] for key in keys]


def moe_layer_count(args: ModelArgs) -> int:
    """How many layers route through experts, without visiting each (configs can be absurd)."""
    first = min(args.moe.first_dense, args.n_layers)
    dense = {i for i in args.moe.dense_layers if first <= i < args.n_layers}
    return args.n_layers - first - len(dense)


def check_sizes(args: ModelArgs) -> None:
    """Every size in the config is a whole number ≥ 1 (raises EngineError naming the key).

    Run before anything is built: `count_params` then prices the model for the memory check,
    so `hidden_size: 1e9` or 10^8 experts is refused at once instead of allocating.
    """
    sizes = {"vocab_size": args.vocab_size, "hidden_size": args.dim,
             "num_hidden_layers": args.n_layers, "num_attention_heads": args.n_heads,
             "num_key_value_heads": args.n_kv_heads, "head_dim": args.head_dim,
             "number of experts": args.moe.n_experts, "experts per token": args.moe.top_k,
             "expert ffn size": args.moe.ffn_dim}
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise EngineError(f"config.json: {name} is {value!r}, not a whole number ≥ 1 — "
                              "is the checkpoint's config.json corrupt?")
    if args.moe.top_k > args.moe.n_experts:
        raise EngineError(f"config.json: {args.moe.top_k} experts per token but only "
                          f"{args.moe.n_experts} experts — is config.json corrupt?")


def count_params(args: ModelArgs) -> tuple[int, int]:
    """(total, active) parameters computed from the config alone.

    Active counts what one token touches: everything except the (n_experts − top_k) routed
    experts it skips in each MoE layer (embedding and lm_head included, as HF counts them).
    """
    d, m = args.dim, args.moe
    norm = d  # one weight vector (RMSNorm, or LayerNorm without bias)
    attn = _attention_params(args)
    biased = m.experts == "clamped_swiglu"  # GPT-OSS: expert biases [2I] + [H], router bias [E]
    expert = 3 * d * m.ffn_dim + (2 * m.ffn_dim + d if biased else 0)
    moe = d * m.n_experts + m.n_experts * expert + 3 * d * m.shared_ffn_dim
    moe += (m.n_experts if biased else 0) + (d if m.shared_gate else 0)
    dense = 3 * d * args.dense_ffn_dim
    n_moe = moe_layer_count(args)
    layers = args.n_layers * (attn + 2 * norm) + n_moe * moe + (args.n_layers - n_moe) * dense
    head = 0 if args.tie_embeddings else args.vocab_size * d
    total = args.vocab_size * d + layers + norm + head
    return total, total - n_moe * (m.n_experts - m.top_k) * expert


def _attention_params(args: ModelArgs) -> int:
    d = args.dim
    if args.mla is None:
        qkv = d * (args.n_heads + 2 * args.n_kv_heads) * args.head_dim
        bias = (args.n_heads + 2 * args.n_kv_heads) * args.head_dim if args.qkv_bias else 0
        qk_norm = {"head": 2, "full": args.n_heads + args.n_kv_heads}.get(args.qk_norm or "", 0)
        extra = qk_norm * args.head_dim + (args.n_heads if args.attn_sinks else 0)  # norms, sinks
        return qkv + bias + args.n_heads * args.head_dim * d + (d if args.out_bias else 0) + extra
    a, h = args.mla, args.n_heads
    qk = a.qk_nope_head_dim + a.qk_rope_head_dim
    q = h * qk * d if a.q_lora_rank is None else d * a.q_lora_rank + a.q_lora_rank + a.q_lora_rank * h * qk
    kv = d * (a.kv_lora_rank + a.qk_rope_head_dim) + a.kv_lora_rank
    kv += a.kv_lora_rank * h * (a.qk_nope_head_dim + a.v_head_dim)
    bias = 0
    if args.out_bias:  # DeepSeek's attention_bias covers q_a, kv_a and o
        bias = (a.q_lora_rank or 0) + a.kv_lora_rank + a.qk_rope_head_dim + d
    return q + kv + h * a.v_head_dim * d + bias
