"""`moebench pull / models / ps` through the CLI against the Ollama stand-in."""

from __future__ import annotations

from collections.abc import Iterator

import ollama
import pytest
from typer.testing import CliRunner

from moebench.cli import app
from moebench.testing import FakeModel, OllamaStandin

runner = CliRunner()
DENSE = FakeModel("llama3.2:3b", experts=0, parameter_count=3_212_749_888, size=2_019_393_189)


@pytest.fixture()
def server() -> Iterator[OllamaStandin]:
    with OllamaStandin(models=["mixtral:8x7b", "deepseek-v2:16b", "dbrx", "granite3-moe:1b",
                               DENSE]) as s:
        yield s


def test_models_lists_moe_facts(server: OllamaStandin) -> None:
    result = runner.invoke(app, ["models", "--host", server.url])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()
             if line.strip() and ":" in line.split()[0]}
    assert lines["mixtral:8x7b"][1:] == ["2438bedd8a54", "26", "GB", "llama", "46.7B", "Q4_0",
                                         "32768", "8", "2", "-"]
    assert lines["deepseek-v2:16b"][-3:] == ["64", "6", "2"]
    assert lines["llama3.2:3b"][-3:] == ["dense", "-", "-"]


def test_models_uses_ollama_host(server: OllamaStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0 and "granite3-moe:1b" in result.output


def test_ps_shows_memory_split(server: OllamaStandin) -> None:
    empty = runner.invoke(app, ["ps", "--host", server.url])
    assert empty.exit_code == 0 and "no model is loaded" in empty.output
    client = ollama.Client(server.url)
    client.chat("dbrx", messages=[])
    client.chat("granite3-moe:1b", messages=[], keep_alive=-1)
    result = runner.invoke(app, ["ps", "--host", server.url])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "55%/45% CPU/GPU" in rows["dbrx:latest"]
    assert "100% CPU" in rows["granite3-moe:1b"] and "forever" in rows["granite3-moe:1b"]


def test_pull_reports_layers_and_installs(server: OllamaStandin) -> None:
    result = runner.invoke(app, ["pull", "qwen3:30b-a3b", "--host", server.url])
    assert result.exit_code == 0, result.output
    digests = [d[7:19] for d, _ in server.state.registry["qwen3:30b-a3b"].layers()]
    for digest in digests:
        assert f"qwen3:30b-a3b: pulling {digest}" in result.output
    assert "qwen3:30b-a3b: success" in result.output and "pulled qwen3:30b-a3b" in result.output
    assert "qwen3:30b-a3b" in runner.invoke(app, ["models", "--host", server.url]).output


def test_pull_unknown_model_exits_1_naming_it(server: OllamaStandin) -> None:
    result = runner.invoke(app, ["pull", "zzz", "granite3-moe:3b", "--host", server.url])
    assert result.exit_code == 1
    assert "error: cannot pull 'zzz': the registry has no such model" in result.output
    assert "pulled granite3-moe:3b" not in result.output  # not in the stand-in's registry
    assert "cannot pull 'granite3-moe:3b'" in result.output


@pytest.mark.parametrize("command", [["models"], ["ps"], ["pull", "mixtral:8x7b"]])
def test_unreachable_server_is_one_red_line(command: list[str]) -> None:
    result = runner.invoke(app, command)  # conftest points OLLAMA_HOST at a closed port
    assert result.exit_code == 1
    assert result.output.strip() == ("error: Ollama is not reachable at http://127.0.0.1:9 — "
                                     "start it with: ollama serve")
