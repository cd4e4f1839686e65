"""Tokenizer + chat template for a checkpoint folder, without transformers.

`tokenizer.json` is read with the `tokenizers` library; the chat template comes from
`chat_template.jinja` or `tokenizer_config.json` and is rendered with jinja2 exactly as
`transformers`' `apply_chat_template` does it: a sandboxed environment with `trim_blocks` and
`lstrip_blocks`, the loopcontrols extension, a `tojson` that keeps non-ASCII, globals
`raise_exception` and `strftime_now`, and the special tokens (`bos_token`, `eos_token`, ...)
passed as variables.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import Tokenizer as HFTokenizer

from moebench.errors import EngineError

SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token",
                "mask_token")


class ChatTemplateError(EngineError):
    """The chat template refused the conversation (e.g. `raise_exception` on a system role)."""


class Tokenizer:
    """Text ↔ token ids, plus the model's chat template."""

    def __init__(self, tokenizer: HFTokenizer, chat_template: str | None,
                 special_tokens: Mapping[str, str]) -> None:
        self._tok = tokenizer
        self.chat_template = chat_template
        self.special_tokens = dict(special_tokens)

    @classmethod
    def from_folder(cls, folder: Path) -> Tokenizer:
        """Read `tokenizer.json`, `tokenizer_config.json` and `chat_template.jinja` from `folder`."""
        path = folder / "tokenizer.json"
        if not path.is_file():
            raise EngineError(f"{folder} has no tokenizer.json — the engine needs a fast-tokenizer "
                              "file (save it with transformers' tokenizer.save_pretrained)")
        config = _read_json(folder / "tokenizer_config.json")
        specials = {**_specials(_read_json(folder / "special_tokens_map.json")), **_specials(config)}
        try:
            tokenizer = HFTokenizer.from_file(str(path))
        except Exception as error:  # noqa: BLE001 - tokenizers raises a bare Exception
            message = " ".join(str(error).split())[:120]
            raise EngineError(f"{path} is not a readable tokenizer file ({message}) — "
                              "re-download the checkpoint") from None
        return cls(tokenizer, _chat_template(folder, config), specials)

    @property
    def vocab_size(self) -> int:
        """Vocabulary size including added tokens."""
        return int(self._tok.get_vocab_size(with_added_tokens=True))

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of `text` (the tokenizer's post-processor may add BOS, as transformers does)."""
        return list(self._tok.encode(text, add_special_tokens=add_special_tokens).ids)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Text of `ids` (special tokens such as EOS dropped by default)."""
        return str(self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens))

    def token_id(self, token: str) -> int | None:
        """Id of a token string, or None."""
        value = self._tok.token_to_id(token)
        return None if value is None else int(value)

    def eos_ids(self) -> tuple[int, ...]:
        """Id of the tokenizer's `eos_token`, when it has one."""
        eos = self.special_tokens.get("eos_token")
        found = self.token_id(eos) if eos else None
        return () if found is None else (found,)

    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]],
                            add_generation_prompt: bool = True, **kwargs: Any) -> str:
        """Render `messages` (`[{"role": ..., "content": ...}]`) to the prompt text.

        Raises ChatTemplateError when the template rejects the conversation, and EngineError
        when the checkpoint has no template (callers may fall back to a plain prompt).
        """
        if not self.chat_template:
            raise EngineError("this checkpoint has no chat template — send a plain prompt instead")
        chat = [{k: v for k, v in dict(m).items() if v is not None} for m in messages]
        variables = {**self.special_tokens, **kwargs}
        try:
            return _compile(self.chat_template).render(
                messages=chat, add_generation_prompt=add_generation_prompt, tools=None,
                documents=None, **variables)
        except jinja2.TemplateError as error:
            raise ChatTemplateError(f"chat template error: {error}") from None


class _GenerationTag(Extension):
    """Accepts `{% generation %}…{% endgeneration %}` (assistant-mask markers) and renders the body."""

    tags = {"generation"}

    def parse(self, parser: Any) -> Any:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller: Any) -> str:
        return str(caller())


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: Any = None, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


@lru_cache(maxsize=16)
def _compile(template: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[_GenerationTag, loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return env.from_string(template)
    except jinja2.TemplateSyntaxError as error:
        raise EngineError(f"the checkpoint's chat template does not parse ({error}) — "
                          "fix tokenizer_config.json / chat_template.jinja") from None


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise EngineError(f"{path} is not valid JSON ({error}) — re-download the checkpoint") from None
    return data if isinstance(data, dict) else {}


def _specials(config: Mapping[str, Any]) -> dict[str, str]:
    """Special token strings; values may be plain strings or AddedToken dicts."""
    found: dict[str, str] = {}
    for key in SPECIAL_KEYS:
        value = config.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            found[key] = value
    return found


def _chat_template(folder: Path, config: Mapping[str, Any]) -> str | None:
    """`chat_template.jinja` if present, else tokenizer_config's template (named: "default")."""
    jinja_file = folder / "chat_template.jinja"
    if jinja_file.is_file():
        return jinja_file.read_text(encoding="utf-8")
    template = config.get("chat_template")
    if isinstance(template, list):  # [{"name": ..., "template": ...}, ...]
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default") or next(iter(named.values()), None)
    return template if isinstance(template, str) else None
