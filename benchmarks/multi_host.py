"""Several hosts in one run (issue 15): wall time of 8 models on 1, 2 and 4 stand-in hosts.

Each host is a loopback Ollama stand-in (its own server, one generation slot, a per-token delay
and a model load delay) holding a share of the 8 models, so the run places every model where
it already is. Printed per host count: the run's wall, the speed-up over one host, the ideal
(the one-host run's work spread evenly: Σ per-host work / hosts, where a host's work is the
sum of its models' measured busy time) and wall / ideal. Goal: 4 hosts ≥ 3.5× one host.
A throwaway run first takes the imports out of the one-host row. What keeps wall above ideal
is the run's fixed part (store, suites, asking each host what it has, the first load).

    python benchmarks/multi_host.py [--cases 12] [--token-delay 0.004] [--load-delay 0.3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from moebench.runner import NullEvents, RunOptions, run
from moebench.testing.ollama_standin import OllamaStandin
from moebench.testing.standin_models import FakeModel
from moebench.types import ModelInfo

MODELS = tuple(f"moe{i}:8x1b" for i in range(1, 9))
GOAL = 3.5


class ModelClock(NullEvents):
    """Busy time per model: from its warm-up's end to its unload (plus the measured load)."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.busy: dict[str, float] = {}

    def on_model_start(self, info: ModelInfo, total: int) -> None:
        self.started[info.name] = time.perf_counter() - (info.load_s or 0.0)

    def on_model_end(self, info: ModelInfo) -> None:
        self.busy[info.name] = time.perf_counter() - self.started[info.name]


def suite_file(folder: Path, cases: int) -> Path:
    """A suite of `cases` short questions."""
    lines = "\n".join(f"      - {{id: c{k}, question: \"{k}+{k}\", expected: {2 * k}}}"
                      for k in range(cases))
    path = folder / "bench.yaml"
    path.write_text("suite: bench\ntasks:\n  - name: arith\n    scorer: number\n"
                    f"    prompt: \"Q: {{question}}\"\n    cases:\n{lines}\n")
    return path


def measure(n_hosts: int, suite: Path, args: argparse.Namespace) -> tuple[float, float, int]:
    """(wall, Σ model busy time, loads seen by the servers) of one run on `n_hosts` hosts."""
    shares = [[FakeModel(m) for m in MODELS[i::n_hosts]] for i in range(n_hosts)]
    servers = [OllamaStandin(models=share, token_delay=args.token_delay,
                             load_delay=args.load_delay).start() for share in shares]
    try:
        urls = [s.url for s in servers]
        clock = ModelClock()
        with tempfile.TemporaryDirectory() as out:
            options = RunOptions(models=list(MODELS), suites=[suite], backend="ollama",
                                 host=urls[0], hosts=urls if n_hosts > 1 else [],
                                 out=Path(out))
            start = time.perf_counter()
            result = run(options, clock)
            wall = time.perf_counter() - start
        assert result.status == "completed" and result.errors == 0, result
        loads = sum(sum(s.stats.loads.values()) for s in servers)
        return wall, sum(clock.busy.values()), loads
    finally:
        for server in servers:
            server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=12)
    parser.add_argument("--token-delay", type=float, default=0.004)
    parser.add_argument("--load-delay", type=float, default=0.3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        measure(2, suite_file(Path(folder), 1), args)  # imports and caches: not in any row
        suite = suite_file(Path(folder), args.cases)
        rows = [(n, *measure(n, suite, args)) for n in (1, 2, 4)]
    one_wall = rows[0][1]
    table = Table(title=f"{len(MODELS)} models × {args.cases} cases, token delay "
                  f"{args.token_delay * 1000:g} ms, load {args.load_delay:g} s")
    for name in ("hosts", "wall s", "× one host", "ideal s", "wall / ideal", "loads"):
        table.add_column(name, justify="right")
    for n, wall, busy, loads in rows:
        ideal = busy / n  # Σ per-host work / hosts
        table.add_row(str(n), f"{wall:.2f}", f"{one_wall / wall:.2f}", f"{ideal:.2f}",
                      f"{wall / ideal:.2f}", str(loads))
    console = Console()
    console.print(table)
    speedup = one_wall / rows[-1][1]
    console.print(f"goal: 4 hosts ≥ {GOAL}× one host — measured {speedup:.2f}× "
                  f"({'met' if speedup >= GOAL else 'NOT met'})")


if __name__ == "__main__":
    main()
