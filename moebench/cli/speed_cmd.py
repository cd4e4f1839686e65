"""`moebench speed`: the prompt-length × concurrency sweep."""

from __future__ import annotations

from pathlib import Path

import typer

from moebench.cli.app import BackendName, app, env_name, native_option, out_option, positive


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
    out: Path = out_option(),
    bandwidth: float | None = typer.Option(
        None, "--bandwidth", callback=lambda v: v if v is None else positive(v),
        metavar="GB/S", help="memory bandwidth for the roofline (default: measured by a copy)"),
    timeout: float = typer.Option(600.0, "--timeout", callback=positive, metavar="SECONDS",
                                  help="per-request timeout"),
    dtype: str = typer.Option("float32", "--dtype", metavar="DTYPE",
                              help="torch backend: weight dtype"),
    device: str = typer.Option("cpu", "--device", metavar="DEVICE",
                               help="torch backend: cpu, cuda or mps"),
    api_key_env: str = typer.Option(
        "OPENAI_API_KEY", "--api-key-env", metavar="NAME", callback=env_name,
        help="openai backend: environment variable holding the API key"),
    compile: bool = typer.Option(
        False, "--compile",
        help="torch backend: decode with a torch.compile'd step (needs a C compiler; a one-off "
        "compile per model, timed apart from the load); see moebench/engine/README.md"),
    native: bool = native_option(),
) -> None:
    """Measure prompt and generation tok/s, TTFT and load time per prompt length; flag
    numbers that cannot be trusted and compare generation with the MoE roofline."""
    from moebench.console import console, err_console
    from moebench.report.speed_terminal import SpeedProgress, print_speed
    from moebench.run_control import interrupt_signals
    from moebench.speed.options import SpeedOptions, parse_counts
    from moebench.speed.sweep import run_speed

    if backend is BackendName.langchain:
        raise typer.BadParameter("speed runs on ollama, torch or openai", param_hint="--backend")
    for flag, used in (("--compile", compile), ("--native", native)):
        if used and backend is not BackendName.torch:
            raise typer.BadParameter(f"{flag} runs the built-in torch engine: add --backend "
                                     "torch", param_hint=flag)
    options = SpeedOptions(
        models=tuple(model), backend=backend.value if backend else None, host=host,
        prompt_tokens=parse_counts(prompt_tokens), gen_tokens=gen_tokens, repeats=repeats,
        concurrency=parse_counts(concurrency), out=out, csv=csv, html=html, evict=evict,
        timeout=timeout, dtype=dtype, device=device, api_key_env=api_key_env,
        bandwidth_gb_s=bandwidth, compile=compile, native=native)
    with interrupt_signals(), SpeedProgress(err_console) as progress:
        result = run_speed(options, progress)
    if result.cells:
        print_speed(console, result.cells, title=f"speed run {result.run_id}")
    for path in result.written:
        console.print(f"wrote {path}", soft_wrap=True, highlight=False)
    if result.status == "interrupted":
        err_console.print(f"[yellow]interrupted[/]: run {result.run_id} keeps its "
                          f"{len(result.cells)} finished cells", soft_wrap=True)
        raise typer.Exit(130)
