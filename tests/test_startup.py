"""Start-up: a plain `run`, `runs` and `report` import only what they use (no scipy).

Each command runs in a fresh interpreter (this test process has long imported scipy) against
the stand-in; an atexit hook prints which heavy modules ended up in `sys.modules`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _run_support import MODELS, standin, write_suite  # noqa: F401

from moebench.testing.ollama_standin import OllamaStandin

REPO = Path(__file__).resolve().parents[1]
#: heavy modules a plain run must not pay for (scipy is `report --compare` / HTML only;
#: pandas and numpy are for the samples CSV and the HTML/Markdown reports)
NOT_ON_RUN_PATH = ("scipy", "pandas", "numpy", "torch", "transformers")

_PROBE = """
import atexit, json, runpy, sys
heavy = json.loads(sys.argv[1])
atexit.register(lambda: print("IMPORTED " + json.dumps(
    sorted(m for m in heavy if m in sys.modules)), file=sys.stderr))
sys.argv = ["moebench", *sys.argv[2:]]
runpy.run_module("moebench", run_name="__main__")
"""


def _imported(*args: str, heavy: tuple[str, ...] = NOT_ON_RUN_PATH) -> list[str]:
    """Modules of `heavy` a `moebench ARGS` subprocess imported (it must exit 0)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(heavy), *args],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(x for x in proc.stderr.splitlines() if x.startswith("IMPORTED "))
    return json.loads(line.removeprefix("IMPORTED "))


def test_plain_run_and_report_import_no_scipy_pandas_or_numpy(standin: OllamaStandin,
                                                              tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    assert _imported("run", "-s", str(suite), "-m", MODELS[0], "--host", standin.url,
                     "--csv", "sum.csv") == []
    assert _imported("report", "last", "--csv", "again.csv") == []
    assert Path("sum.csv").read_bytes() == Path("again.csv").read_bytes()


def test_samples_csv_and_runs_list_need_pandas_but_not_scipy(standin: OllamaStandin,
                                                            tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    assert _imported("run", "-s", str(suite), "-m", MODELS[0], "--host", standin.url,
                     "--samples-csv", "samples.csv") == ["numpy", "pandas"]
    assert Path("samples.csv").exists()
    assert "scipy" not in _imported("runs")


def test_help_imports_nothing_heavy() -> None:
    assert _imported("--help") == []


#: the scorers' libraries: a rescore whose answers are all in the lookup cache loads none, and
#: common words and units need none of them even the first time
SCORER_LIBRARIES = ("pint", "spylls", "lemminflect", "nltk", "rouge_score", "wordfreq", "pysbd")

_SCORER_SUITE = """suite: lookups
tasks:
  - name: units
    scorer: entities
    prompt: "Say {text}"
    cases:
      - {id: trip, text: "We drove 42 km and paid $18.", expected: [{value: 42, unit: km},
                                                              {value: 18, unit: USD}]}
  - name: words
    scorer: word_length
    prompt: "Say {text}"
    cases:
      - {id: two, text: "garden, window", count: 2, letters: 6}
  - name: gist
    scorer: summary
    prompt: "Say {text}"
    cases:
      - {id: bridge, text: "The council will repair the bridge.", must_mention: [bridge],
         reference: "The council repairs the bridge from May."}
"""


def test_two_model_report_needs_no_pandas(standin: OllamaStandin, tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    run = _imported("run", "-s", str(suite), "-m", MODELS[0], "-m", MODELS[1], "--host",
                    standin.url)
    assert "pandas" not in run and "scipy" not in run  # its model-vs-model table included
    assert "pandas" not in _imported("report", "last")


def test_rescore_with_known_answers_loads_no_scorer_library(
        standin: OllamaStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suite = tmp_path / "lookups.yaml"
    suite.write_text(_SCORER_SUITE)
    monkeypatch.setenv("MOEBENCH_CACHE_DIR", str(tmp_path / "cache"))
    ran = _imported("run", "-s", str(suite), "-m", MODELS[0], "--host", standin.url,
                    heavy=SCORER_LIBRARIES)
    # the run computed the answers, from the prebuilt tables (moebench.scorers._tables) and
    # nltk's Porter stemmer alone: no dictionary, unit library or nltk package loaded...
    assert ran == ["rouge_score"]
    assert _imported("rescore", "last", heavy=SCORER_LIBRARIES) == []  # ...rescore found them
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "cache").glob("*.json")) == [
        "lexicon", "summary", "units"]
