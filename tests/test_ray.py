"""`--backend torch --ray`: two demo models run as Ray actors on a local Ray instance store the
same greedy outputs, router counts and model facts as a local run; a checkpoint missing on the
worker is one line naming the node. Skipped only where Ray is not installed (CI installs it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moebench.cli import app
from moebench.paths import BUNDLED_TASKS
from moebench.store import Store

ray = pytest.importorskip("ray")
runner = CliRunner()
DEMO = ["demo-mixtral", "demo-deepseek"]


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    """One local Ray instance for the module (its start-up costs seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _run(out: str, *extra: str) -> str:
    models = [arg for name in DEMO for arg in ("-m", name)]
    result = runner.invoke(app, ["run", "--backend", "torch", *models, "-s",
                                 str(BUNDLED_TASKS / "demo.yaml"), "--limit", "1", "--out", out,
                                 *extra])
    assert result.exit_code == 0, result.output
    store = Store.open(out)
    try:
        return store.resolve("last")
    finally:
        store.close()


def _stored(out: str, run_id: str) -> tuple[list[tuple], list[dict], list[tuple]]:
    store = Store.open(out)
    try:
        samples = [(r["model"], r["task"], r["case_id"], r["output"], r["passed"],
                    r["output_tokens"]) for r in store.sample_rows([run_id])]
        models = store.model_rows([run_id])
        router = [tuple(r) for r in store.router_frame([run_id]).drop(columns="run_id")
                  .itertuples(index=False)]
    finally:
        store.close()
    return samples, models, router


def test_models_run_as_ray_actors_store_what_a_local_run_stores(ray_local: None) -> None:
    local = _run("local")
    remote = _run("ray", "--ray", "auto")  # the Ray instance this process started
    samples, models, router = _stored("local", local)
    ray_samples, ray_models, ray_router = _stored("ray", remote)
    assert samples == ray_samples and len(samples) >= 8  # same greedy outputs and verdicts
    assert router == ray_router and router  # router telemetry came back from the actors
    facts = ("model", "digest", "experts", "top_k", "total_params", "active_params", "loads")
    assert [{k: m[k] for k in facts} for m in models] == [
        {k: m[k] for k in facts} for m in ray_models]
    assert all(m["extra"]["ray"]["node"] and m["load_s"] > 0 for m in ray_models)
    assert "ray" not in models[0]["extra"]
    assert not ray.util.list_named_actors() and len(ray.nodes()) == 1  # actors ended


def test_a_checkpoint_missing_on_the_worker_is_one_line(ray_local: None, tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--backend", "torch", "--ray", "auto", "-m",
                                 str(tmp_path / "not-there"), "-s",
                                 str(BUNDLED_TASKS / "demo.yaml"), "--limit", "1"])
    assert result.exit_code == 1
    assert "on Ray node" in result.stderr and "every Ray worker node" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    usage = runner.invoke(app, ["run", "--ray", "auto", "-m", "demo-mixtral"])
    assert usage.exit_code == 2 and "add --backend torch" in usage.stderr
