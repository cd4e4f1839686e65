"""The tokenizer and chat template stored in a GGUF file's `tokenizer.*` metadata.

Two vocab kinds, rebuilt with the `tokenizers` library as transformers' own tokenizer.json
files spell them:

* `tokenizer.ggml.model = gpt2` — byte-level BPE from `tokens` + `merges`; the pre-tokenizer is
  the regex llama.cpp picks for `tokenizer.ggml.pre` (`llama-bpe`, `qwen2`, `deepseek-llm`,
  `deepseek-v3`, `dbrx`, `gpt-2`/`default`, …; regexes from llama.cpp's `llama-vocab.cpp`).
* `tokenizer.ggml.model = llama` — SentencePiece BPE: pieces with `scores` (merge priority),
  `▁` for spaces, a space prefix (`add_space_prefix`, default on), byte fallback `<0xNN>`.

Control (type 3) tokens become special added tokens, user-defined (type 4) plain added tokens;
BOS is prepended when `add_bos_token` says so (default: on for `llama`, off for `gpt2`).
The chat template is `tokenizer.chat_template`, rendered by `tokenizer.Tokenizer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moebench.engine.tokenizer import Tokenizer
from moebench.errors import EngineError

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

_LLAMA3 = (r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|"
           r"\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2 = (r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|"
          r"\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_DEEPSEEK_LLM = (
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-"
    "ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-"
    "ﬗＡ-Ｚａ-ｚ\U00010400-\U0001044f𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
)
_DEEPSEEK3 = (
    r"\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
)
#: `tokenizer.ggml.pre` → regexes applied in turn (None: GPT-2's, built into ByteLevel)
PRE_TOKENIZERS: dict[str, tuple[str, ...] | None] = {
    "default": None, "gpt-2": None, "gpt2": None, "olmo": None,
    "llama3": (_LLAMA3,), "llama-bpe": (_LLAMA3,), "llama-v3": (_LLAMA3,), "dbrx": (_LLAMA3,),
    "smaug-bpe": (_LLAMA3,), "qwen2": (_QWEN2,), "deepseek-r1-qwen": (_QWEN2,),
    "deepseek-llm": _DEEPSEEK_LLM, "deepseek-v3": _DEEPSEEK3,
}


def from_gguf(meta: Mapping[str, Any]) -> Tokenizer:
    """A Tokenizer built from `tokenizer.ggml.*` and `tokenizer.chat_template`."""
    kind = meta.get("tokenizer.ggml.model")
    tokens = meta.get("tokenizer.ggml.tokens")
    if not tokens:
        raise EngineError("the GGUF file has no tokenizer.ggml.tokens — it carries no tokenizer")
    types = list(meta.get("tokenizer.ggml.token_type") or [NORMAL] * len(tokens))
    if kind == "gpt2":
        tok = _bpe(tokens, meta.get("tokenizer.ggml.merges") or [], meta.get("tokenizer.ggml.pre"))
    elif kind == "llama":
        tok = _sentencepiece(tokens, meta.get("tokenizer.ggml.scores") or [0.0] * len(tokens), types,
                             bool(meta.get("tokenizer.ggml.add_space_prefix", True)))
    else:
        raise EngineError(f"GGUF tokenizer model '{kind}' is not supported — supported: gpt2 (BPE), "
                          "llama (SentencePiece)")
    _added_tokens(tok, tokens, types)
    specials = _special_strings(meta, tokens)
    _post_processor(tok, meta, specials, kind == "llama")
    template = meta.get("tokenizer.chat_template")
    return Tokenizer(tok, template if isinstance(template, str) else None, specials)


def _bpe(tokens: list[str], merges: list[str], pre: str | None) -> Any:
    from tokenizers import Regex, decoders, models, pre_tokenizers
    from tokenizers import Tokenizer as HFTokenizer

    if pre not in PRE_TOKENIZERS and pre is not None:
        raise EngineError(f"GGUF pre-tokenizer '{pre}' is not supported — supported: "
                          f"{', '.join(sorted(PRE_TOKENIZERS))}")
    vocab = {token: i for i, token in enumerate(tokens)}
    pairs = [tuple(m.split(" ", 1)) for m in merges]
    llama3 = pre in ("llama3", "llama-bpe", "llama-v3")
    tok = HFTokenizer(models.BPE(vocab, pairs, ignore_merges=llama3))
    regexes = PRE_TOKENIZERS.get(pre or "default")
    if regexes is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        splits = [pre_tokenizers.Split(Regex(r), behavior="isolated") for r in regexes]
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [*splits, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    return tok


def _sentencepiece(tokens: list[str], scores: list[float], types: list[int], prefix: bool) -> Any:
    """SentencePiece BPE as transformers' LlamaConverter writes it: merges ranked by the score
    of the merged piece, `▁` for spaces, byte fallback."""
    from tokenizers import decoders, models, normalizers
    from tokenizers import Tokenizer as HFTokenizer

    vocab = {token: i for i, token in enumerate(tokens)}
    unk = next((tokens[i] for i, t in enumerate(types) if t == UNKNOWN), None)
    tok = HFTokenizer(models.BPE(vocab, _merges_from_scores(tokens, scores, types), unk_token=unk,
                                 fuse_unk=True, byte_fallback=True))
    steps = [normalizers.Prepend("▁")] if prefix else []
    tok.normalizer = normalizers.Sequence([*steps, normalizers.Replace(" ", "▁")])
    strip = [decoders.Strip(" ", 1, 0)] if prefix else []
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), *strip])
    return tok


def _merges_from_scores(tokens: list[str], scores: list[float],
                        types: list[int]) -> list[tuple[str, str]]:
    """Every split of a normal piece into two pieces of the vocab, ordered by the merged piece's
    score (higher merges first), then by the parts' ids (as transformers' generate_merges)."""
    vocab = {token: i for i, token in enumerate(tokens)}
    found = []
    for i, piece in enumerate(tokens):
        if types[i] not in (NORMAL, USER_DEFINED) or len(piece) < 2:
            continue
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                found.append((-scores[i], vocab[left], vocab[right], left, right))
    found.sort()
    return [(left, right) for *_, left, right in found]


def _added_tokens(tok: Any, tokens: list[str], types: list[int]) -> None:
    from tokenizers import AddedToken

    special = [AddedToken(tokens[i], special=True, normalized=False)
               for i, t in enumerate(types) if t == CONTROL]
    plain = [AddedToken(tokens[i], special=False, normalized=False)
             for i, t in enumerate(types) if t == USER_DEFINED]
    if special:
        tok.add_special_tokens(special)
    if plain:
        tok.add_tokens(plain)


def _special_strings(meta: Mapping[str, Any], tokens: list[str]) -> dict[str, str]:
    """`bos_token`, `eos_token`, … as strings, for the chat template."""
    found = {}
    for key, name in (("bos", "bos_token"), ("eos", "eos_token"), ("unknown", "unk_token"),
                      ("padding", "pad_token")):
        index = meta.get(f"tokenizer.ggml.{key}_token_id")
        if isinstance(index, int) and 0 <= index < len(tokens):
            found[name] = tokens[index]
    return found


def _post_processor(tok: Any, meta: Mapping[str, Any], specials: Mapping[str, str],
                    default_bos: bool) -> None:
    from tokenizers import processors

    add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", default_bos)) and "bos_token" in specials
    add_eos = bool(meta.get("tokenizer.ggml.add_eos_token", False)) and "eos_token" in specials
    if not (add_bos or add_eos):
        return
    bos, eos = specials.get("bos_token"), specials.get("eos_token")
    single = " ".join([f"{bos}:0"] * add_bos + ["$A:0"] + [f"{eos}:0"] * add_eos)
    pair = " ".join([f"{bos}:0"] * add_bos + ["$A:0"] + [f"{eos}:0"] * add_eos
                    + [f"{bos}:1"] * add_bos + ["$B:1"] + [f"{eos}:1"] * add_eos)
    ids = [(t, meta[f"tokenizer.ggml.{k}_token_id"]) for t, k, on in
           ((bos, "bos", add_bos), (eos, "eos", add_eos)) if on]
    tok.post_processor = processors.TemplateProcessing(single=single, pair=pair, special_tokens=ids)
