"""`moebench run --backend torch --compile` end to end on the bundled demo models: a compiled
run stores the verdicts an eager run stores, with its compile time apart from the load; a
model the compiled step cannot read (w8a8's fbgemm-packed weights) runs eager with one note;
the flag on another backend is a usage error naming the fix."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from moebench.cli import app
from moebench.paths import BUNDLED_TASKS, DEMO_MODELS_DIR
from moebench.store import Store

pytest.importorskip("torch")
runner = CliRunner()
DEMO_SUITE = str(BUNDLED_TASKS / "demo.yaml")


def _run(out: str, model: str, *extra: str) -> Any:
    if not (DEMO_MODELS_DIR / model).is_dir():
        pytest.skip(f"no bundled {model} in this tree")
    result = runner.invoke(app, ["run", "--backend", "torch", "-m", str(DEMO_MODELS_DIR / model),
                                 "-s", DEMO_SUITE, "--limit", "2", "--out", out, *extra])
    assert result.exit_code == 0, result.output
    return result


def _stored(out: str) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    """(task, case, passed, score, prompt tokens) per sample, and the model's stored row."""
    store = Store.open(out)
    try:
        run_id = store.resolve("last")
        samples = sorted((r["task"], r["case_id"], r["passed"], r["score"], r["prompt_tokens"])
                         for r in store.sample_rows([run_id]))
        (model,) = store.model_rows([run_id])
    finally:
        store.close()
    return samples, model


@pytest.mark.slow
def test_compiled_run_gives_the_eager_verdicts_with_compile_time_apart() -> None:
    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("torch.compile on CPU needs a C compiler")
    _run("eager", "demo-mixtral")
    compiled = _run("compiled", "demo-mixtral", "--compile", "--html", "report.html")
    eager_samples, eager_model = _stored("eager")
    samples, model = _stored("compiled")
    assert samples == eager_samples and len(samples) >= 4  # same verdicts on the same cases
    extra = model["extra"]
    assert extra["compile_s"] > 0 and "compile_error" not in extra
    # the static cache covers every request (demo suite: max_tokens 48), so none ran eager
    assert extra["compile_length"] >= max(s[-1] for s in samples) + 48
    assert model["load_s"] < extra["compile_s"]  # the compile is not in the load time
    assert "compiled in" in compiled.output and "compile_s" not in eager_model["extra"]
    assert "compiled decode" in Path("report.html").read_text()  # the run's settings row


def test_a_model_it_cannot_compile_runs_eager_with_one_note() -> None:
    import torch

    if "fbgemm" not in torch.backends.quantized.supported_engines:
        pytest.skip("w8a8 needs torch's fbgemm kernels (x86)")
    result = _run("w8a8", "demo-mixtral", "--compile", "--dtype", "w8a8")
    notes = [line for line in result.stderr.splitlines() if "--compile" in line]
    assert len(notes) == 1 and "eager" in notes[0] and "Traceback" not in result.output
    _, model = _stored("w8a8")
    assert "w8a8" in model["extra"]["compile_error"]
    assert "compile_s" not in model["extra"] and "eager (not compiled)" in result.output


@pytest.mark.parametrize("command", ["run", "speed"])
def test_compile_needs_the_torch_backend(command: str) -> None:
    result = runner.invoke(app, [command, "--backend", "ollama", "--compile"])
    assert result.exit_code == 2
    assert "--compile runs the built-in torch engine: add --backend torch" in " ".join(
        result.output.split())


def test_static_length_and_resume_rules() -> None:
    from moebench.backends._compile import decode_length
    from moebench.errors import MoebenchError
    from moebench.run_control import resume_options
    from moebench.run_types import RunOptions

    assert decode_length([70, 120], 256, None) == 120  # the run's longest prompt + max_tokens
    assert decode_length([], 256, 2432) == 256 + 16 + 5 and decode_length([], 32768, None) == 1024
    assert decode_length([3], None, None) == 16  # the warm-up writes two positions
    stored = RunOptions(models=["m"], backend="torch", compile=True)
    assert resume_options(stored, RunOptions(resume="last"))[0].compile  # kept on resume
    with pytest.raises(MoebenchError, match="cannot change --compile"):
        resume_options(stored, RunOptions(resume="last", compile=False))
