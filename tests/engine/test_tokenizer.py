"""Tokenizer and chat template: same ids and same rendered prompts as transformers."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import transformers

from moebench.engine import ChatTemplateError, Tokenizer
from moebench.errors import EngineError

from tiny_models import Case, save_tokenizer

CONVERSATIONS: list[list[dict[str, str]]] = [
    [{"role": "user", "content": "How many apples?"}],
    [{"role": "system", "content": "  Be brief.  "}, {"role": "user", "content": "Name 3 fruits."}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
     {"role": "user", "content": "Ünïcode — ok?"}],
]
# loop controls, tojson (non-ASCII kept), namespace, whitespace control, a generation block
FANCY_TEMPLATE = (
    "{%- set ns = namespace(n=0) -%}\n"
    "{%- for m in messages -%}\n"
    "  {%- if loop.index > 2 %}{% break %}{% endif -%}\n"
    "  {%- set ns.n = ns.n + 1 -%}\n"
    "  <{{ m['role'] }}>{{ m | tojson }}\n"
    "  {% generation %}{{ eos_token }}{% endgeneration %}\n"
    "{%- endfor -%}\n"
    "{{ ns.n }}{% if add_generation_prompt %}<assistant>{% endif %}"
)


@pytest.fixture(scope="module")
def pair(checkpoints: dict[str, Case]) -> tuple[Tokenizer, Any]:
    folder = checkpoints["mixtral"].folder
    return Tokenizer.from_folder(folder), transformers.AutoTokenizer.from_pretrained(folder)


@pytest.mark.parametrize("text", ["The quick brown fox", "Ünïcode, 42 apples!", ""])
def test_encode_decode_match_transformers(pair: tuple[Tokenizer, Any], text: str) -> None:
    ours, ref = pair
    assert ours.encode(text) == ref.encode(text)
    assert ours.encode(text, add_special_tokens=False) == ref.encode(text, add_special_tokens=False)
    assert ours.decode(ours.encode(text)) == ref.decode(ref.encode(text), skip_special_tokens=True)


@pytest.mark.parametrize("messages", CONVERSATIONS)
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_chat_template_matches_transformers(pair: tuple[Tokenizer, Any],
                                            messages: list[dict[str, str]],
                                            add_generation_prompt: bool) -> None:
    ours, ref = pair
    expected = ref.apply_chat_template(messages, tokenize=False,
                                       add_generation_prompt=add_generation_prompt)
    assert ours.apply_chat_template(messages, add_generation_prompt=add_generation_prompt) == expected


def test_chat_template_jinja_file_wins(checkpoints: dict[str, Case], tmp_path: Path) -> None:
    folder = tmp_path / "tok"
    folder.mkdir()
    save_tokenizer(folder)
    (folder / "chat_template.jinja").write_text(FANCY_TEMPLATE)
    ours = Tokenizer.from_folder(folder)
    ref = transformers.AutoTokenizer.from_pretrained(folder)
    for messages in CONVERSATIONS:
        expected = ref.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert ours.apply_chat_template(messages) == expected
    assert "Ünïcode" in ours.apply_chat_template(CONVERSATIONS[2][1:])


def test_raise_exception_becomes_chat_template_error(pair: tuple[Tokenizer, Any]) -> None:
    with pytest.raises(ChatTemplateError, match="Unknown role: tool"):
        pair[0].apply_chat_template([{"role": "tool", "content": "x"}])


def test_no_template_is_an_engine_error(tmp_path: Path) -> None:
    save_tokenizer(tmp_path, template=None)
    tok = Tokenizer.from_folder(tmp_path)
    assert tok.chat_template is None
    with pytest.raises(EngineError, match="no chat template"):
        tok.apply_chat_template([{"role": "user", "content": "x"}])


def test_special_tokens_and_eos(pair: tuple[Tokenizer, Any]) -> None:
    ours, ref = pair
    assert ours.special_tokens["bos_token"] == "<s>"
    assert ours.eos_ids() == (ref.eos_token_id,)
    assert ours.vocab_size == len(ref)


def test_named_template_list(checkpoints: dict[str, Case], tmp_path: Path) -> None:
    import json

    shutil.copytree(checkpoints["mixtral"].folder, tmp_path / "m")
    config_path = tmp_path / "m" / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = [{"name": "tool_use", "template": "T"},
                               {"name": "default", "template": "D{{ messages | length }}"}]
    config_path.write_text(json.dumps(config))
    assert Tokenizer.from_folder(tmp_path / "m").apply_chat_template(CONVERSATIONS[1]) == "D2"
