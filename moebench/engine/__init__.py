"""The built-in PyTorch MoE engine: load an HF checkpoint folder and generate, with router telemetry.

```python
from moebench.engine import load_model
engine = load_model("path/to/checkpoint", dtype="float32", device="cpu")
new_ids = engine.generate(engine.tokenizer.encode("Question: ..."), max_new_tokens=32)
engine.info, engine.router_stats()
```
Families: see `supported_families()`; how to add one: `moebench/engine/README.md`.
Importing this package imports torch — the CLI imports it lazily.
"""

from __future__ import annotations

from moebench.engine.families import supported as supported_families
from moebench.engine.generate import GenerationStats, Sampling
from moebench.engine.loader import load_model
from moebench.engine.runtime import Engine, EngineInfo, resolve_folder
from moebench.engine.telemetry import RouterCounts, load_cv, usage_entropy
from moebench.engine.tokenizer import ChatTemplateError, Tokenizer

__all__ = [
    "ChatTemplateError", "Engine", "EngineInfo", "GenerationStats", "RouterCounts", "Sampling",
    "Tokenizer", "load_cv", "load_model", "resolve_folder", "supported_families", "usage_entropy",
]
