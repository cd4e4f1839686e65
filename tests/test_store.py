"""The SQLite store, the summary frame and the CSV writer, without any backend."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest

from moebench.errors import RunNotFound
from moebench.store import MIGRATIONS, Store, new_run_id
from moebench.report.summary import escape_cell, samples_csv_frame, summarize, write_csv
from moebench.types import (
    MODEL_COLUMNS,
    ROUTER_COLUMNS,
    SAMPLE_COLUMNS,
    SAMPLE_FRAME_EXTRA,
    SUMMARY_COLUMNS,
    Completion,
    ModelInfo,
    Record,
    Request,
    Score,
    ScorerSpec,
)


def _request(case_id: str, repeat: int = 1, expected: object = 2) -> Request:
    return Request(suite="s", task="t", case_id=case_id, prompt=f"p {case_id}",
                   scorer=ScorerSpec("number"), case={"id": case_id, "expected": expected},
                   repeat=repeat)


def _record(run_id: str, case_id: str, *, passed: bool = True, error: str | None = None,
            latency: float = 1.0, repeat: int = 1, router: dict | None = None) -> Record:
    request = _request(case_id, repeat)
    if error:
        return Record(run_id, "m:latest", "ollama", request, None, None, error=error)
    completion = Completion(text="<think>x</think>2", model="m:latest", latency_s=latency,
                            ttft_s=latency / 2, prompt_tokens=5, output_tokens=10,
                            decode_s=0.5, router=router)
    score = Score(1.0 if passed else 0.0, passed, "2" if passed else "3")
    return Record(run_id, "m:latest", "ollama", request, completion, score, stripped="2")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "out")
    yield s
    s.close()


def _run(store: Store) -> str:
    run_id = store.create_run({"suites": [{"name": "s", "path": "s.yaml", "sha256": "x"}],
                               "models": ["m"], "backend": "ollama", "options": {}})
    store.add_model(run_id, ModelInfo(name="m:latest", backend="ollama", digest="d1",
                                      load_s=2.5, loads=1, experts=8, top_k=2), 0)
    return run_id


def test_migrations_are_applied_once_and_wal_is_on(tmp_path: Path) -> None:
    Store(tmp_path).close()
    again = Store(tmp_path)  # reopening must not re-run m001 (it would fail on CREATE TABLE)
    names = [r[0] for r in again.db.execute("SELECT name FROM _migrations")]
    assert names == [fn.__name__ for fn in MIGRATIONS] and names[0] == "m001_initial"
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_run_ids_sort_by_time_and_resolve_last(store: Store) -> None:
    first = _run(store)
    second = _run(store)
    assert len(new_run_id()) == len("20260101-000000-abcd")
    assert store.resolve("last") in (first, second)
    assert store.resolve(first) == first
    with pytest.raises(RunNotFound, match="moebench runs"):
        store.resolve("nope")


def test_open_without_store_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(RunNotFound, match="moebench run"):
        Store.open(tmp_path / "empty")
    assert not (tmp_path / "empty").exists()


def test_unique_sample_key_replaces_errored_row(store: Store) -> None:
    run_id = _run(store)
    store.add_record(_record(run_id, "a", error="timed out"), seq=0, digest="d1")
    assert store.done_keys(run_id, "m:latest", "d1") == set()
    store.add_record(_record(run_id, "a"), seq=0, digest="d1")
    frame = store.samples_frame([run_id])
    assert len(frame) == 1 and frame["error"].isna().all()
    assert store.done_keys(run_id, "m:latest", "d1") == {("s", "t", "a", 1)}
    assert store.done_keys(run_id, "m:latest", "other-digest") == set()


def test_frames_have_the_contract_columns(store: Store) -> None:
    run_id = _run(store)
    store.add_record(_record(run_id, "a"), seq=0, cold=True, digest="d1")
    store.add_record(_record(run_id, "b", passed=False), seq=1, digest="d1")
    samples = store.samples_frame([run_id])
    assert list(samples.columns) == [*SAMPLE_COLUMNS, *SAMPLE_FRAME_EXTRA]
    assert samples["passed"].tolist() == [True, False]
    assert samples["cold"].tolist() == [True, False]
    assert samples["tokens_per_s"].tolist() == [20.0, 20.0]
    assert samples["output"][0] == "<think>x</think>2" and samples["stripped"][0] == "2"
    assert list(store.models_frame([run_id]).columns) == list(MODEL_COLUMNS)
    assert list(store.router_frame([run_id]).columns) == list(ROUTER_COLUMNS)
    runs = store.runs_frame()
    assert runs.loc[0, "samples"] == 2 and runs.loc[0, "passed"] == 1


def test_router_counts_accumulate_per_task(store: Store) -> None:
    run_id = _run(store)
    router = {"prefill": [[3, 0], [1, 2]], "decode": [[1, 1], [0, 2]]}
    store.add_record(_record(run_id, "a", router=router), seq=0, digest="d1")
    store.add_record(_record(run_id, "b", router=router), seq=1, digest="d1")
    frame = store.router_frame([run_id])
    prefill = frame[(frame.phase == "prefill") & (frame.layer == 0) & (frame.expert == 0)]
    assert prefill["tokens"].tolist() == [6]
    assert frame["tokens"].sum() == 2 * (3 + 1 + 2 + 1 + 1 + 2)


def test_summary_counts_errors_and_uses_warm_latency(store: Store) -> None:
    run_id = _run(store)
    store.add_record(_record(run_id, "a", latency=9.0), seq=0, cold=True, digest="d1")
    store.add_record(_record(run_id, "b", latency=1.0), seq=1, digest="d1")
    store.add_record(_record(run_id, "c", passed=False, latency=3.0), seq=2, digest="d1")
    store.add_record(_record(run_id, "d", error="boom"), seq=3, digest="d1")
    summary = summarize(store.samples_frame([run_id]), store.models_frame([run_id]))
    assert list(summary.columns)[: len(SUMMARY_COLUMNS)] == list(SUMMARY_COLUMNS)
    row = summary.iloc[0]
    assert (row.n, row.passed, row.errors) == (4, 2, 1)
    assert row.accuracy == 0.5 and row.accuracy_low < 0.5 < row.accuracy_high
    assert row.latency_p50_s == 2.0  # warm samples only: the cold 9 s one is left out
    assert row.load_s == 2.5 and row.tokens_per_s == 20.0


@pytest.mark.parametrize(("cell", "written"), [
    ("=cmd()", "'=cmd()"),
    ("+1+2", "'+1+2"),
    ("-x", "'-x"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"),
    ("-3.5", "-3.5"),
    ("+7", "+7"),
    ("plain, with comma", "plain, with comma"),
    (12, 12),
    (None, None),
])
def test_escape_cell(cell: object, written: object) -> None:
    assert escape_cell(cell) == written


def test_csv_quotes_commas_newlines_and_quotes(store: Store, tmp_path: Path) -> None:
    run_id = _run(store)
    record = _record(run_id, "a")
    text = 'line one, "quoted"\nline two\n=HYPERLINK("x")'
    completion = Completion(text=text, model="m:latest", latency_s=1.0)
    store.add_record(Record(run_id, "m:latest", "ollama", record.request, completion,
                            record.score), seq=0, digest="d1")
    path = write_csv(samples_csv_frame(store.samples_frame([run_id])), tmp_path / "s.csv")
    rows = list(csv.DictReader(path.open(newline="")))
    assert list(rows[0])[: len(SAMPLE_COLUMNS)] == list(SAMPLE_COLUMNS)
    assert rows[0]["output"] == text  # starts with "line", so no escaping, intact
    assert rows[0]["passed"] == "true" and rows[0]["repeat"] == "1"
    assert rows[0]["expected"] == "2" and rows[0]["prompt_tokens"] == ""


def test_store_survives_a_locked_reader(store: Store, tmp_path: Path) -> None:
    # A report process reading while the run writes must not block the writer (WAL).
    run_id = _run(store)
    reader = sqlite3.connect(store.path)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM samples").fetchone()
    store.add_record(_record(run_id, "a"), seq=0, digest="d1")
    reader.rollback()
    reader.close()
    assert len(store.samples_frame([run_id])) == 1
