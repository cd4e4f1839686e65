"""The runner end to end through the real Ollama backend against the in-process stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest
from _run_support import MODELS, RecordingEvents, standin, write_suite  # noqa: F401

from moebench.errors import BackendUnavailable, ModelNotFound
from moebench.runner import RunOptions, run
from moebench.store import Store
from moebench.testing.ollama_standin import OllamaStandin
from moebench.types import ModelInfo


def _options(server: OllamaStandin, suite: Path, **kw: object) -> RunOptions:
    base = {"models": list(MODELS), "suites": [suite], "host": server.url, "out": Path("out"),
            "retries": 0}
    return RunOptions(**{**base, **kw})


def _samples(run_id: str):
    store = Store.open("out")
    try:
        return store.samples_frame([run_id]), store.run(run_id)
    finally:
        store.close()


def _generation_bodies(server: OllamaStandin) -> list[dict]:
    # Only the suite's prompts (the warm-up request is left out).
    return [body for _, path, body in server.stats.log
            if path == "/api/chat" and body and body.get("messages")
            and str(body["messages"][-1].get("content", "")).startswith(("Q:", "Say"))]


def test_full_run_stores_every_sample_once(standin: OllamaStandin, tmp_path: Path) -> None:
    events = RecordingEvents()
    result = run(_options(standin, write_suite(tmp_path)), events)
    samples, row = _samples(result.run_id)
    assert result.status == "completed" and row["status"] == "completed"
    assert len(samples) == result.samples == 2 * 5
    assert samples.duplicated(["model", "suite", "task", "case_id", "repeat"]).sum() == 0
    assert samples.groupby("model")["passed"].sum().tolist() == [4, 4]  # a3 is answered wrong
    assert samples.groupby("model")["cold"].sum().tolist() == [1, 1]
    assert set(samples["stripped"].dropna()) >= {"The answer is 2."}
    assert dict(standin.stats.loads) == {m: 1 for m in MODELS}  # one load per model
    assert events.started == [(MODELS[0], 5), (MODELS[1], 5)]
    assert [i.name for i in events.ended] == list(MODELS)
    assert row["machine"]["cores"] >= 1 and row["server_version"]
    assert row["options"]["models"] == list(MODELS)


def test_repeats_get_distinct_seeds_unless_the_suite_sets_one(
        standin: OllamaStandin, tmp_path: Path) -> None:
    result = run(_options(standin, write_suite(tmp_path), models=[MODELS[0]], repeats=3,
                          limit=1))
    samples, _ = _samples(result.run_id)
    assert sorted(samples["repeat"].tolist()) == [1, 1, 2, 2, 3, 3]  # 2 tasks × 3 repeats
    seeds = {b["options"].get("seed") for b in _generation_bodies(standin)}
    assert seeds == {1, 2, 3}

    write_suite(tmp_path, seed=7)
    standin.stats.log.clear()
    run(_options(standin, tmp_path / "mini.yaml", models=[MODELS[0]], repeats=2, limit=1))
    assert {b["options"].get("seed") for b in _generation_bodies(standin)} == {7}


def test_limit_and_concurrency(tmp_path: Path) -> None:
    from _run_support import responder

    with OllamaStandin(models=list(MODELS), responder=responder, token_delay=0.005,
                       parallel=2) as server:
        result = run(_options(server, write_suite(tmp_path, n=6), models=[MODELS[0]],
                              limit=4, concurrency=2))
        assert server.stats.max_in_flight == 2
    samples, _ = _samples(result.run_id)
    assert samples.groupby("task").size().to_dict() == {"arith": 4, "echo": 1}
    assert samples["case_id"].tolist()[:4] == ["a1", "a2", "a3", "a4"]  # run order, not finish


def test_failed_requests_are_rows_and_resume_redoes_them(
        standin: OllamaStandin, tmp_path: Path) -> None:
    suite = write_suite(tmp_path)

    class FailAfterWarmUp(RecordingEvents):
        def on_model_start(self, info: ModelInfo, total: int) -> None:
            standin.faults.fail_next(2)  # retries=0: the first two requests fail for good

    first = run(_options(standin, suite, models=[MODELS[0]]), FailAfterWarmUp())
    samples, _ = _samples(first.run_id)
    assert first.status == "completed" and first.errors == 2
    assert samples["error"].notna().sum() == 2
    assert "500" in samples["error"].dropna().iloc[0]

    again = run(_options(standin, suite, resume="last"))
    samples, _ = _samples(first.run_id)
    assert again.run_id == first.run_id and (again.samples, again.kept) == (2, 3)
    assert samples["error"].isna().all() and len(samples) == 5


@pytest.mark.parametrize("concurrency", [1, 2])
def test_keyboard_interrupt_keeps_rows_and_resume_finishes(
        standin: OllamaStandin, tmp_path: Path, concurrency: int) -> None:
    suite = write_suite(tmp_path)
    result = run(_options(standin, suite, concurrency=concurrency),
                 RecordingEvents(interrupt_after=3))
    samples, row = _samples(result.run_id)
    assert result.status == "interrupted" and row["status"] == "interrupted"
    assert len(samples) == 3

    events = RecordingEvents()
    resumed = run(_options(standin, suite, resume=result.run_id), events)
    samples, row = _samples(result.run_id)
    assert row["status"] == "completed" and len(samples) == 10
    assert samples.duplicated(["model", "task", "case_id", "repeat"]).sum() == 0
    assert (resumed.kept, resumed.samples) == (3, 7)
    assert events.started == [(MODELS[0], 2), (MODELS[1], 5)]

    loads = sum(standin.stats.loads.values())
    again = run(_options(standin, suite, resume="last"), RecordingEvents())
    assert (again.kept, again.samples) == (10, 0)
    assert sum(standin.stats.loads.values()) == loads  # finished models are not reloaded


def test_resume_redoes_a_model_whose_digest_changed(
        standin: OllamaStandin, tmp_path: Path) -> None:
    result = run(_options(standin, write_suite(tmp_path), models=[MODELS[0]]))
    store = Store.open("out")
    with store.db:  # as if the model had been re-pulled since: its rows carry an old digest
        store.db.execute("UPDATE samples SET digest = 'old'")
    store.close()
    events = RecordingEvents()
    again = run(_options(standin, tmp_path / "mini.yaml", resume="last"), events)
    assert again.samples == 5 and again.kept == 0
    assert any("new digest" in note for note in events.notes)
    samples, _ = _samples(result.run_id)
    assert len(samples) == 5 and (samples["error"].isna()).all()


def test_unknown_model_fails_the_run_with_a_fix(standin: OllamaStandin, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="moebench pull nosuch"):
        run(_options(standin, write_suite(tmp_path), models=["nosuch"]))
    _, row = _samples("last")
    assert row["status"] == "failed"


def test_server_down_without_demo_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("moebench.runner.DEMO_MODELS_DIR", tmp_path / "no-demo-models")
    with pytest.raises(BackendUnavailable, match="ollama serve"):
        run(RunOptions(host="http://127.0.0.1:9", out=Path("out")))
    with pytest.raises(BackendUnavailable, match="--host URL"):
        run(RunOptions(host="http://127.0.0.1:9", models=["mixtral"], out=Path("out")))


def test_options_are_validated() -> None:
    for bad in ({"repeats": 0}, {"concurrency": -1}, {"timeout": 0}, {"limit": 0}):
        with pytest.raises(ValueError):
            RunOptions(**bad)


def test_failed_warm_up_turns_the_models_samples_into_error_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from moebench.backends import _BACKENDS, BackendEntry

    monkeypatch.setitem(_BACKENDS, "no-warm-up", BackendEntry(
        "no-warm-up", "_run_support", "no_warm_up_backend", "test backend", ()))
    events = RecordingEvents()
    result = run(RunOptions(backend="no-warm-up", models=["m"], suites=[write_suite(tmp_path)],
                            out=Path("out")), events)
    samples, row = _samples(result.run_id)
    assert result.status == "completed" and row["status"] == "completed"
    assert len(samples) == 5 and samples["error"].str.contains("timed out").all()
    assert any("load failed: warm-up of m timed out" in note for note in events.notes)
