"""How differently the tasks use the experts: JS against a shuffled-task baseline, over-used
experts, per-sample router counts in the store, and the report sections (synthetic loads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from _report_frames import demo_samples

from moebench.report.expert_divergence import (
    DIVERGENCE_COLUMNS,
    combined_router,
    expert_divergence,
    overused_experts,
)
from moebench.report.html_report import render_html
from moebench.report.specialisation import specialisation_blocks, specialisation_table
from moebench.store import Store
from moebench.types import (
    ROUTER_COLUMNS,
    Completion,
    ModelInfo,
    Record,
    Request,
    ScorerSpec,
)

UNIFORM = np.full(8, 1 / 8)
SKEWED = np.array([6, 1, 1, 1, 1, 1, 1, 4.0]) / 16


def _loads(dists: dict[str, np.ndarray], samples: int = 12, tokens: int = 40,
           layers: int = 3, seed: int = 7) -> pd.DataFrame:
    """Per-sample router rows: each sample routes `tokens`×2 slots per layer from its task's
    distribution."""
    rng = np.random.default_rng(seed)
    rows = []
    for task, p in dists.items():
        for case in range(samples):
            for layer in range(layers):
                for expert, n in enumerate(rng.multinomial(2 * tokens, p)):
                    if n:
                        rows.append(("r1", "m", "s", task, "prefill", layer, expert, int(n),
                                     f"c{case}", 1))
    return pd.DataFrame(rows, columns=[*ROUTER_COLUMNS, "case_id", "repeat"])


def _summed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.groupby(list(ROUTER_COLUMNS[:-1]), as_index=False)["tokens"].sum()


def test_identical_task_distributions_read_as_noise() -> None:
    result = expert_divergence(_loads({"a": UNIFORM, "b": UNIFORM, "c": UNIFORM}),
                               permutations=300)
    assert list(result.columns) == list(DIVERGENCE_COLUMNS)
    assert (result["unit"] == "sample").all() and (result["tasks"] == 3).all()
    assert (result["js_bits"] > 0).all()  # a finite sample always diverges a little ...
    ratio = result["js_bits"] / result["baseline_mean"]
    assert ratio.between(0.3, 3).all()  # ... about as much as shuffled labels do
    assert result["p_value"].min() > 0.01


def test_different_task_distributions_stand_far_above_the_baseline() -> None:
    result = expert_divergence(_loads({"a": UNIFORM, "b": SKEWED}), permutations=300)
    assert result["above_p95"].all()
    assert (result["js_bits"] > 5 * result["baseline_p95"]).all()
    assert (result["p_value"] <= 1 / 301 + 1e-9).all()


def test_task_sums_fall_back_to_shuffling_tokens() -> None:
    same = expert_divergence(_summed(_loads({"a": UNIFORM, "b": UNIFORM})), permutations=200)
    apart = expert_divergence(_summed(_loads({"a": UNIFORM, "b": SKEWED})), permutations=200)
    assert (same["unit"] == "token").all() and same["p_value"].min() > 0.01
    assert apart["above_p95"].all()
    # the same seed gives the same baseline
    again = expert_divergence(_summed(_loads({"a": UNIFORM, "b": SKEWED})), permutations=200)
    assert again["baseline_mean"].tolist() == apart["baseline_mean"].tolist()


def test_overused_experts_rank_load_over_mean_load() -> None:
    top = overused_experts(_loads({"a": UNIFORM, "b": SKEWED}), top=2)
    skewed = top[(top["task"] == "s/b") & (top["layer"] == 0)]
    assert skewed["expert"].tolist() == [0, 7]
    assert skewed["overuse"].iloc[0] > 2.5  # 6/16 of the load against a mean of 1/8
    assert skewed["lift"].iloc[0] > 1.2  # more than the two tasks together


def test_blocks_and_terminal_table_name_the_specialised_layers() -> None:
    blocks = specialisation_blocks(_summed(_loads({"a": UNIFORM, "b": SKEWED})),
                                   _loads({"a": UNIFORM, "b": SKEWED}), permutations=100)
    assert len(blocks) == 1 and blocks[0]["unit"] == "sample"
    assert blocks[0]["above"] == blocks[0]["n_layers"] == 3
    assert "b: e0 ×" in blocks[0]["layers"][0]["top"]
    assert specialisation_table(blocks[0]).row_count == 3


def test_store_keeps_each_samples_router_counts(tmp_path: Path) -> None:
    store = Store(tmp_path / "out")
    run_id = store.create_run({"suites": [{"name": "s", "path": "s.yaml", "sha256": "x"}],
                               "models": ["m"], "backend": "torch", "options": {}})
    store.add_model(run_id, ModelInfo(name="m", backend="torch", experts=2, top_k=1), 0)
    for i, task in enumerate(("a", "a", "b")):
        request = Request(suite="s", task=task, case_id=f"c{i}", prompt="p",
                          scorer=ScorerSpec("number"), case={"id": f"c{i}", "expected": 1})
        router = {"prefill": [[i + 1, 0]], "decode": [[0, 2]]}
        completion = Completion(text="1", model="m", latency_s=1.0, router=router)
        store.add_record(Record(run_id, "m", "torch", request, completion, None), seq=i)
    assert store.has_router([run_id])
    per_sample = store.router_frame([run_id], by_sample=True)
    assert list(per_sample.columns) == [*ROUTER_COLUMNS, "case_id", "repeat"]
    assert per_sample["tokens"].sum() == store.router_frame([run_id])["tokens"].sum() == 12
    assert sorted(set(per_sample["case_id"])) == ["c0", "c1", "c2"]
    combined = combined_router(store.router_frame([run_id]), per_sample)
    assert len(combined) == len(per_sample)
    store.close()


def test_html_report_shows_the_divergence_next_to_the_heatmaps() -> None:
    loads = _loads({"a": UNIFORM, "b": SKEWED}, layers=2)
    loads["model"] = "olmoe:7b"
    html = render_html(demo_samples(), None, _summed(loads), None, router_samples=loads)
    assert "How differently the tasks use the experts" in html
    assert "2/2 layers route the tasks more differently" in html
    assert html.index('id="experts"') < html.index('id="specialisation"')
