"""`ollama:NAME[:TAG]` references: an Ollama store laid out in a temp dir, the torch backend and
`moebench run` on it (router load stored, HTML heatmaps drawn)."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("gguf")

from moebench.engine import ollama_store  # noqa: E402
from moebench.errors import ModelNotFound  # noqa: E402

from gguf_convert import convert, ollama_store as lay_out  # noqa: E402
from tiny_models import Case  # noqa: E402


@pytest.fixture(scope="module")
def tiny_gguf(checkpoints: dict[str, Case], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert(checkpoints["mixtral"].folder, tmp_path_factory.mktemp("g") / "tiny.gguf", "Q8_0")


@pytest.fixture()
def store(tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "models"
    lay_out(root, tiny_gguf, "library/tiny-moe", "q8_0")
    lay_out(root, tiny_gguf, "library/tiny-moe", "latest")
    lay_out(root, tiny_gguf, "someone/moe", "v1")
    lay_out(root, tiny_gguf, "other", "7b", registry="hf.co/org")
    monkeypatch.setenv("OLLAMA_MODELS", str(root))
    return root


def test_names_resolve_as_ollama_resolves_them(store: Path, tiny_gguf: Path) -> None:
    pulled = ollama_store.resolve("ollama:tiny-moe")
    assert pulled.name == "tiny-moe:latest"
    assert pulled.manifest == store / "manifests/registry.ollama.ai/library/tiny-moe/latest"
    assert pulled.gguf.read_bytes() == tiny_gguf.read_bytes()
    assert pulled.digest == hashlib.sha256(pulled.manifest.read_bytes()).hexdigest()
    assert ollama_store.resolve("ollama:tiny-moe:q8_0").name == "tiny-moe:q8_0"
    assert ollama_store.resolve("ollama:someone/moe:v1").name == "someone/moe:v1"
    assert ollama_store.resolve("ollama:hf.co/org/other:7b").name == "hf.co/org/other:7b"


def test_not_found_lists_what_the_store_has(store: Path) -> None:
    with pytest.raises(ModelNotFound) as error:
        ollama_store.resolve("ollama:mixtral:8x7b")
    message = str(error.value)
    assert "mixtral:8x7b" in message and str(store) in message and "\n" not in message
    assert "tiny-moe:latest, tiny-moe:q8_0" in message and "someone/moe:v1" in message


def test_missing_blob_and_model_layer_name_the_fix(store: Path) -> None:
    manifest = store / "manifests/registry.ollama.ai/library/tiny-moe/q8_0"
    layers = json.loads(manifest.read_text())["layers"]
    (store / "blobs" / layers[0]["digest"].replace(":", "-")).unlink()
    with pytest.raises(ModelNotFound, match="ollama pull tiny-moe:q8_0"):
        ollama_store.resolve("ollama:tiny-moe:q8_0")
    manifest.write_text(json.dumps({"layers": layers[1:]}))
    with pytest.raises(ModelNotFound, match="no model layer"):
        ollama_store.resolve("ollama:tiny-moe:q8_0")


def test_default_roots_follow_ollama(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OLLAMA_MODELS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert ollama_store.store_roots() == [tmp_path / ".ollama/models", ollama_store.SERVICE_STORE]


def test_torch_backend_records_ollama_name_and_digest(store: Path) -> None:
    from moebench.backends import BackendConfig, create_backend
    from moebench.types import Request, ScorerSpec

    backend = create_backend("torch", BackendConfig())
    try:
        info = backend.prepare("ollama:tiny-moe")
        pulled = ollama_store.resolve("tiny-moe")
        assert (info.name, info.digest) == ("tiny-moe:latest", pulled.digest)
        assert info.quantization == "GGUF Q8_0 · 8.6 bits/weight"
        assert info.extra["weights_format"] == "gguf" and info.extra["type_mix"].startswith("Q8_0")
        request = Request(suite="s", task="t", case_id="c", prompt="Seven plus five is",
                          scorer=ScorerSpec("exact"), options={"max_tokens": 6, "temperature": 0})
        completion = backend.generate("ollama:tiny-moe", request)
        assert completion.router and sum(map(sum, completion.router["prefill"])) > 0
    finally:
        backend.close()


def test_gguf_file_path_is_a_model(tiny_gguf: Path) -> None:
    from moebench.backends.torch import resolve_source

    path, name, digest = resolve_source(str(tiny_gguf))
    assert (path, name, len(digest)) == (tiny_gguf, "tiny", 64)
    with pytest.raises(ModelNotFound, match="does not exist"):
        resolve_source(str(tiny_gguf.with_name("absent.gguf")))


def test_moebench_run_on_an_ollama_store(store: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from moebench.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(
        "suite: s\noptions: {max_tokens: 8, temperature: 0}\ntasks:\n  - name: add\n"
        "    scorer: exact\n    prompt: '{question}'\n    cases:\n"
        "      - {id: a, question: 'Seven plus five is', expected: '12'}\n"
        "      - {id: b, question: 'Two plus two is', expected: '4'}\n")
    result = CliRunner().invoke(app, ["run", "--backend", "torch", "-m", "ollama:tiny-moe:q8_0",
                                      "-s", "s.yaml", "--out", "out", "--html", "r.html",
                                      "--samples-csv", "samples.csv"])
    assert result.exit_code == 0, result.output
    assert "GGUF Q8_0 · 8.6 bits/weight" in result.stdout  # the model facts line
    rows: list[dict[str, Any]] = list(csv.DictReader(open("samples.csv", encoding="utf-8")))
    assert {r["model"] for r in rows} == {"tiny-moe:q8_0"} and len(rows) == 2
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "GGUF Q8_0 · 8.6 bits/weight" in html and "<svg" in html and "layer 1" in html


def test_torch_backend_points_bare_ollama_names_at_the_store(store: Path) -> None:
    from moebench.backends.torch import resolve_source

    with pytest.raises(ModelNotFound, match="use -m ollama:tiny-moe:q8_0"):
        resolve_source("tiny-moe:q8_0")
