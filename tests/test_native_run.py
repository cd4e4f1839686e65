"""`moebench run|speed --backend torch --native` end to end on the bundled demo models: the C
decode step gives the eager run's verdicts and router load (demo-mixtral, demo-dbrx); a model
it does not cover (demo-deepseek's MLA) decodes in PyTorch with one note; the flag on another
backend is a usage error; resume may not switch it."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from moebench.cli import app
from moebench.store import Store
from test_compile_run import _run, _stored

pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")),
                                reason="the native decode step needs a C compiler")
runner = CliRunner()


def _router(out: str) -> list[tuple[object, ...]]:
    store = Store.open(out)
    try:
        frame = store.router_frame([store.resolve("last")])
        keep = [c for c in frame.columns if c not in ("run_id", "model")]
        return sorted(map(tuple, frame[keep].itertuples(index=False)))
    finally:
        store.close()


@pytest.mark.parametrize("model", ["demo-mixtral", "demo-dbrx"])
def test_native_run_gives_the_eager_verdicts(model: str) -> None:
    _run("eager", model)
    native = _run("native", model, "--native", "--html", "report.html")
    eager_samples, _ = _stored("eager")
    native_samples, stored = _stored("native")
    assert native_samples == eager_samples
    assert _router("native") == _router("eager") and _router("native")  # decode load too
    assert stored["extra"]["decode_step"] == "native" and "native_error" not in stored["extra"]
    assert "native decode" in native.output
    assert "native decode" in open("report.html").read()  # the run's settings row


def test_a_model_it_does_not_cover_decodes_in_pytorch_with_one_note() -> None:
    result = _run("mla", "demo-deepseek", "--native")
    notes = [line for line in result.stderr.splitlines() if "--native" in line]
    assert len(notes) == 1 and "decoding in PyTorch" in notes[0]
    _, model = _stored("mla")
    assert "native decode step" in model["extra"]["native_error"]
    assert "decode_step" not in model["extra"]


@pytest.mark.parametrize("command", ["run", "speed"])
def test_native_needs_the_torch_backend(command: str) -> None:
    result = runner.invoke(app, [command, "--backend", "ollama", "--native"])
    assert result.exit_code == 2
    assert "--native runs the built-in torch engine: add --backend torch" in " ".join(
        result.output.split())


def test_resume_may_not_switch_native() -> None:
    from moebench.run_control import RESUME_MUST_MATCH

    assert "native" in RESUME_MUST_MATCH
