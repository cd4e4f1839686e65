"""What each HTTP backend adds on the client side, against the loopback stand-in.

One table: for `ollama`, `langchain` and `openai` (all through `create_backend`, so with their
retries, timing and parsing), the p50 / p90 wall time of a zero-delay one-token request (client
overhead per request) and, against a server with a fixed per-token delay, the median TTFT and
tokens/s each backend reports with its timing source — the three should agree on tokens/s
(within noise) since the server is the same.

    python benchmarks/backends_overhead.py [--n 40] [--tokens 20] [--token-delay 0.005]
"""

from __future__ import annotations

import argparse
import statistics
import time

from rich.console import Console
from rich.table import Table

from moebench.backends import Backend, BackendConfig, create_backend
from moebench.testing import OllamaStandin
from moebench.types import Completion, Request, ScorerSpec

MODEL = "mixtral:8x7b"
BACKENDS = ("ollama", "langchain", "openai")
REQUEST = Request("bench", "bench", "case", "What is 2 + 2?", ScorerSpec("exact"))


def _backend(name: str, url: str) -> Backend:
    backend = create_backend(name, BackendConfig(host=url))
    backend.prepare(MODEL)
    return backend


def overhead_ms(name: str, n: int) -> tuple[float, float]:
    """p50 and p90 wall time (ms) of a zero-delay one-token request."""
    with OllamaStandin(responder=lambda m, msgs, o: "4") as server:
        backend = _backend(name, server.url)
        times = []
        for _ in range(n):
            start = time.perf_counter()
            backend.generate(MODEL, REQUEST)
            times.append(time.perf_counter() - start)
        backend.close()
    return statistics.median(times) * 1e3, statistics.quantiles(times, n=10)[8] * 1e3


def reported(name: str, n: int, tokens: int, delay: float) -> tuple[float, float, str]:
    """Median TTFT (ms) and tokens/s as the backend reports them, and its timing source."""
    answer = " ".join(["word"] * tokens)
    with OllamaStandin(responder=lambda m, msgs, o: answer, token_delay=delay) as server:
        backend = _backend(name, server.url)
        done: list[Completion] = [backend.generate(MODEL, REQUEST) for _ in range(n)]
        backend.close()
    ttft = statistics.median(c.ttft_s or 0.0 for c in done) * 1e3
    rate = statistics.median(c.tokens_per_s or 0.0 for c in done)
    return ttft, rate, done[-1].timing_source


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--token-delay", type=float, default=0.005)
    args = parser.parse_args()
    table = Table(title=f"client side of each backend (stand-in; {args.tokens} tokens at "
                        f"{args.token_delay * 1e3:g} ms/token → {1 / args.token_delay:.0f} "
                        "tokens/s for the timed columns)")
    for column in ("backend", "overhead p50 ms", "overhead p90 ms", "TTFT p50 ms",
                   "tokens/s", "timing source"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    for name in BACKENDS:
        p50, p90 = overhead_ms(name, args.n)
        ttft, rate, source = reported(name, max(5, args.n // 4), args.tokens, args.token_delay)
        table.add_row(name, f"{p50:.2f}", f"{p90:.2f}", f"{ttft:.1f}", f"{rate:.0f}", source)
    Console().print(table)


if __name__ == "__main__":
    main()
