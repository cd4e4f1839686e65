"""`moebench run`: parse the options, run the benchmark, print the table and how it ended."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from moebench.cli.app import (
    BackendName,
    native_option,
    app,
    check_url,
    csv_option,
    env_name,
    out_option,
    positive,
    samples_csv_option,
)


@app.command()
def run(
    ctx: typer.Context,
    suite: list[Path] = typer.Option(
        [], "-s", "--suite", metavar="PATH",
        help="suite YAML file or a folder of them; repeatable (default: bundled tasks/)"),
    model: list[str] = typer.Option(
        [], "-m", "--model", metavar="NAME",
        help='model to benchmark; repeatable ("dbrx" means "dbrx:latest" on Ollama); '
        "NAME@HOST runs it on that one of the hosts"),
    backend: BackendName | None = typer.Option(
        None, "-b", "--backend", metavar="NAME",
        help="ollama | torch | langchain | openai (default: ollama when reachable, otherwise "
        "the built-in torch engine with the bundled demo models)"),
    host: list[str] = typer.Option(
        [], "--host", metavar="URL", callback=check_url,
        help="Ollama / OpenAI-compatible base URL (default: $OLLAMA_HOST or "
        "http://127.0.0.1:11434); repeatable: the hosts run models in parallel"),
    hosts_file: Path | None = typer.Option(
        None, "--hosts", metavar="FILE",
        help="read more hosts from FILE, one URL per line (# comments)"),
    out: Path = out_option(),
    csv: Path | None = csv_option(),
    samples_csv: Path | None = samples_csv_option(),
    repeats: int = typer.Option(
        1, "--repeats", min=1, metavar="N", help="independent repeats per case"),
    limit: int | None = typer.Option(
        None, "--limit", min=1, metavar="N", help="at most N cases per task"),
    concurrency: int = typer.Option(
        1, "--concurrency", min=1, metavar="N", help="requests in flight per model"),
    timeout: float = typer.Option(
        300.0, "--timeout", callback=positive, metavar="SECONDS",
        help="per-request timeout; model loads get their own, longer allowance"),
    retries: int = typer.Option(
        3, "--retries", min=0, metavar="N",
        help="extra tries for a request that failed transiently (then it is an error row)"),
    resume: str | None = typer.Option(
        None, "--resume", metavar="RUN_ID",
        help="finish an interrupted run (RUN_ID, or `last` in the --out store): redo only "
        "samples that are missing or ended in error"),
    html: Path | None = typer.Option(
        None, "--html", metavar="FILE", help="also write the HTML report"),
    pull: bool = typer.Option(False, "--pull", help="pull missing Ollama models first"),
    dtype: str = typer.Option(
        "float32", "--dtype", metavar="DTYPE",
        help="torch backend: float32 | bfloat16 | float16, or int8 / q8_0 (int8 weights) / "
        "w8a8 (int8 weights and activations, x86 CPU)"),
    device: str = typer.Option(
        "cpu", "--device", metavar="DEVICE", help="torch backend: cpu, cuda or mps"),
    api_key_env: str = typer.Option(
        "OPENAI_API_KEY", "--api-key-env", metavar="NAME", callback=env_name,
        help="openai backend: environment variable holding the API key (the key is never "
        "stored)"),
    ray: str | None = typer.Option(
        None, "--ray", metavar="ADDRESS",
        help="torch backend: run each model in a Ray actor on the cluster at ADDRESS (`auto`, "
        "ray://HOST:10001, or `local`); needs moebench[ray]"),
    compile: bool = typer.Option(
        False, "--compile",
        help="torch backend: decode with a torch.compile'd step (needs a C compiler; a one-off "
        "compile of ~3-20 s per model, timed apart from the load). Pays off when the cores "
        "are yours (tiny Mixtral fp32, 1 thread: ~1.6x eager on a quiet machine, little "
        "under load): see moebench/engine/README.md. Models it cannot compile (w8a8, "
        "some attention variants) run eager with a note"),
    native: bool = native_option(),
) -> None:
    """Run task suites on models; store every sample, print the results table."""
    from moebench.console import err_console
    from moebench.report.terminal import RichProgress
    from moebench.run_control import interrupt_signals
    from moebench.runner import RunOptions
    from moebench.runner import run as run_benchmark

    for flag, used in (("--ray", ray), ("--compile", compile), ("--native", native)):
        if used and resume is None and backend is not BackendName.torch:
            raise typer.BadParameter(f"{flag} runs the built-in torch engine: add --backend "
                                     "torch", param_hint=flag)
    values = dict(
        models=model, suites=suite, backend=backend.value if backend else None,
        **_hosts(host, hosts_file),
        out=out, csv=csv, samples_csv=samples_csv, html=html, repeats=repeats, limit=limit,
        concurrency=concurrency, timeout=timeout, retries=retries, resume=resume, pull=pull,
        dtype=dtype, device=device, api_key_env=api_key_env, ray=ray, compile=compile,
        native=native)
    # only what the user typed is "given" (RunOptions.model_fields_set): --resume takes
    # those and keeps the stored values of the rest
    params = {"models": "model", "suites": "suite", "hosts": "host"}
    options = RunOptions(**{k: v for k, v in values.items() if _given(ctx, params.get(k, k))
                            or (k in ("host", "hosts") and _given(ctx, "hosts_file"))})
    with interrupt_signals(), RichProgress(err_console) as progress:
        result = run_benchmark(options, progress)
    _print_run_end(result)


def _hosts(host: list[str], hosts_file: Path | None) -> dict[str, Any]:
    """`host` (the first) and, with several, `hosts` (every one, each once)."""
    from moebench.hosts import read_hosts_file, unique_hosts

    every = unique_hosts([*host, *(read_hosts_file(hosts_file) if hosts_file else [])])
    return {"host": every[0] if every else None, "hosts": every if len(every) > 1 else []}


def _given(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT", "PROMPT")


def _print_run_end(result: Any) -> None:
    from rich.markup import escape

    from moebench.console import console, print_error

    if result.status == "interrupted" and getattr(result, "stopped", None):
        _print_stopped(result)
    if result.status == "interrupted":
        _print_interrupted(result)
    from moebench.report.model_compare import print_stored_comparisons
    from moebench.report.specialisation import print_specialisation
    from moebench.report.summary import build_report
    from moebench.report.terminal import (
        print_results,  # pandas/scipy only once there is a table
    )

    report = build_report(result.out, [result.run_id])
    print_results(console, report.summary, report.models, title=report.title)
    print_specialisation(console, report.specialisation)
    print_stored_comparisons(console, result.out, [result.run_id], rows=report.samples)
    kept = f" ({result.kept} kept from before)" if result.kept else ""
    console.print(f"run {result.run_id}: {result.samples} samples{kept}, {result.errors} "
                  f"errors · store {escape(str(result.db_path))}", soft_wrap=True,
                  highlight=False)
    for path in result.written:
        console.print(f"wrote {escape(str(path))}", soft_wrap=True, highlight=False)
    if result.write_error:
        print_error(result.write_error)
        raise typer.Exit(1)


def _print_interrupted(result: Any) -> None:
    """The interrupted line (always with the resume command), then exit 130 (143: SIGTERM)."""
    from rich.markup import escape

    from moebench.console import err_console

    code = 143 if result.terminated else 1 if result.reason else 130  # a full disk: exit 1
    if not result.run_id:
        err_console.print("[yellow]interrupted[/] before the run started: nothing was stored",
                          soft_wrap=True)
        raise typer.Exit(code)
    where = f" --out {result.out}" if result.out != Path("results") else ""
    why = f" ({escape(result.reason)})" if result.reason else ""
    err_console.print(f"[yellow]interrupted[/]{why}: run {result.run_id} keeps its "
                      f"{result.kept + result.samples - result.errors} finished samples — "
                      f"resume with: moebench run --resume {result.run_id}{escape(where)}",
                      soft_wrap=True)
    raise typer.Exit(code)


def _print_stopped(result: Any) -> None:
    """The server went away mid-run: one red line with the resume command, exit 1."""
    from rich.markup import escape

    from moebench.console import err_console

    where = f" --out {result.out}" if result.out != Path("results") else ""
    err_console.print(f"[red]stopped[/]: {escape(result.stopped)}; run {result.run_id} keeps "
                      f"its {result.kept + result.samples - result.errors} finished samples — "
                      f"start the server, then resume with: moebench run --resume "
                      f"{result.run_id}{escape(where)}", soft_wrap=True, highlight=False)
    raise typer.Exit(1)
