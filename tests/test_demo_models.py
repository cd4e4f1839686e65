"""The bundled demo MoE checkpoints and the `demo` suite they are trained for.

Checks files and sizes, configs (family, experts, top-k), that `transformers` loads and runs each
checkpoint, that tasks/demo.yaml is the seeded generator's output and held out from training, and
that the gold answers pass the contract scorers. Engine parity and accuracy floors run once
`moebench.engine.load_model` can load the checkpoints (until then they skip).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from moebench.paths import BUNDLED_TASKS, DEMO_MODELS_DIR
from moebench.types import ScorerSpec

ROOT = Path(__file__).resolve().parents[1]
SUITE = BUNDLED_TASKS / "demo.yaml"
MB = 1_000_000

#: name, model_type, routed experts, top-k, shared experts
MODELS = [
    ("demo-mixtral", "mixtral", 8, 2, 0),
    ("demo-dbrx", "dbrx", 16, 4, 0),
    ("demo-deepseek", "deepseek_v2", 16, 4, 2),
]
NAMES = [m[0] for m in MODELS]


def _demo_data() -> Any:
    """scripts/demo_data.py as a module (scripts/ is not a package)."""
    if "demo_data" not in sys.modules:
        spec = importlib.util.spec_from_file_location("demo_data", ROOT / "scripts" / "demo_data.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["demo_data"] = module
        spec.loader.exec_module(module)
    return sys.modules["demo_data"]


def _config(name: str) -> dict[str, Any]:
    return json.loads((DEMO_MODELS_DIR / name / "config.json").read_text())


def _suite_cases() -> Iterator[tuple[str, ScorerSpec, dict[str, Any], str]]:
    """(task, scorer spec, case fields, rendered prompt) for every case of tasks/demo.yaml."""
    doc = yaml.safe_load(SUITE.read_text(encoding="utf-8"))
    for task in doc["tasks"]:
        raw = task["scorer"] if isinstance(task["scorer"], dict) else {"type": task["scorer"]}
        spec = ScorerSpec(raw["type"], {k: v for k, v in raw.items() if k != "type"})
        for case in task["cases"]:
            yield task["name"], spec, case, case.get("prompt") or task["prompt"].format(**case)


def _chat(name: str, prompt: str) -> str:
    """The prompt rendered with the checkpoint's own chat template (as a backend would)."""
    import jinja2

    template = json.loads((DEMO_MODELS_DIR / name / "tokenizer_config.json").read_text())
    return jinja2.Template(template["chat_template"]).render(
        messages=[{"role": "user", "content": prompt}], add_generation_prompt=True)


# ---- files and configs -----------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_files_exist_and_are_small(name: str) -> None:
    folder = DEMO_MODELS_DIR / name
    for file in ("config.json", "tokenizer.json", "tokenizer_config.json", "MODEL_CARD.md",
                 "training.json", "eval.json"):
        assert (folder / file).is_file(), f"{name}: missing {file}"
    weights = list(folder.glob("*.safetensors"))
    assert weights, f"{name}: no safetensors"
    assert sum(w.stat().st_size for w in weights) <= 10 * MB
    assert "not a language model" in (folder / "MODEL_CARD.md").read_text()


def test_all_checkpoints_fit_in_30_mb() -> None:
    total = sum(f.stat().st_size for f in DEMO_MODELS_DIR.glob("*/*") if f.is_file())
    assert total <= 30 * MB


@pytest.mark.parametrize(("name", "model_type", "experts", "top_k", "shared"), MODELS)
def test_config_is_the_right_family(name: str, model_type: str, experts: int, top_k: int,
                                    shared: int) -> None:
    cfg = _config(name)
    assert cfg["model_type"] == model_type
    assert cfg["dtype"] == "bfloat16"
    if model_type == "dbrx":
        got = (cfg["ffn_config"]["moe_num_experts"], cfg["ffn_config"]["moe_top_k"], 0)
    elif model_type == "deepseek_v2":
        got = (cfg["n_routed_experts"], cfg["num_experts_per_tok"], cfg["n_shared_experts"])
        assert cfg["kv_lora_rank"], "DeepSeek-V2 demo must use MLA attention"
    else:
        got = (cfg["num_local_experts"], cfg["num_experts_per_tok"], 0)
    assert got == (experts, top_k, shared)


@pytest.mark.parametrize("name", NAMES)
def test_chat_template_matches_the_training_format(name: str) -> None:
    data = _demo_data()
    assert _chat(name, "What is 2 + 3?") == data.chat_prompt("What is 2 + 3?")


# ---- transformers can load and run each checkpoint --------------------------------------------


def _hf_greedy(model: Any, ids: list[int], eos: int, max_new: int = 48) -> list[int]:
    import torch

    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             max_new_tokens=max_new, do_sample=False, eos_token_id=eos,
                             pad_token_id=model.config.pad_token_id)
    new = out[0, len(ids):].tolist()
    return new[: new.index(eos)] if eos in new else new


@pytest.mark.parametrize("name", NAMES)
def test_transformers_loads_and_generates(name: str) -> None:
    transformers = pytest.importorskip("transformers")
    import torch

    folder = DEMO_MODELS_DIR / name
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    assert type(model).__name__.lower().startswith(_config(name)["model_type"].replace("_", ""))
    ids = tok.apply_chat_template([{"role": "user", "content": "List 2 words with 4 letters."}],
                                  add_generation_prompt=True, tokenize=True, return_dict=False)
    new = _hf_greedy(model, list(ids), tok.eos_token_id, max_new=24)
    assert new and tok.decode(new, skip_special_tokens=True).strip()


# ---- the demo suite ---------------------------------------------------------------------------


def test_suite_file_is_the_generators_output() -> None:
    data = _demo_data()
    assert yaml.safe_load(SUITE.read_text()) == data.suite_document(data.suite_examples())


def test_suite_has_20_cases_per_family_and_short_options() -> None:
    doc = yaml.safe_load(SUITE.read_text())
    assert doc["suite"] == "demo" and "demo MoE models" in doc["description"]
    assert doc["options"]["temperature"] == 0 and doc["options"]["max_tokens"] <= 64
    assert {t["scorer"] if isinstance(t["scorer"], str) else t["scorer"]["type"]
            for t in doc["tasks"]} == {"word_length", "number", "entities", "summary"}
    assert all(len(t["cases"]) >= 20 for t in doc["tasks"])


def test_demo_cases_are_held_out_from_training() -> None:
    data = _demo_data()
    trained = {e.prompt for e in data.training_examples()}
    prompts = [prompt for *_, prompt in _suite_cases()]
    assert len(prompts) >= 80
    assert not trained & set(prompts)


def test_word_combinations_of_the_suite_are_never_trained() -> None:
    data = _demo_data()
    trained = {(e.fields["count"], e.fields["letters"])
               for e in data.training_examples(per_family=2_000) if e.family in ("words", "after")}
    suite = {(e.fields["count"], e.fields["letters"])
             for e in data.suite_examples() if e.family == "words"}
    assert trained and suite and not trained & suite


def test_word_answers_count_down_to_one() -> None:
    data = _demo_data()
    example = next(e for e in data.training_examples(per_family=8) if e.family == "words")
    numbers = [int(line.split(".")[0]) for line in example.answer.splitlines()]
    assert numbers == list(range(example.fields["count"], 0, -1))


def test_gold_answers_pass_the_contract_scorers() -> None:
    from moebench.scorers import score_text

    data = _demo_data()
    gold = {e.prompt: e.answer for e in data.suite_examples()}
    for task, spec, case, prompt in _suite_cases():
        score = score_text(spec, gold[prompt], case)
        assert score.passed, f"{task}/{case['id']}: {gold[prompt]!r} scored {score}"


def test_word_vocabulary_is_real_words_of_the_stated_length() -> None:
    from moebench.scorers import score_text

    data = _demo_data()
    for letters, words in data.WORDS.items():
        assert all(len(w) == letters for w in words)
        case = {"count": len(words), "letters": letters}
        assert score_text(ScorerSpec("word_length"), ", ".join(words), case).passed, letters


def test_suite_validates() -> None:
    pytest.importorskip("moebench.suites.loader")
    from typer.testing import CliRunner

    from moebench.cli import app

    result = CliRunner().invoke(app, ["suites", "validate", str(SUITE)])
    assert result.exit_code == 0, result.output


# ---- engine parity and floors (run once moebench.engine can load the checkpoints) --------------


def _engine_or_skip(folder: Path) -> Any:
    engine_module = pytest.importorskip("moebench.engine")
    if not hasattr(engine_module, "load_model"):
        pytest.skip("moebench.engine.load_model not available yet")
    try:
        return engine_module.load_model(str(folder), dtype="float32", device="cpu")
    except Exception as error:  # the engine is in progress; the lead un-skips when it loads these
        pytest.skip(f"engine cannot load {folder.name} yet: {error}")


def _engine_greedy(engine: Any, ids: list[int], eos: int, max_new: int = 48) -> list[int]:
    new = list(engine.generate(ids, max_new_tokens=max_new, temperature=0.0))
    return new[: new.index(eos)] if eos in new else new


@pytest.mark.parametrize("name", NAMES)
def test_engine_matches_transformers_greedy(name: str) -> None:
    folder = DEMO_MODELS_DIR / name
    engine = _engine_or_skip(folder)
    transformers = pytest.importorskip("transformers")
    import torch

    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    eos = model.config.eos_token_id
    picked: dict[str, int] = {}
    for task, _, _, prompt in _suite_cases():
        if picked.get(task, 0) >= 2:
            continue
        picked[task] = picked.get(task, 0) + 1
        ids = list(engine.tokenizer.encode(_chat(name, prompt)))
        assert _engine_greedy(engine, ids, eos) == _hf_greedy(model, ids, eos), (name, prompt)


def _accuracy(engine: Any, name: str, folder: Path) -> dict[str, float]:
    """Per task: share of demo cases passed with engine greedy decoding."""
    from tokenizers import Tokenizer

    from moebench.scorers import score_text

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    eos = tok.token_to_id("<|end|>")
    passed: dict[str, list[bool]] = {}
    for task, spec, case, prompt in _suite_cases():
        new = _engine_greedy(engine, list(engine.tokenizer.encode(_chat(name, prompt))), eos)
        passed.setdefault(task, []).append(score_text(spec, tok.decode(new), case).passed)
    return {task: sum(v) / len(v) for task, v in passed.items()}


def _recorded_twin_accuracy(name: str) -> dict[str, float]:
    """The untrained twin's accuracy per task, as the training script measured it (eval.json)."""
    report = json.loads((DEMO_MODELS_DIR / name / "eval.json").read_text())
    return {task: got["accuracy"] for task, got in report["scores"]["untrained"].items()}


def _recorded_accuracy(name: str) -> dict[str, float]:
    """The trained model's accuracy per task as the training script measured it (eval.json)."""
    report = json.loads((DEMO_MODELS_DIR / name / "eval.json").read_text())
    return {task: got["accuracy"] for task, got in report["scores"]["trained"].items()}


@pytest.mark.slow
def test_accuracy_floors_on_the_demo_suite() -> None:
    """Issue 16's bar: every model ≥ 70% on every family, the best ≥ 85% on word_length, each
    above its untrained twin, the three distinguishable — measured with the engine's greedy
    decoding, which must also reproduce the figures the model cards were written from."""
    engines = {name: _engine_or_skip(DEMO_MODELS_DIR / name) for name in NAMES}
    trained = {name: _accuracy(engines[name], name, DEMO_MODELS_DIR / name) for name in NAMES}
    for name in NAMES:
        assert trained[name] == pytest.approx(_recorded_accuracy(name)), (name, trained[name])
        assert min(trained[name].values()) >= 0.7, (name, trained[name])
        twin = _recorded_twin_accuracy(name)
        assert all(trained[name][t] > twin[t] for t in trained[name]), (name, trained[name], twin)
    assert max(acc["word_length"] for acc in trained.values()) >= 0.85, trained
    assert len({tuple(sorted(acc.items())) for acc in trained.values()}) == len(NAMES), trained
