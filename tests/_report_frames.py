"""Store-shaped frames built by hand, for the metrics, comparison and HTML report tests.

They carry exactly the columns `Store.samples_frame()` / `models_frame()` / `router_frame()`
promise (`moebench.types`), so the report code is tested without a store or a model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from moebench.types import MODEL_COLUMNS, ROUTER_COLUMNS, SAMPLE_COLUMNS, SAMPLE_FRAME_EXTRA


def sample_row(**values: Any) -> dict[str, Any]:
    """One samples-frame row with sensible defaults; `values` override them."""
    row: dict[str, Any] = {c: None for c in (*SAMPLE_COLUMNS, *SAMPLE_FRAME_EXTRA)}
    row.update(run_id="r1", model="m", backend="ollama", suite="s", task="t", case_id="c",
               repeat=1, passed=True, score=1.0, answer="1", expected="1", latency_s=1.0,
               ttft_s=0.1, prompt_tokens=10, output_tokens=20, tokens_per_s=20.0,
               error=None, output="1", decode_s=1.0, queue_s=0.0, cold=False)
    row.update(values)
    return row


def samples_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A samples frame in the store's column order."""
    return pd.DataFrame(rows, columns=[*SAMPLE_COLUMNS, *SAMPLE_FRAME_EXTRA])


def demo_samples(seed: int = 1, run_id: str = "r1", repeats: int = 1,
                 models: tuple[tuple[str, float, float], ...] = (
                     ("mixtral:8x7b", 0.8, 12.0), ("qwen3:30b-a3b", 0.6, 30.0),
                     ("olmoe:7b", 0.4, 45.0)),
                 tasks: tuple[str, ...] = ("arithmetic", "entities"),
                 cases: int = 12) -> pd.DataFrame:
    """A plausible run: each model has (name, skill, tok/s); cold first request per model."""
    rng = np.random.default_rng(seed)
    rows = []
    for model, skill, tps in models:
        first = True
        for task in tasks:
            for c in range(cases):
                for r in range(1, repeats + 1):
                    ok = bool(rng.random() < skill)
                    out_tokens = int(rng.integers(20, 120))
                    latency = out_tokens / tps + rng.random() * 0.2 + (2.0 if first else 0.0)
                    rows.append(sample_row(
                        run_id=run_id, model=model, suite="seed-moe", task=task,
                        case_id=f"case{c:02d}", repeat=r, passed=ok, score=float(ok),
                        answer=str(c if ok else c + 1), expected=str(c), latency_s=latency,
                        ttft_s=0.05 + rng.random() * 0.1, output_tokens=out_tokens,
                        tokens_per_s=tps * (0.9 + 0.2 * rng.random()), output=f"answer {c}",
                        decode_s=out_tokens / tps, cold=first))
                    first = False
    return samples_frame(rows)


def demo_models(run_id: str = "r1") -> pd.DataFrame:
    """MoE facts for the three demo models (one partly on the GPU)."""
    gib = 1024**3
    rows = [
        dict(model="mixtral:8x7b", experts=8, top_k=2, shared_experts=0,
             total_params=46_700_000_000, active_params=12_900_000_000,
             size_bytes=26 * gib, vram_bytes=10 * gib, load_s=14.2, quantization="Q4_0"),
        dict(model="qwen3:30b-a3b", experts=128, top_k=8, shared_experts=0,
             total_params=30_500_000_000, active_params=3_300_000_000,
             size_bytes=18 * gib, vram_bytes=18 * gib, load_s=8.1, quantization="Q4_K_M"),
        dict(model="olmoe:7b", experts=64, top_k=8, shared_experts=None,
             total_params=6_900_000_000, active_params=1_300_000_000,
             size_bytes=4 * gib, vram_bytes=0, load_s=2.5, quantization="F16"),
    ]
    frame = pd.DataFrame([{**{c: None for c in MODEL_COLUMNS}, "run_id": run_id,
                           "backend": "ollama", "loads": 1, **r} for r in rows])
    return frame[list(MODEL_COLUMNS)]


def demo_router(run_id: str = "r1", model: str = "tiny-moe", layers: int = 4,
                experts: int = 8, tasks: tuple[str, ...] = ("arithmetic", "entities"),
                seed: int = 3) -> pd.DataFrame:
    """Tokens routed per expert per layer per task, both phases (an engine run)."""
    rng = np.random.default_rng(seed)
    rows = [dict(run_id=run_id, model=model, suite="seed-moe", task=task, phase=phase,
                 layer=layer, expert=e, tokens=int(rng.integers(0, 400)))
            for task in tasks for phase in ("prefill", "decode")
            for layer in range(layers) for e in range(experts)]
    return pd.DataFrame(rows, columns=list(ROUTER_COLUMNS))


def demo_runs(run_ids: tuple[str, ...] = ("r1",)) -> pd.DataFrame:
    """A minimal runs frame (the store decides its real columns; the report is lenient)."""
    return pd.DataFrame([dict(run_id=r, started_at="2026-11-23T14:00:00Z", backend="ollama",
                              suites="seed-moe", status="done") for r in run_ids])


def fill_store(out: Any, run_id: str, frame: pd.DataFrame, models: pd.DataFrame | None = None,
               router: dict[str, Any] | None = None) -> None:
    """Write `frame`'s samples (and model facts) into a real `Store` under `out` as run_id.

    `router` ({"prefill": [[tokens per expert] per layer], ...}) is attached to every
    sample of the first model, as the engine backend would report it.
    """
    from moebench.store import Store
    from moebench.types import Completion, ModelInfo, Record, Request, Score, ScorerSpec

    store = Store(out)
    names = list(dict.fromkeys(frame["model"]))
    store.create_run({"id": run_id, "suites": [{"name": "seed-moe"}], "models": names,
                      "backend": "ollama", "options": {}})
    facts = {r["model"]: r for r in (models.to_dict("records") if models is not None else [])}
    for position, name in enumerate(names):
        f = facts.get(name, {})
        keep = {k: (None if pd.isna(v) else v) for k, v in f.items()
                if k in ModelInfo.__dataclass_fields__ and k not in ("name", "backend", "extra")}
        store.add_model(run_id, ModelInfo(name=name, backend="ollama", **keep), position)
    for seq, r in enumerate(frame.to_dict("records")):
        req = Request(suite=r["suite"], task=r["task"], case_id=r["case_id"], prompt="Q",
                      scorer=ScorerSpec("number"), case={"expected": r["expected"]},
                      repeat=int(r["repeat"]))
        comp = Completion(text=r["output"], model=r["model"], latency_s=r["latency_s"],
                          ttft_s=r["ttft_s"], output_tokens=r["output_tokens"],
                          decode_s=r["decode_s"],
                          router=router if r["model"] == names[0] else None)
        error = r["error"] if isinstance(r["error"], str) else None
        score = None if error else Score(float(r["score"]), bool(r["passed"]), r["answer"])
        store.add_record(Record(run_id, r["model"], "ollama", req, comp, score, error),
                         seq=seq, cold=bool(r["cold"]))
    store.set_status(run_id, "completed")
    store.close()
