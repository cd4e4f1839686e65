"""Fake model facts for the Ollama stand-in: MoE fixtures and the JSON shapes built from them.

`FakeModel` holds what a real Ollama reports about one model (family/architecture, expert
counts, parameter count, quantization, sizes, digest). The payload helpers turn it into the
exact `/api/tags`, `/api/show` and `/api/ps` entries of `shared/notes/ollama-api.md` §2–§4.
Numbers in `LIBRARY` are realistic fixtures (notes §3 and §7), not measured values.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from moebench.units import human_number


def normalize_name(name: str) -> str:
    """`dbrx` → `dbrx:latest`; names are matched case-insensitively by Ollama."""
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def local_time(when: datetime) -> str:
    """RFC3339 in local time with an offset, as Ollama writes `modified_at` / `expires_at`."""
    return when.astimezone().isoformat()


def utc_now() -> str:
    """`created_at`: UTC RFC3339 with a trailing Z."""
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class FakeModel:
    """One model the stand-in serves (or can pull). `size` is on-disk bytes."""

    name: str
    arch: str = "llama"
    experts: int = 8
    experts_used: int = 2
    shared_experts: int = 0
    parameter_count: int = 46_702_792_704
    quantization: str = "Q4_0"
    size: int = 26_442_493_141
    context_length: int = 32768
    block_count: int = 32
    embedding_length: int = 4096
    #: resident bytes once loaded (/api/ps `size`); default 1.1 × on-disk size
    resident: int | None = None
    #: fraction of the resident bytes in VRAM (/api/ps `size_vram`): 1.0 = all GPU, 0 = CPU
    gpu_fraction: float = 1.0
    capabilities: tuple[str, ...] = ("completion", "tools")
    family: str | None = None
    extra_info: dict[str, Any] = field(default_factory=dict)
    #: timed models (`standin_speed`): prompt-processing and generation rates in tokens/s
    prompt_tok_s: float | None = None
    gen_tok_s: float | None = None
    #: a timed model ends with EOS after this many tokens (unless `ignore_eos`)
    eos_after: int | None = None
    #: relative sd of a timed model's per-request rates (0 = steady)
    jitter: float = 0.0
    #: per-expert FFN width (`{arch}.expert_feed_forward_length` in /api/show), when known
    expert_ffn: int | None = None

    @property
    def full_name(self) -> str:
        """The name with its tag (`mixtral:latest`)."""
        return normalize_name(self.name)

    @property
    def digest(self) -> str:
        """64 hex characters, stable per name (the manifest digest; no `sha256:` prefix)."""
        return hashlib.sha256(self.full_name.encode()).hexdigest()

    @property
    def resident_bytes(self) -> int:
        """Bytes resident while loaded."""
        return self.resident if self.resident is not None else int(self.size * 1.1)

    def details(self) -> dict[str, Any]:
        """The `details` object shared by tags, show and ps."""
        family = self.family or self.arch
        return {"parent_model": "", "format": "gguf", "family": family, "families": [family],
                "parameter_size": human_number(self.parameter_count),
                "quantization_level": self.quantization}

    def model_info(self) -> dict[str, Any]:
        """GGUF KV metadata with `{arch}.*` keys, as `/api/show` returns it (arrays as null)."""
        a = self.arch
        info: dict[str, Any] = {
            "general.architecture": a, "general.file_type": 2,
            "general.parameter_count": self.parameter_count, "general.quantization_version": 2,
            f"{a}.block_count": self.block_count, f"{a}.context_length": self.context_length,
            f"{a}.embedding_length": self.embedding_length,
            f"{a}.attention.head_count": 32, f"{a}.attention.head_count_kv": 8,
            "tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": None,
        }
        if self.experts:
            info[f"{a}.expert_count"] = self.experts
            info[f"{a}.expert_used_count"] = self.experts_used
        if self.shared_experts:
            info[f"{a}.expert_shared_count"] = self.shared_experts
        if self.expert_ffn:
            info[f"{a}.expert_feed_forward_length"] = self.expert_ffn
        info.update(self.extra_info)
        return info

    def layers(self) -> list[tuple[str, int]]:
        """(sha256:digest, bytes) per blob of the manifest: weights, then small text blobs."""
        small = [("template", 1_245), ("license", 11_357), ("params", 96)]
        blobs = [("model", self.size - sum(s for _, s in small))] + small
        return [("sha256:" + hashlib.sha256(f"{self.full_name}/{kind}".encode()).hexdigest(), n)
                for kind, n in blobs]


MODIFIED_AT = datetime(2025, 5, 10, 15, 6, 48, tzinfo=timezone.utc)


def tags_entry(model: FakeModel) -> dict[str, Any]:
    """One `/api/tags` entry (both `name` and `model`, as real clients read either)."""
    return {"name": model.full_name, "model": model.full_name,
            "modified_at": local_time(MODIFIED_AT), "size": model.size,
            "digest": model.digest, "details": model.details()}


def show_payload(model: FakeModel) -> dict[str, Any]:
    """The `/api/show` body: modelfile, parameters, template, details, model_info, capabilities."""
    return {
        "modelfile": f'# Modelfile generated by "ollama show"\nFROM {model.full_name}\n',
        "parameters": 'stop                           "[INST]"\nstop                           "[/INST]"',
        "template": "[INST] {{ if .System }}{{ .System }} {{ end }}{{ .Prompt }} [/INST]",
        "details": model.details(),
        "model_info": model.model_info(),
        "tensors": [{"name": "token_embd.weight", "type": model.quantization,
                     "shape": [model.embedding_length, 32000]}],
        "capabilities": list(model.capabilities),
        "modified_at": local_time(MODIFIED_AT),
    }


def ps_entry(model: FakeModel, expires: datetime, context_length: int) -> dict[str, Any]:
    """One `/api/ps` entry for a loaded model."""
    resident = model.resident_bytes
    return {"name": model.full_name, "model": model.full_name, "size": resident,
            "digest": model.digest, "details": model.details(),
            "expires_at": local_time(expires), "size_vram": int(resident * model.gpu_fraction),
            "context_length": context_length}


#: "forever" for a negative keep_alive (Ollama shows a far-future date).
FOREVER = timedelta(days=365 * 290)

#: Realistic MoE fixtures keyed by full name (notes §3 and §7; numbers approximate).
LIBRARY: dict[str, FakeModel] = {m.full_name: m for m in (
    FakeModel("mixtral:8x7b"),
    FakeModel("dbrx:latest", arch="dbrx", experts=16, experts_used=4,
              parameter_count=131_596_523_520, size=74_000_000_000, block_count=40,
              embedding_length=6144, gpu_fraction=0.45),
    FakeModel("deepseek-v2:16b", arch="deepseek2", experts=64, experts_used=6,
              shared_experts=2, parameter_count=15_706_484_224, size=8_905_000_000,
              context_length=163840, block_count=27, embedding_length=2048),
    FakeModel("qwen3:30b-a3b", arch="qwen3moe", experts=128, experts_used=8,
              parameter_count=30_532_122_624, quantization="Q4_K_M", size=18_556_000_000,
              context_length=40960, block_count=48, embedding_length=2048,
              capabilities=("completion", "tools", "thinking")),
    FakeModel("gpt-oss:20b", arch="gptoss", experts=32, experts_used=4,
              parameter_count=20_914_757_184, quantization="MXFP4", size=13_780_000_000,
              context_length=131072, block_count=24, embedding_length=2880,
              capabilities=("completion", "tools", "thinking")),
    FakeModel("granite3-moe:1b", arch="granitemoe", experts=32, experts_used=8,
              parameter_count=1_334_000_000, quantization="Q4_K_M", size=821_690_000,
              context_length=4096, block_count=24, embedding_length=1024, gpu_fraction=0.0),
)}

#: Installed by default: a small set so listings stay short.
DEFAULT_INSTALLED = ("mixtral:8x7b", "deepseek-v2:16b", "granite3-moe:1b")
