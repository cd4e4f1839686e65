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

from _run_support import MODELS, standin, write_suite  # noqa: F401

from moebench.testing.ollama_standin import OllamaStandin

REPO = Path(__file__).resolve().parents[1]
#: heavy modules a plain run must not pay for (scipy is `report --compare` / HTML only)
NOT_ON_RUN_PATH = ("scipy", "torch", "transformers")

_PROBE = """
import atexit, json, runpy, sys
heavy = json.loads(sys.argv[1])
atexit.register(lambda: print("IMPORTED " + json.dumps(
    sorted(m for m in heavy if m in sys.modules)), file=sys.stderr))
sys.argv = ["moebench", *sys.argv[2:]]
runpy.run_module("moebench", run_name="__main__")
"""


def _imported(*args: str) -> list[str]:
    """Heavy modules a `moebench ARGS` subprocess imported (it must exit 0)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(NOT_ON_RUN_PATH), *args],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(x for x in proc.stderr.splitlines() if x.startswith("IMPORTED "))
    return json.loads(line.removeprefix("IMPORTED "))


def test_plain_run_runs_and_report_import_no_scipy(standin: OllamaStandin,
                                                  tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    assert _imported("run", "-s", str(suite), "-m", MODELS[0], "--host", standin.url,
                     "--csv", "sum.csv", "--samples-csv", "samples.csv") == []
    assert Path("sum.csv").exists() and Path("samples.csv").exists()
    assert _imported("runs") == []
    assert _imported("report", "last", "--csv", "again.csv") == []


def test_help_imports_nothing_heavy() -> None:
    assert _imported("--help") == []
