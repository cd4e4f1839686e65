"""What the whole harness (`moebench.runner.run`: backend + scorer + store + events) costs.

Against the loopback Ollama stand-in (perf notes §6 Part A), it prints first the issue-11
headline next to the peers' figures (measured on the same stand-in) and the goal:
- wall of a 20-case `moebench run` (start-up + run + table + CSV): the CLI in a fresh process,
  median of `--cli-repeats`;
- end-to-end cost per extra sample: (wall of a 400-case run − wall of the 20-case run) / 380;
- wall / ideal of the request phase at `--concurrency 4` against 4 server slots, 200 ms
  requests (ideal = ceil(n / 4) × 200 ms);
with the machine's load average before and after (the numbers mean little on a busy machine).
Then the detail tables:
1. zero server delay: per-request time of the raw `ollama` client, of
   `OllamaBackend.generate`, and of a full run (steady state); the client overhead per sample
   is run − raw client (goal ≤ 1 ms), the runner's own share (score, one SQLite transaction,
   progress event) is run − generate;
2. a fixed-delay server with P slots and `--concurrency` C = P: wall of the request phase /
   ideal, ideal = ceil(n / P) × the configured per-request delay, or Σ server-reported
   time / P, or Σ server-reported prompt_eval + eval time / P (the stand-in's paced
   sleeps as they really ran) (goal ≤ 1.05);
3. loads: the stand-in's count of model loads for a two-model run (goal: == models).

    python benchmarks/harness_overhead.py [--n 200] [--n-delay 48] [--delay 0.05]
        [--cli-repeats 5] [--headline-only]
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import ollama
from rich.console import Console
from rich.table import Table

from moebench.backends import BackendConfig, create_backend
from moebench.runner import NullEvents, RunOptions, run
from moebench.testing.ollama_standin import OllamaStandin
from moebench.testing.standin_engine import split_tokens
from moebench.types import ModelInfo, Record, Request, ScorerSpec

MODELS = ("mixtral:8x7b", "granite3-moe:1b")
ANSWER = "The answer is 4."
REPO = Path(__file__).resolve().parents[1]
#: issue 11's peers on the same zero-delay stand-in: (20-case wall s, ms per extra sample,
#: wall / ideal at concurrency 4 with 200 ms requests); None where the peer was not measured
PEERS = {"promptfoo": (3.0, 12.5, None), "inspect-ai": (8.5, 27.2, None),
         "lm-eval-harness": (15.5, 3.7, 1.10)}
GOALS = (1.2, 2.5, 1.05)


class PhaseClock(NullEvents):
    """Times each model's request phase (after its warm-up, before its unload) and when
    each sample was stored."""

    def __init__(self) -> None:
        self.walls: list[float] = []
        self.stored: list[float] = []
        self.server_s = 0.0
        self.paced_s = 0.0
        self._start = 0.0

    def on_model_start(self, info: ModelInfo, total: int) -> None:
        self._start = time.perf_counter()
        self.stored = []

    def on_sample(self, record: Record) -> None:
        self.stored.append(time.perf_counter() - self._start)
        if record.completion and record.completion.server_total_s:
            self.server_s += record.completion.server_total_s
            self.paced_s += (record.completion.prompt_eval_s or 0) + (
                record.completion.decode_s or 0)

    def on_model_end(self, info: ModelInfo) -> None:
        self.walls.append(time.perf_counter() - self._start)

    @property
    def steady_per_sample(self) -> float:
        """Seconds per sample after the first (one-off client set-up excluded)."""
        return (self.stored[-1] - self.stored[0]) / max(1, len(self.stored) - 1)


def _suite(folder: Path, n: int) -> Path:
    cases = "\n".join(f"      - {{id: c{k}, question: 'q{k}', expected: '4'}}" for k in range(n))
    path = folder / f"bench{n}.yaml"
    path.write_text("suite: bench\ntasks:\n  - name: t\n    scorer: contains\n"
                    f"    prompt: 'Q {{question}}'\n    cases:\n{cases}\n")
    return path


def _run(server: OllamaStandin, folder: Path, n: int, models: tuple[str, ...],
         concurrency: int = 1) -> PhaseClock:
    clock = PhaseClock()
    options = RunOptions(models=list(models), suites=[_suite(folder, n)], host=server.url,
                         out=folder / f"out-{time.monotonic_ns()}", concurrency=concurrency)
    run(options, clock)
    return clock


def overhead(folder: Path, n: int) -> tuple[float, float, float]:
    """ms/request at zero server delay: raw client, OllamaBackend.generate, full run."""
    request = Request("bench", "t", "c", "Q q", ScorerSpec("contains"), case={"expected": "4"})
    with OllamaStandin(models=[MODELS[0]], responder=lambda m, msgs, o: ANSWER) as server:
        client = ollama.Client(server.url)
        client.chat(MODELS[0], messages=[{"role": "user", "content": "warm"}])
        start = time.perf_counter()
        for k in range(n):
            for _ in client.chat(MODELS[0], messages=[{"role": "user", "content": f"Q q{k}"}],
                                 stream=True):
                pass
        raw = (time.perf_counter() - start) / n
        backend = create_backend("ollama", BackendConfig(host=server.url))
        backend.prepare(MODELS[0])
        backend.generate(MODELS[0], request)  # its per-thread client is made on first use
        start = time.perf_counter()
        for _ in range(n):
            backend.generate(MODELS[0], request)
        generate = (time.perf_counter() - start) / n
        backend.close()
        full = _run(server, folder, n, (MODELS[0],)).steady_per_sample
    return raw * 1e3, generate * 1e3, full * 1e3


def scheduling(folder: Path, n: int, delay: float,
               parallel: int) -> tuple[float, float, float, float, float]:
    """(wall s, wall / ideal, steady wall / ideal, wall / server ideal, wall / paced ideal)
    at C = P = parallel.

    ideal = ceil(n/P) × the configured per-request delay; "steady" times from the first stored
    sample to the last against ceil(n/P) − 1 rounds (it leaves out the one-off set-up of each
    worker's HTTP client); "server ideal" = Σ server-reported total_duration / P (perf notes
    §6 A.1: robust to the stand-in's own sleep overshoot on a busy machine); "paced ideal" =
    Σ server-reported prompt_eval + eval durations / P: only the time the stand-in's slots
    spent in their (overshooting) sleeps, without its HTTP handling; still a lower bound."""
    tokens = len(split_tokens(ANSWER))
    token_delay = delay / (tokens + 1)
    with OllamaStandin(models=[MODELS[0]], responder=lambda m, msgs, o: ANSWER,
                       first_token_delay=token_delay, token_delay=token_delay,
                       parallel=parallel) as server:
        clock = _run(server, folder, n, (MODELS[0],), concurrency=parallel)
    per_request = token_delay * (tokens + 1)
    rounds = math.ceil(n / parallel)
    wall = clock.walls[0]
    steady = (clock.stored[-1] - clock.stored[0]) / ((rounds - 1) * per_request)
    return (wall, wall / (rounds * per_request), steady, wall / (clock.server_s / parallel),
            wall / (clock.paced_s / parallel))


def cli_wall(server: OllamaStandin, suite: Path, out: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one `python -m moebench run` (start-up + run + table + CSV) in a
    fresh process; its CPU time (user + system) barely moves with the machine's load."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get(
        "PYTHONPATH", "")]), "COLUMNS": "100"}
    command = [sys.executable, "-m", "moebench", "run", "-s", str(suite), "-m", MODELS[0],
               "--host", server.url, "--out", str(out), "--csv", str(out / "summary.csv")]
    out.mkdir(parents=True, exist_ok=True)  # `run` refuses a --csv into a missing folder
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # cwd=out's parent: `-m` puts the cwd first on sys.path, so only REPO's code is run
    done = subprocess.run(command, env=env, cwd=out.parent, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"moebench run failed ({done.returncode}): {done.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@dataclass(frozen=True)
class Headline:
    """Issue 11's three figures (medians), plus the CLI's CPU times beside the walls."""

    wall20: float
    per_sample_ms: float
    ratio: float
    cpu20: float
    cpu_per_sample_ms: float


def headline(folder: Path, repeats: int) -> Headline:
    """20-case CLI wall, ms per extra sample (400 vs 20 cases), wall / ideal at C = P = 4."""
    small, large = _suite(folder, 20), _suite(folder, 400)
    with OllamaStandin(models=[MODELS[0]], responder=lambda m, msgs, o: ANSWER) as server:
        cli_wall(server, small, folder / "warm")  # page cache, .pyc files
        runs: dict[Path, list[tuple[float, float]]] = {small: [], large: []}
        for k in range(repeats):  # interleaved, so a load spike hits both sizes alike
            for suite in (small, large):
                runs[suite].append(cli_wall(server, suite, folder / f"cli-{k}-{suite.stem}"))
    wall20, cpu20 = (statistics.median(v) for v in zip(*runs[small], strict=True))
    wall400, cpu400 = (statistics.median(v) for v in zip(*runs[large], strict=True))
    _, ratio, *_ = scheduling(folder, 48, 0.2, 4)
    return Headline(wall20, (wall400 - wall20) / 380 * 1e3, ratio, cpu20,
                    (cpu400 - cpu20) / 380 * 1e3)


def headline_table(figures: Headline, repeats: int,
                   load: tuple[tuple[float, ...], tuple[float, ...]]) -> Table:
    """moebench's three figures next to the peers' and the goal."""
    table = Table(
        title="harness overhead on the zero-delay stand-in (issue 11): moebench "
        f"(median of {repeats}) vs peers",
        caption=f"moebench CPU (client process): 20-case run {figures.cpu20:.2f} s, "
        f"{figures.cpu_per_sample_ms:.2f} ms / extra sample · load average 1/5/15 min: "
        f"before {_load(load[0])}, after {_load(load[1])} on {os.cpu_count()} cores",
        caption_justify="left")
    names = ("20-case run wall s", "ms / extra sample", "wall/ideal C=4, 200 ms")
    table.add_column("harness")
    for name in names:
        table.add_column(name, justify="right")
    formats = ("{:.2f}", "{:.2f}", "{:.3f}")
    values = (figures.wall20, figures.per_sample_ms, figures.ratio)
    table.add_row("[bold]moebench[/]", *(f.format(v) for f, v in zip(formats, values,
                                                                      strict=True)))
    for peer, peer_values in PEERS.items():
        table.add_row(peer, *("–" if v is None else f.format(v)
                              for f, v in zip(formats, peer_values, strict=True)))
    table.add_row("goal", *(f"≤ {f.format(g)}" for f, g in zip(formats, GOALS, strict=True)))
    table.add_row("met", *("yes" if v <= g else "[red]no[/]"
                           for v, g in zip(values, GOALS, strict=True)))
    return table


def _load(values: tuple[float, ...]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def loads(folder: Path) -> dict[str, int]:
    """Loads the server saw for a two-model run (with a real load delay)."""
    with OllamaStandin(models=list(MODELS), load_delay=0.2) as server:
        _run(server, folder, 4, MODELS)
        return dict(server.stats.loads)


def main() -> None:
    """Measure and print the three tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="requests at zero delay")
    parser.add_argument("--n-delay", type=int, default=48, help="requests per delay run")
    parser.add_argument("--delay", type=float, default=0.05, help="server s per request")
    parser.add_argument("--cli-repeats", type=int, default=5, help="CLI runs per suite size")
    parser.add_argument("--headline-only", action="store_true",
                        help="print only the issue-11 table against the peers")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        before = os.getloadavg()
        figures = headline(folder, args.cli_repeats)
        console.print(headline_table(figures, args.cli_repeats, (before, os.getloadavg())))
        if args.headline_only:
            return
        raw, generate, full = (statistics.median(v) for v in zip(
            *(overhead(folder, args.n) for _ in range(3))))
        table = Table(title=f"zero-delay stand-in, {args.n} requests, median of 3")
        for name in ("path", "ms / request", "goal"):
            table.add_column(name, justify="left" if name == "path" else "right")
        table.add_row("raw ollama client (stream)", f"{raw:.2f}", "")
        table.add_row("OllamaBackend.generate", f"{generate:.2f}", "")
        table.add_row("moebench run (generate + score + store)", f"{full:.2f}", "")
        table.add_row("client overhead (run − raw client)", f"{full - raw:.2f}", "≤ 1.00")
        table.add_row("runner overhead (run − generate)", f"{full - generate:.2f}", "")
        console.print(table)

        table = Table(title=f"fixed {args.delay * 1e3:.0f} ms/request, {args.n_delay} "
                      "requests, C = P")
        for name in ("P = C", "wall s", "ideal s", "wall / ideal", "steady / ideal",
                     "wall / server ideal", "wall / paced ideal", "goal"):
            table.add_column(name, justify="right")
        for parallel in (1, 2, 4):
            wall, ratio, steady, served, paced = scheduling(folder, args.n_delay, args.delay,
                                                            parallel)
            table.add_row(str(parallel), f"{wall:.3f}", f"{wall / ratio:.3f}", f"{ratio:.3f}",
                          f"{steady:.3f}", f"{served:.3f}", f"{paced:.3f}", "≤ 1.05")
        console.print(table)

        seen = loads(folder)
        table = Table(title="model loads during a two-model run")
        for name in ("model", "loads", "goal"):
            table.add_column(name)
        for model in MODELS:
            table.add_row(model, str(seen.get(model, 0)), "1")
        console.print(table)


if __name__ == "__main__":
    main()
