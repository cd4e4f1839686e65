"""The command line: parse options, call one library function, render the result.

Every command is thin. A `MoebenchError` from the library becomes one red line naming the
fix and exit 1 (MOEBENCH_DEBUG=1 keeps the traceback); usage errors are Typer's exit 2.
Heavy modules (pandas, torch, HTTP clients) are imported inside commands, never at the top.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from moebench import __version__
from moebench.console import debug_enabled, print_error
from moebench.errors import MoebenchError


class _Group(TyperGroup):
    """Maps MoebenchError to one red line and exit 1, for every (sub)command."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MoebenchError as error:
            if debug_enabled():
                raise
            print_error(str(error))
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    help="Benchmark local Mixture-of-Experts models: accuracy, latency, experts.",
    rich_markup_mode=None,
)
suites_app = typer.Typer(help="List, validate and generate task suites.", no_args_is_help=True)
app.add_typer(suites_app, name="suites")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"moebench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """moebench: benchmark local MoE models on task suites."""


# ---- commands are added below this line, one block per command ----


# ---- run / runs / report / rescore (runner engineer) ----


class BackendName(str, Enum):
    """Backends `moebench run --backend` accepts."""

    ollama = "ollama"
    torch = "torch"
    langchain = "langchain"
    openai = "openai"


def _positive(value: float) -> float:
    if not value > 0 or value == float("inf"):  # `not >` also refuses nan
        raise typer.BadParameter("must be a number greater than 0 (seconds), e.g. 300")
    return value


def _url(value: Any) -> Any:
    """`--host` must be a URL we can connect to (`http://[::1` is not); None passes."""
    from moebench.paths import check_host

    for host in value if isinstance(value, list | tuple) else [value]:
        if host is not None:
            problem = check_host(host)
            if problem:
                raise typer.BadParameter(problem)
    return value


_OUT_HELP = "results folder; the run's store lives here"


def _env_name(value: str) -> str:
    """`--api-key-env` names a variable (the key itself never goes on the command line)."""
    if not value.isidentifier() or not value.isascii():
        raise typer.BadParameter("must be an environment variable name, e.g. OPENAI_API_KEY")
    return value


@app.command()
def run(
    ctx: typer.Context,
    suite: list[Path] = typer.Option(
        [], "-s", "--suite", metavar="PATH",
        help="suite YAML file or a folder of them; repeatable (default: bundled tasks/)"),
    model: list[str] = typer.Option(
        [], "-m", "--model", metavar="NAME",
        help='model to benchmark; repeatable ("dbrx" means "dbrx:latest" on Ollama)'),
    backend: BackendName | None = typer.Option(
        None, "-b", "--backend", metavar="NAME",
        help="ollama | torch | langchain | openai (default: ollama when reachable, otherwise "
        "the built-in torch engine with the bundled demo models)"),
    host: str | None = typer.Option(
        None, "--host", metavar="URL", callback=_url,
        help="Ollama / OpenAI-compatible base URL (default: $OLLAMA_HOST or "
        "http://127.0.0.1:11434)"),
    out: Path = typer.Option(Path("results"), "--out", metavar="DIR", help=_OUT_HELP),
    csv: Path | None = typer.Option(
        None, "--csv", metavar="PATH", help="write the summary table (model × task) as CSV"),
    samples_csv: Path | None = typer.Option(
        None, "--samples-csv", metavar="PATH", help="write every scored sample as CSV"),
    repeats: int = typer.Option(
        1, "--repeats", min=1, metavar="N", help="independent repeats per case"),
    limit: int | None = typer.Option(
        None, "--limit", min=1, metavar="N", help="at most N cases per task"),
    concurrency: int = typer.Option(
        1, "--concurrency", min=1, metavar="N", help="requests in flight per model"),
    timeout: float = typer.Option(
        300.0, "--timeout", callback=_positive, metavar="SECONDS",
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
        "float32", "--dtype", metavar="DTYPE", help="torch backend: weight dtype"),
    device: str = typer.Option(
        "cpu", "--device", metavar="DEVICE", help="torch backend: cpu, cuda or mps"),
    api_key_env: str = typer.Option(
        "OPENAI_API_KEY", "--api-key-env", metavar="NAME", callback=_env_name,
        help="openai backend: environment variable holding the API key (the key is never "
        "stored)"),
) -> None:
    """Run task suites on models; store every sample, print the results table."""
    from moebench.console import err_console
    from moebench.report.terminal import RichProgress
    from moebench.run_control import interrupt_signals
    from moebench.runner import RunOptions, run as run_benchmark

    values = dict(
        models=model, suites=suite, backend=backend.value if backend else None, host=host,
        out=out, csv=csv, samples_csv=samples_csv, html=html, repeats=repeats, limit=limit,
        concurrency=concurrency, timeout=timeout, retries=retries, resume=resume, pull=pull,
        dtype=dtype, device=device, api_key_env=api_key_env)
    # only what the user typed is "given" (RunOptions.model_fields_set): --resume takes
    # those and keeps the stored values of the rest
    params = {"models": "model", "suites": "suite"}
    options = RunOptions(**{k: v for k, v in values.items() if _given(ctx, params.get(k, k))})
    with interrupt_signals(), RichProgress(err_console) as progress:
        result = run_benchmark(options, progress)
    _print_run_end(result)


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
    from moebench.report.terminal import print_results  # pandas/scipy only once there is a table
    from moebench.report.summary import build_report

    from moebench.report.model_compare import print_stored_comparisons

    report = build_report(result.out, [result.run_id])
    print_results(console, report.summary, report.models, title=report.title)
    print_stored_comparisons(console, result.out, [result.run_id])
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
                      f"{result.kept + result.samples} finished samples — resume with: "
                      f"moebench run --resume {result.run_id}{escape(where)}", soft_wrap=True)
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


@app.command()
def runs(
    out: Path = typer.Option(Path("results"), "--out", metavar="DIR", help=_OUT_HELP),
    delete: list[str] = typer.Option(
        [], "--delete", metavar="RUN_ID", help="delete this run (or `last`); repeatable"),
    older_than: str | None = typer.Option(
        None, "--older-than", metavar="DURATION",
        help="delete every finished run older than this (30m, 12h, 7d, 2w)"),
) -> None:
    """List the runs in the store, newest first; --delete / --older-than remove runs."""
    from moebench.console import console
    from moebench.report.terminal import print_table, runs_table
    from moebench.store import Store

    if delete or older_than is not None:
        from moebench.housekeeping import delete_runs, parse_duration

        age = parse_duration(older_than) if older_than is not None else None
        gone = delete_runs(out, delete, older_than=age)
        for run in gone:
            console.print(f"deleted run {run.run_id} ({run.status}, started {run.started_at}, "
                          f"{run.samples} samples)", soft_wrap=True, highlight=False)
        console.print(f"{len(gone)} run{'s' if len(gone) != 1 else ''} deleted",
                      highlight=False)
        return

    store = Store.open(out)
    try:
        print_table(console, runs_table(store.runs_frame()))
    finally:
        store.close()


class PairsChoice(str, Enum):
    """Which model pairs `report --pairs` compares."""

    best = "best"
    all = "all"


@app.command()
def report(
    run_ids: list[str] = typer.Argument(None, metavar="[RUN_ID|last ...]",
                                        help="runs to report (default: last)"),
    out: Path = typer.Option(Path("results"), "--out", metavar="DIR", help=_OUT_HELP),
    csv: Path | None = typer.Option(
        None, "--csv", metavar="PATH", help="write the summary table (model × task) as CSV"),
    samples_csv: Path | None = typer.Option(
        None, "--samples-csv", metavar="PATH", help="write every scored sample as CSV"),
    html: Path | None = typer.Option(
        None, "--html", metavar="FILE", help="write the HTML report"),
    compare: tuple[str, str] | None = typer.Option(
        None, "--compare", metavar="RUN_A RUN_B",
        help="line up the models of two runs on the same cases (paired test, A = baseline)"),
    markdown: bool = typer.Option(
        False, "--markdown", help="print the tables as Markdown (to paste in an issue or PR)"),
    pairs: PairsChoice = typer.Option(
        PairsChoice.best, "--pairs", help="model vs model: the best model against each "
        "other one per task, or every pair"),
) -> None:
    """Re-print the tables and write CSVs / HTML of stored runs (no model is called)."""
    from moebench.console import console
    from moebench.report.model_compare import (
        print_run_comparisons,
        print_stored_comparisons,
        run_comparisons,
    )
    from moebench.report.terminal import print_results
    from moebench.speed.stored import report_speed_runs
    from moebench.report.summary import build_report

    found = run_comparisons(out, compare, []) if compare else None  # no common case: exit 1
    run_ids = [*(compare or ()), *(run_ids or [])]  # compared runs are reported too, A first
    others = None if compare else report_speed_runs(console, out, run_ids, csv, html)
    if others is not None:  # some were `moebench speed` runs, printed above
        if not others:
            return
        run_ids = others
    result = build_report(out, run_ids, csv=csv, samples_csv=samples_csv, html=html)
    title = result.title
    if markdown:
        from moebench.report.markdown_report import markdown_from_store

        typer.echo(markdown_from_store(out, list(result.run_ids)))
    else:
        print_results(console, result.summary, result.models, title=title)
        print_stored_comparisons(console, out, result.run_ids, pairs.value)
        print_run_comparisons(console, found if found is not None
                              else run_comparisons(out, None, result.run_ids))
    for path in result.written:
        console.print(f"wrote {path}", soft_wrap=True, highlight=False)


@app.command()
def rescore(
    run_id: str = typer.Argument("last", metavar="RUN_ID|last", help="the run to re-score"),
    out: Path = typer.Option(Path("results"), "--out", metavar="DIR", help=_OUT_HELP),
) -> None:
    """Re-apply the current scorers to a run's stored outputs (no model is called)."""
    from moebench.console import console, print_note
    from moebench.rescore import rescore as rescore_run

    result = rescore_run(out, run_id)
    for name in result.changed_suites:
        print_note(f"suite {name} changed since run {result.run_id}; scored with the current file")
    if result.missing:
        print_note(f"{result.missing} samples have no case in the current suites; "
                   "left as they were")
    for c in result.changed:
        verdict = "pass" if c.after else "fail"
        console.print(f"{c.model} {c.suite}/{c.task}/{c.case_id} #{c.repeat}: now {verdict} "
                      f"(answer {c.answer!r})", soft_wrap=True, highlight=False, markup=False)
    console.print(f"run {result.run_id}: {len(result.changed)} verdicts changed of "
                  f"{result.checked} samples", soft_wrap=True, highlight=False)


@app.command()
def show(
    run_id: str = typer.Argument("last", metavar="RUN_ID|last", help="the run to show"),
    case: str | None = typer.Option(
        None, "--case", metavar="ID",
        help="transcripts of one case (ID, task/ID or suite/task/ID) for every model"),
    failed: bool = typer.Option(False, "--failed", help="transcripts of the failed samples"),
    out: Path = typer.Option(Path("results"), "--out", metavar="DIR", help=_OUT_HELP),
) -> None:
    """Why did a case fail? Without options: the case × model matrix; with --case/--failed:
    each sample's prompt, output, answer, expected answer and the scorer's explanation."""
    from moebench.console import console
    from moebench.report.transcript import print_show
    from moebench.transcripts import load_transcripts

    resolved, transcripts = load_transcripts(out, run_id, case=case, failed=failed)
    print_show(console, resolved, transcripts, matrix=case is None and not failed)


# ---- suites list / suites validate (suites engineer) ----


@suites_app.command("list")
def suites_list(
    paths: list[Path] = typer.Argument(None, metavar="[PATH...]",
                                       help="suite files or folders (default: bundled tasks/)"),
) -> None:
    """Show each suite's tasks, scorers and case counts."""
    from moebench.console import console
    from moebench.paths import BUNDLED_TASKS
    from moebench.report.tables import suites_table
    from moebench.suites.loader import load_suites

    suites = load_suites(paths or [BUNDLED_TASKS])
    console.print(suites_table(suites))
    tasks = sum(len(s.tasks) for s in suites)
    console.print(f"{len(suites)} suites, {tasks} tasks, {sum(s.n_cases for s in suites)} cases",
                  soft_wrap=True)


@suites_app.command("validate")
def suites_validate(
    paths: list[Path] = typer.Argument(..., metavar="PATH...", help="suite files or folders"),
) -> None:
    """Check suite files: exit 0 when all are valid, else list every error and exit 1."""
    from rich.markup import escape

    from moebench.console import console, err_console
    from moebench.suites.loader import check_paths

    suites, errors = check_paths(paths)
    for line in errors:
        err_console.print(f"[red]{escape(line)}[/]", soft_wrap=True)
    if errors:
        plural = "" if len(errors) == 1 else "s"
        err_console.print(f"[bold red]{len(errors)} error{plural}[/]", soft_wrap=True)
        raise typer.Exit(1)
    tasks = sum(len(s.tasks) for s in suites)
    console.print(f"ok: {len(suites)} suites, {tasks} tasks, {sum(s.n_cases for s in suites)} "
                  "cases", soft_wrap=True)


@suites_app.command("generate")
def suites_generate(
    family: str = typer.Argument(..., metavar="FAMILY",
                                 help="word_length | arithmetic | entities | summarization | gsm8k"),
    n: int | None = typer.Option(None, "-n", min=1, metavar="N",
                                 help="how many cases (gsm8k: all 1,319 if left out)"),
    seed: int = typer.Option(0, "--seed", metavar="S", help="same seed, same cases"),
    variants: int = typer.Option(0, "--variants", min=0, metavar="K",
                                 help="arithmetic: K more instantiations of each problem"),
    suite: str | None = typer.Option(None, "--suite", metavar="NAME",
                                     help="suite name (default: FAMILY-generated)"),
    output: Path | None = typer.Option(None, "-o", "--output", metavar="FILE",
                                       help="write the suite here instead of stdout"),
) -> None:
    """Write generated cases out as a normal suite file (answers computed, seeded)."""
    from moebench.suites.generators import suite_yaml

    text = suite_yaml(family, n, seed, variants, suite)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output}", err=True)


# ---- pull / models / ps (ollama engineer) ----

_OLLAMA_HOST_HELP = "Ollama base URL (default: $OLLAMA_HOST or http://127.0.0.1:11434)"


@app.command()
def pull(
    names: list[str] = typer.Argument(..., metavar="NAME...",
                                      help="models to pull, e.g. mixtral:8x7b"),
    host: str | None = typer.Option(None, "--host", metavar="URL", callback=_url,
                                     help=_OLLAMA_HOST_HELP),
) -> None:
    """Download models into Ollama, with a progress bar per layer."""
    from moebench.backends.ollama_api import pull_model
    from moebench.console import console, err_console, print_error
    from moebench.errors import BackendUnavailable
    from moebench.report.ollama_tables import PullView

    failed = 0
    with PullView(err_console) as view:
        for name in names:
            try:
                pull_model(host, name, view.update)
            except BackendUnavailable:
                raise
            except MoebenchError as error:  # report it, go on with the other names
                print_error(str(error))
                failed += 1
            else:
                console.print(f"pulled {name}")
    if failed:
        raise typer.Exit(1)


@app.command()
def models(
    host: str | None = typer.Option(None, "--host", metavar="URL", callback=_url,
                                     help=_OLLAMA_HOST_HELP),
) -> None:
    """List local Ollama models: size, family, quantization, experts, top-k, shared experts."""
    from moebench.backends.ollama_api import list_models
    from moebench.console import console, print_note
    from moebench.report.terminal import print_table
    from moebench.report.ollama_tables import models_table

    found = list_models(host)
    if not found:
        print_note("no local models — pull one, e.g.: moebench pull granite3-moe:1b")
        return
    print_table(console, models_table(found))


@app.command()
def ps(
    host: str | None = typer.Option(None, "--host", metavar="URL", callback=_url,
                                     help=_OLLAMA_HOST_HELP),
) -> None:
    """Show models loaded in Ollama: memory, CPU/GPU split, context, keep-alive expiry."""
    from moebench.backends.ollama_api import running_models
    from moebench.console import console, print_note
    from moebench.report.terminal import print_table
    from moebench.report.ollama_tables import ps_table

    loaded = running_models(host)
    if not loaded:
        print_note("no model is loaded")
        return
    print_table(console, ps_table(loaded))


# ---- backends (backends engineer) ----


@app.command("backends")
def backends_command() -> None:
    """List the backends `run --backend` accepts and what each measures."""
    from moebench.backends import backends as registered
    from moebench.console import console, print_note
    from moebench.report.terminal import print_table
    from moebench.report.backends_table import FOOTNOTE, backends_table

    print_table(console, backends_table(registered().values()))
    print_note(FOOTNOTE)


# ---- speed (speed engineer) ----


def _counts(value: str) -> str:
    """`--prompt-tokens` / `--concurrency`: a comma list of positive whole numbers."""
    from moebench.speed.options import parse_counts

    try:
        parse_counts(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    return value


@app.command()
def speed(
    model: list[str] = typer.Option(
        [], "-m", "--model", metavar="NAME",
        help="model to measure; repeatable (default on torch: the bundled demo models)"),
    backend: BackendName | None = typer.Option(
        None, "-b", "--backend", metavar="NAME",
        help="ollama | torch | openai (default: ollama when reachable, else torch)"),
    host: str | None = typer.Option(
        None, "--host", metavar="URL",
        help="Ollama / OpenAI-compatible base URL (default: $OLLAMA_HOST or "
        "http://127.0.0.1:11434)"),
    prompt_tokens: str = typer.Option(
        "128,512,2048", "--prompt-tokens", metavar="N,N,...", callback=_counts,
        help="prompt lengths in the server's tokens"),
    gen_tokens: int = typer.Option(128, "--gen-tokens", min=1, metavar="N",
                                   help="tokens to generate per request"),
    repeats: int = typer.Option(5, "--repeats", min=1, metavar="N",
                                help="measured requests (rounds) per cell, after a warm-up"),
    concurrency: str = typer.Option(
        "1", "--concurrency", metavar="N,N,...", callback=_counts,
        help="simultaneous requests per round, e.g. 1,2,4"),
    csv: Path | None = typer.Option(None, "--csv", metavar="PATH",
                                    help="write one row per model × prompt length × concurrency"),
    html: Path | None = typer.Option(None, "--html", metavar="FILE",
                                     help="write the HTML report (tok/s against prompt length)"),
    evict: bool = typer.Option(False, "--evict",
                               help="unload other models resident in Ollama first"),
    out: Path = typer.Option(Path("results"), "--out", metavar="DIR", help=_OUT_HELP),
    bandwidth: float | None = typer.Option(
        None, "--bandwidth", callback=lambda v: v if v is None else _positive(v),
        metavar="GB/S", help="memory bandwidth for the roofline (default: measured by a copy)"),
    timeout: float = typer.Option(600.0, "--timeout", callback=_positive, metavar="SECONDS",
                                  help="per-request timeout"),
    dtype: str = typer.Option("float32", "--dtype", metavar="DTYPE",
                              help="torch backend: weight dtype"),
    device: str = typer.Option("cpu", "--device", metavar="DEVICE",
                               help="torch backend: cpu, cuda or mps"),
    api_key_env: str = typer.Option(
        "OPENAI_API_KEY", "--api-key-env", metavar="NAME", callback=_env_name,
        help="openai backend: environment variable holding the API key"),
) -> None:
    """Measure prompt and generation tok/s, TTFT and load time per prompt length; flag
    numbers that cannot be trusted and compare generation with the MoE roofline."""
    from moebench.console import console, err_console
    from moebench.report.speed_terminal import SpeedProgress, print_speed
    from moebench.speed.options import SpeedOptions, parse_counts
    from moebench.speed.sweep import run_speed

    if backend is BackendName.langchain:
        raise typer.BadParameter("speed runs on ollama, torch or openai", param_hint="--backend")
    options = SpeedOptions(
        models=tuple(model), backend=backend.value if backend else None, host=host,
        prompt_tokens=parse_counts(prompt_tokens), gen_tokens=gen_tokens, repeats=repeats,
        concurrency=parse_counts(concurrency), out=out, csv=csv, html=html, evict=evict,
        timeout=timeout, dtype=dtype, device=device, api_key_env=api_key_env,
        bandwidth_gb_s=bandwidth)
    with SpeedProgress(err_console) as progress:
        result = run_speed(options, progress)
    if result.cells:
        print_speed(console, result.cells, title=f"speed run {result.run_id}")
    for path in result.written:
        console.print(f"wrote {path}", soft_wrap=True, highlight=False)
    if result.status == "interrupted":
        err_console.print(f"[yellow]interrupted[/]: run {result.run_id} keeps its "
                          f"{len(result.cells)} finished cells", soft_wrap=True)
        raise typer.Exit(130)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SystemExit as end:
        if end.code in (130, 143):  # interrupted: do not wait for requests hung in threads
            from moebench.run_control import exit_now

            exit_now(int(end.code))
        raise
