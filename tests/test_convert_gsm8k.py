"""scripts/convert_gsm8k.py: GSM8K jsonl → a valid suite; the bundled gsm8k.yaml is its output."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from moebench.paths import BUNDLED_TASKS
from moebench.suites.loader import load_suite

SCRIPT = BUNDLED_TASKS.parent / "scripts" / "convert_gsm8k.py"
SHARED_TEST = BUNDLED_TASKS.parent.parent / "shared" / "data" / "gsm8k" / "test.jsonl"


@pytest.fixture(scope="module")
def convert() -> ModuleType:
    spec = importlib.util.spec_from_file_location("convert_gsm8k", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("solution", "expected"), [
    ("9 * 2 = $<<9*2=18>>18\n#### 18", 18),
    ("so 1,200 in all\n#### 1,200", 1200),
    ("#### -3", -3),
    ("#### 2.5", 2.5),
])
def test_final_answer(convert: ModuleType, solution: str, expected: float) -> None:
    assert convert.final_answer(solution) == expected


def test_converts_a_sample_and_copies_the_license(convert: ModuleType, tmp_path: Path) -> None:
    data = tmp_path / "data" / "test.jsonl"
    data.parent.mkdir()
    problems = [{"question": f"What is {i} + {{1}}?  Twice.", "answer": f"...\n#### {i + 1}"}
                for i in range(10)]
    data.write_text("".join(json.dumps(p) + "\n" for p in problems), encoding="utf-8")
    (data.parent / "LICENSE").write_text("MIT License\n", encoding="utf-8")
    out = tmp_path / "tasks" / "gsm8k.yaml"
    assert convert.main([str(data), "--out", str(out), "--size", "4"]) == 0
    suite = load_suite(out)
    requests = suite.requests()
    assert len(requests) == 4 and (tmp_path / "tasks" / "LICENSE-gsm8k").is_file()
    first = requests[0]
    index = int(first.case_id.split("-")[1])
    assert first.prompt == (f"Question: What is {index} + {{1}}?  Twice.\n"
                            "Answer: Let's think step-by-step.")
    assert first.expected == index + 1 and first.scorer.name == "number"
    assert convert.main([str(data), "--out", str(out), "--all"]) == 0
    assert load_suite(out).n_cases == 10


def test_missing_input_is_one_line(convert: ModuleType, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert convert.main([str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "x.yaml")]) == 1
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.skipif(not SHARED_TEST.is_file(), reason="needs ../shared/data/gsm8k/test.jsonl")
def test_bundled_gsm8k_is_the_converter_output(convert: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "gsm8k.yaml"
    assert convert.main([str(SHARED_TEST), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == (BUNDLED_TASKS / "gsm8k.yaml").read_text(
        encoding="utf-8")
    assert (BUNDLED_TASKS / "LICENSE-gsm8k").read_bytes() == (
        SHARED_TEST.parent / "LICENSE").read_bytes()
