"""How long `moebench report` and `moebench rescore` take on a stored 1,000-sample run.

Usage: python benchmarks/bench_report_rescore.py [--samples N] [--html] [--against DIR]

Builds a store in a temporary folder from the bundled suites (two models, every scorer,
answers that pass and fail, a `<think>` trace on some), then times, in this process and as
the user would type them (a fresh `python -m moebench`, start-up included):
  report            the tables (what `moebench report` prints)
  report --html     with the HTML report and both CSVs (with --html)
  rescore           re-score every stored output
Prints one row per command: seconds in-process, CPU seconds end to end (best of --tries), and with
`--against DIR` the end-to-end time of another checkout (e.g. /work/main) on the same store and
the ratio. The goal is <= 1 s end to end for 1,000 samples. No model is called.
"cold cache": one end-to-end run with an empty scorer-lookup cache (`moebench.scorers._memo`;
the other columns find the answers the run that scored the outputs left there).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from moebench.paths import BUNDLED_TASKS  # noqa: E402
from moebench.scorers import score_text  # noqa: E402
from moebench.scorers._memo import save_all  # noqa: E402
from moebench.store import Store  # noqa: E402
from moebench.suites.loader import load_suites  # noqa: E402
from moebench.types import Completion, ModelInfo, Record, Request  # noqa: E402

MODELS = ("mixtral:8x7b", "olmoe:7b")


def _answer(request: Request, k: int) -> str:
    """A plausible output: right for most cases, wrong for every fifth, some with <think>."""
    case, name = request.case, request.scorer.name
    wrong = k % 5 == 0
    if name == "word_length":
        words = ["garden", "window", "yellow", "butter", "animal", "forest", "letter", "silver"]
        count = int(case.get("count", 3))
        return "\n".join(f"{i + 1}. {w}" for i, w in enumerate(words[: count - wrong]))
    if name == "summary":
        terms = " and ".join(str(t) for t in case.get("must_mention") or [])
        return f"The text is about {terms}." + (" It goes on. And on." if wrong else "")
    expected = case.get("expected")
    if name == "entities" and isinstance(expected, list):
        return ", ".join(f"{e.get('value')} {e.get('unit', '')}" for e in expected
                         if isinstance(e, dict))
    text = f"The answer is {expected}." if not wrong else "The answer is 41."
    return f"<think>step {k}</think>{text}" if k % 3 == 0 else text


def build_store(out: Path, n: int) -> str:
    """A completed run of `n` samples over the bundled suites in `out`; returns its id."""
    suites = load_suites([BUNDLED_TASKS])
    requests = [r for s in suites for r in s.requests()]
    store = Store(out)
    run_id = store.create_run({
        "suites": [{"name": s.name, "path": str(s.path), "sha256": s.sha256} for s in suites],
        "models": list(MODELS), "backend": "ollama", "host": "http://127.0.0.1:11434",
        "options": {"repeats": 1}, "machine": {"cpu": "bench", "cores": 2}})
    per_model = n // len(MODELS)
    for position, model in enumerate(MODELS):
        store.add_model(run_id, ModelInfo(model, "ollama", digest="d", experts=8, top_k=2,
                                          load_s=1.5, loads=1), position)
        for k in range(per_model):
            base = requests[k % len(requests)]
            request = Request(**{**base.__dict__, "repeat": 1 + k // len(requests)})
            text = _answer(request, k)
            completion = Completion(text, model, latency_s=0.5 + k % 7 / 10, ttft_s=0.1,
                                    prompt_tokens=40, output_tokens=30, decode_s=0.3,
                                    prompt_eval_s=0.05)
            score = score_text(request.scorer, text, request.case)
            store.add_record(Record(run_id, model, "ollama", request, completion, score,
                                    stripped=text), seq=k, cold=k == 0, digest="d")
    store.set_status(run_id, "completed")
    store.close()
    save_all()  # the scorers' lookups, as the run that scored these outputs leaves them
    return run_id


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _cli(args: list[str], root: Path = ROOT, tries: int = 1, cache: Path | None = None) -> float:
    """Best CPU time (user + system) of `python -m moebench ARGS` run from checkout `root`.

    CPU time rather than wall time: on a shared machine the wall clock mostly measures the
    neighbours; on an idle one the two agree (the command is single-threaded and not I/O bound).
    """
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "120"}
    if cache is not None:  # an empty scorer-lookup cache (moebench.scorers._memo)
        env["MOEBENCH_CACHE_DIR"] = str(cache)
    best = float("inf")
    for _ in range(tries):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-m", "moebench", *args], check=True, env=env,
                       stdout=subprocess.DEVNULL, cwd=root)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = min(best, cpu)
    return best


def main() -> None:
    """Print the timing table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--html", action="store_true", help="also time report --html + CSVs")
    parser.add_argument("--tries", type=int, default=3, help="end-to-end runs (best counts)")
    parser.add_argument("--against", type=Path, help="another checkout to time on the same store")
    args = parser.parse_args()
    from moebench.report.summary import build_report
    from moebench.rescore import rescore

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        run_id = build_store(out, args.samples)
        files = ["--html", str(out / "r.html"), "--csv", str(out / "s.csv"), "--samples-csv",
                 str(out / "x.csv")]
        rows = [("report", lambda: build_report(out, [run_id]), ["report", run_id])]
        if args.html:
            rows.append(("report --html --csv --samples-csv",
                         lambda: build_report(out, [run_id], html=out / "r.html",
                                              csv=out / "s.csv", samples_csv=out / "x.csv"),
                         ["report", run_id, *files]))
        rows.append(("rescore", lambda: rescore(out, run_id), ["rescore", run_id]))
        print(f"{args.samples} samples, {len(MODELS)} models; end to end = best of {args.tries}")
        head = (f"{'command':<36} {'in-process s':>13} {'end-to-end cpu s':>17} "
                f"{'cold cache cpu s':>17}")
        print(head + (f" {'against cpu s':>14} {'ratio':>6}" if args.against else ""))
        for name, fn, argv in rows:
            inproc = _timed(fn)  # first call: includes the lazy imports the CLI also pays
            argv = [*argv, "--out", str(out)]
            ours = _cli(argv, tries=args.tries)
            cold = _cli(argv, cache=Path(tempfile.mkdtemp(dir=out)))
            line = f"{name:<36} {inproc:>13.2f} {ours:>17.2f} {cold:>17.2f}"
            if args.against:
                theirs = _cli(argv, args.against.resolve(), args.tries)
                line += f" {theirs:>14.2f} {theirs / ours:>5.1f}x"
            print(line)


if __name__ == "__main__":
    main()
