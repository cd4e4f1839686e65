"""Harness-side speed of the Ollama backend against the loopback stand-in (perf notes §6 Part A).

Prints two tables:
1. per-request client overhead at zero server delay (goal: ≤ 1 ms p50; regression test: ≤ 5 ms),
   for the raw `ollama` client and for `OllamaBackend.generate` (retries, timing, parsing);
2. scheduling against a fixed-delay server with P slots and C = P client threads:
   wall / ideal (goal ≤ 1.05) and speedup over C = 1 (goal ≥ 0.9·P), plus one C > P row
   showing that queue wait lands in `queue_s`, not in `latency_s`.

    python benchmarks/ollama_backend.py [--n 40] [--tokens 5] [--token-delay 0.01]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import ollama
from rich.console import Console
from rich.table import Table

from moebench.backends import BackendConfig
from moebench.backends.ollama import OllamaBackend
from moebench.testing import OllamaStandin
from moebench.types import Completion, Request, ScorerSpec

MODEL = "mixtral:8x7b"
REQUEST = Request("bench", "bench", "case", "What is 2 + 2?", ScorerSpec("exact"))


def overhead_rows(n: int) -> list[tuple[str, float, float, float]]:
    """(path, p50 ms, p90 ms, requests/s) for zero-delay one-token round trips."""
    rows = []
    with OllamaStandin(responder=lambda m, msgs, o: "4") as server:
        client = ollama.Client(server.url)
        backend = OllamaBackend(BackendConfig(host=server.url))
        calls = {
            "ollama.Client.chat (stream)": lambda: list(client.chat(
                MODEL, messages=[{"role": "user", "content": "q"}], stream=True)),
            "OllamaBackend.generate": lambda: backend.generate(MODEL, REQUEST),
        }
        for label, call in calls.items():
            call()
            times = []
            for _ in range(n):
                start = time.perf_counter()
                call()
                times.append(time.perf_counter() - start)
            deciles = statistics.quantiles(times, n=10)
            rows.append((label, statistics.median(times) * 1e3, deciles[8] * 1e3,
                         1 / statistics.mean(times)))
        backend.close()
    return rows


@contextlib.contextmanager
def standin_process(parallel: int, token_delay: float, answer: str) -> Iterator[str]:
    """The stand-in in its own process (like Ollama), so it does not share our GIL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "moebench.testing.ollama_standin", "--parallel", str(parallel),
         "--token-delay", str(token_delay), "--answer", answer, "--model", MODEL],
        stdout=subprocess.PIPE, text=True)
    try:
        yield (proc.stdout.readline() if proc.stdout else "").split()[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def timed_run(parallel: int, concurrency: int, n: int, tokens: int,
              token_delay: float) -> tuple[float, list[Completion]]:
    """Wall time of n requests from `concurrency` threads against `parallel` server slots."""
    with standin_process(parallel, token_delay, " ".join(["word"] * tokens)) as url:
        backend = OllamaBackend(BackendConfig(host=url, concurrency=concurrency))
        list(ThreadPoolExecutor(concurrency).map(  # load + one connection per thread
            lambda _: backend.generate(MODEL, REQUEST), range(concurrency)))
        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            done = list(pool.map(lambda _: backend.generate(MODEL, REQUEST), range(n)))
        wall = time.perf_counter() - start
        backend.close()
    return wall, done


def _service_s(done: list[Completion]) -> float:
    """Σ server-side service time (load + prompt + decode), i.e. total minus queue wait."""
    return sum((c.load_s or 0) + (c.prompt_eval_s or 0) + (c.decode_s or 0) for c in done)


def scheduling_table(n: int, tokens: int, token_delay: float) -> Table:
    """wall/ideal and speedup for P ∈ {1, 2, 4} with C = P, and C ≠ P rows.

    ideal = Σ server service time / min(P, C) (perf notes §6 A.1, the robust form: sleeps
    overshoot on a busy machine, so the nominal tokens × delay would flatter nobody)."""
    table = Table("P", "C", "n", "wall s", "ideal s", "wall/ideal", "speedup vs C=1",
                  "latency p50 ms", "queue p50 ms", title="scheduling (fixed-delay server)")
    for parallel, concurrency in ((1, 1), (2, 2), (4, 4), (4, 1), (1, 4)):
        wall, done = timed_run(parallel, concurrency, n, tokens, token_delay)
        base, _ = (wall, None) if concurrency == 1 else timed_run(parallel, 1, n, tokens,
                                                                   token_delay)
        ideal = _service_s(done) / min(parallel, concurrency)
        table.add_row(str(parallel), str(concurrency), str(n), f"{wall:.3f}", f"{ideal:.3f}",
                      f"{wall / ideal:.3f}", f"{base / wall:.2f}",
                      f"{statistics.median(c.latency_s for c in done) * 1e3:.1f}",
                      f"{statistics.median(c.queue_s for c in done) * 1e3:.1f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="requests per scheduling row")
    parser.add_argument("--tokens", type=int, default=5)
    parser.add_argument("--token-delay", type=float, default=0.01)
    parser.add_argument("--overhead-n", type=int, default=300)
    args = parser.parse_args()
    console = Console()
    table = Table("path", "p50 ms", "p90 ms", "req/s", title="zero-delay round trip (C=1)")
    for label, p50, p90, rate in overhead_rows(args.overhead_n):
        table.add_row(label, f"{p50:.2f}", f"{p90:.2f}", f"{rate:.0f}")
    console.print(table)
    console.print(scheduling_table(args.n, args.tokens, args.token_delay))


if __name__ == "__main__":
    main()
