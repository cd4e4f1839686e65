"""How close `moebench speed` gets to known rates, and what the nonce buys (issue 12).

Against the stand-in with timed models (known prompt and generation tok/s), prints:
1. measured / configured prompt and generation tok/s per model × prompt length
   (goal: within 10% everywhere), the prompt length actually sent, and the flags raised;
2. the prompt-cache trap: the same prompt sent twice vs nonce-led prompts — the reported
   prompt tok/s as a ratio of the configured rate (a cached prompt reports it many times high).

    python benchmarks/speed_accuracy.py [--repeats 5] [--gen 32]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import ollama
from rich.console import Console
from rich.table import Table

from moebench.speed.options import SpeedOptions
from moebench.speed.prompts import PromptBuilder
from moebench.speed.sweep import run_speed
from moebench.testing import FakeModel, OllamaStandin

MODELS = (
    FakeModel("mixtral:8x7b", prompt_tok_s=800.0, gen_tok_s=60.0, expert_ffn=14336),
    FakeModel("dbrx:latest", arch="dbrx", experts=16, experts_used=4,
              parameter_count=131_596_523_520, size=74_000_000_000, block_count=40,
              embedding_length=6144, gpu_fraction=0.45, prompt_tok_s=300.0, gen_tok_s=25.0,
              expert_ffn=10752),
    FakeModel("granite3-moe:1b", arch="granitemoe", experts=32, experts_used=8,
              parameter_count=1_334_000_000, quantization="Q4_K_M", size=821_690_000,
              prompt_tok_s=3000.0, gen_tok_s=150.0, jitter=0.2),
)
PROMPTS = (32, 128, 512)


def accuracy_table(repeats: int, gen: int) -> Table:
    """Measured / configured rates for every cell."""
    table = Table(title="measured / configured tok/s (goal: 0.90–1.10)")
    for name in ("model", "prompt", "sent", "pp ratio", "tg ratio", "flags"):
        table.add_column(name, justify="left" if name in ("model", "flags") else "right")
    rates = {m.full_name: m for m in MODELS}
    with OllamaStandin(models=list(MODELS)) as server, tempfile.TemporaryDirectory() as out:
        result = run_speed(SpeedOptions(
            models=tuple(rates), backend="ollama", host=server.url, prompt_tokens=PROMPTS,
            gen_tokens=gen, repeats=repeats, out=Path(out), bandwidth_gb_s=100.0))
    for cell in result.cells:
        model = rates[cell.model]
        pp, tg = cell.stat("pp_tok_s").mean or 0, cell.stat("tg_tok_s").mean or 0
        flags = ", ".join(k for k, v in cell.flags().items() if v)
        table.add_row(cell.model, str(cell.prompt_tokens),
                      f"{cell.stat('prompt_tokens').mean:.0f}",
                      f"{pp / (model.prompt_tok_s or 1):.3f}",
                      f"{tg / (model.gen_tok_s or 1):.3f}", flags)
    return table


def cache_table() -> Table:
    """Reported prompt tok/s / configured, for a repeated prompt and for nonce-led prompts."""
    model = MODELS[0]
    table = Table(title="the prompt-cache trap: reported / configured prompt tok/s")
    for name in ("prompts", "1st request", "2nd request", "3rd request"):
        table.add_column(name, justify="left" if name == "prompts" else "right")
    builder = PromptBuilder(seed=0)
    with OllamaStandin(models=[model]) as server:
        client = ollama.Client(server.url)
        for label, texts in (("same prompt each time", [builder.text(300)] * 3),
                             ("nonce first (moebench speed)",
                              [builder.text(300) for _ in range(3)])):
            ratios = []
            for text in texts:
                r = client.generate(model.full_name, text, options={"num_predict": 1})
                rate = r.prompt_eval_count / r.prompt_eval_duration * 1e9
                ratios.append(f"{rate / (model.prompt_tok_s or 1):.2f}")
            table.add_row(label, *ratios)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gen", type=int, default=32)
    args = parser.parse_args()
    console = Console()
    console.print(accuracy_table(args.repeats, args.gen))
    console.print(cache_table())


if __name__ == "__main__":
    main()
