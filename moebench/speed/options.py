"""What `moebench speed` was asked to do: the sweep's options, validated once.

`parse_counts` turns `--prompt-tokens 128,512,2048` style values into positive integers; the
CLI maps its ValueError to a usage error (exit 2), so bad input never reaches a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_PROMPT_TOKENS = (128, 512, 2048)
DEFAULT_GEN_TOKENS = 128
DEFAULT_REPEATS = 5
#: sd above this fraction of the mean flags a cell `high_variance`
HIGH_VARIANCE = 0.10


def parse_counts(text: str) -> tuple[int, ...]:
    """`"128,512"` → (128, 512): a comma list of positive integers, duplicates dropped."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(not p for p in parts):
        raise ValueError(f"{text!r} is not a comma list of numbers, e.g. 128,512,2048")
    values: list[int] = []
    for part in parts:
        try:
            value = int(part)
        except ValueError:
            raise ValueError(f"{part!r} is not a whole number (give e.g. 128,512,2048)") from None
        if value <= 0:
            raise ValueError(f"{value} must be greater than 0")
        if value not in values:
            values.append(value)
    return tuple(values)


@dataclass(frozen=True)
class SpeedOptions:
    """One `moebench speed` invocation."""

    models: tuple[str, ...] = ()
    backend: str | None = None
    host: str | None = None
    prompt_tokens: tuple[int, ...] = DEFAULT_PROMPT_TOKENS
    gen_tokens: int = DEFAULT_GEN_TOKENS
    repeats: int = DEFAULT_REPEATS
    concurrency: tuple[int, ...] = (1,)
    out: Path = Path("results")
    csv: Path | None = None
    html: Path | None = None
    evict: bool = False
    timeout: float = 600.0
    dtype: str = "float32"
    device: str = "cpu"
    api_key_env: str = "OPENAI_API_KEY"
    #: memory bandwidth in GB/s for the roofline (None: measure it)
    bandwidth_gb_s: float | None = None
    #: seed for the prompts' nonces (None: random, so no two runs share a prompt)
    seed: int | None = None
    #: torch backend: a `torch.compile`d decode step (`--compile`), compiled after each load
    compile: bool = False
    #: torch backend: the C decode step (`--native`) where it covers the model
    native: bool = False

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly options for the runs table."""
        return {"kind": "speed", "prompt_tokens": list(self.prompt_tokens),
                "gen_tokens": self.gen_tokens, "repeats": self.repeats,
                "concurrency": list(self.concurrency), "evict": self.evict,
                "dtype": self.dtype, "device": self.device, "compile": self.compile,
                "native": self.native,
                "bandwidth_gb_s": self.bandwidth_gb_s}
