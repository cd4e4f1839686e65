"""The `torch` backend: requests run on the built-in PyTorch MoE engine (`moebench.engine`).

A model is a checkpoint folder, a Hub cache folder (`models--org--name`), a bundled demo
name (`demo-mixtral` → `moebench/demo_models/demo-mixtral`), a GGUF file (`path/model.gguf`),
or `ollama:NAME[:TAG]`: the GGUF blob of a model pulled into the local Ollama store, recorded
under Ollama's own name and manifest digest so torch and Ollama runs of one pull line up. One request runs at a time (a
lock): with concurrency > 1 the others queue, and their wait is recorded as `queue_s`. Each
Completion carries engine timings (prefill, decode, TTFT from the streaming callback) and the
request's router counts. `--timeout` is a wall-clock deadline checked between decode steps.
A checkpoint that cannot load (the memory refusal `OutOfMemoryRisk`, bad files, a torch
out-of-memory error) raises `ModelLoadFailed`, so the run goes on to the next model. With
`BackendConfig.compile` (`--compile`) each model's decode step is compiled after its load,
sized from the requests `prepare` is given (`moebench.backends._compile`). This module
imports torch; the registry imports it only when used.
"""

from __future__ import annotations

import gc
import hashlib
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moebench.backends import BackendConfig
from moebench.backends._common import chat_messages
from moebench.backends._compile import compile_engine
from moebench.backends._native import native_engine
from moebench.backends._load import load_failed
from moebench.units import human_number
from moebench.engine import ChatTemplateError, Engine, load_model, ollama_store, resolve_folder
from moebench.engine.runtime import is_gguf_file
from moebench.engine.generate import GenerationTimeout
from moebench.errors import EngineError, ModelNotFound, RequestFailed
from moebench.paths import DEMO_MODELS_DIR
from moebench.types import Completion, ModelInfo, Request

#: generation defaults when a suite sets none: greedy, so runs are reproducible
DEFAULT_MAX_TOKENS = 256
DEFAULT_TEMPERATURE = 0.0
_QUANT = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}
GGUF_DIGEST_BYTES = 16 * 2**20


def resolve_source(name: str) -> tuple[Path, str, str]:
    """(checkpoint folder or GGUF file, display name, digest) for any model reference."""
    if ollama_store.is_reference(name):
        pulled = ollama_store.resolve(name)
        return pulled.gguf, pulled.name, pulled.digest
    path = Path(name).expanduser()
    if path.is_file():
        if not is_gguf_file(path):
            raise ModelNotFound(f"{path} is not a GGUF file — give a .gguf file, a checkpoint "
                                "folder or ollama:NAME[:TAG]")
        return path, path.name.removesuffix(".gguf"), gguf_digest(path)
    if name.endswith(".gguf"):
        raise ModelNotFound(f"GGUF file {path} does not exist — check the path")
    try:
        folder, display = resolve_model(name)
    except ModelNotFound as error:
        pulled = _pulled_by_ollama(name)
        if pulled:  # `-m mixtral:8x7b` with --backend torch: point at the Ollama store copy
            raise ModelNotFound(f"{error} — Ollama has pulled it: use -m ollama:{pulled}") from None
        raise
    return folder, display, checkpoint_digest(folder)


def _pulled_by_ollama(name: str) -> str | None:
    """`name` as the local Ollama store knows it, or None."""
    try:
        return ollama_store.resolve(name).name
    except ModelNotFound:
        return None


def gguf_digest(path: Path) -> str:
    """sha256 of a GGUF file's size and first 16 MiB (header, metadata, first tensors): cheap on
    multi-GB files and changes whenever the file is re-converted or re-quantised."""
    h = hashlib.sha256(f"{path.stat().st_size}\n".encode())
    with path.open("rb") as handle:
        h.update(handle.read(GGUF_DIGEST_BYTES))
    return h.hexdigest()


def resolve_model(name: str) -> tuple[Path, str]:
    """(checkpoint folder, display name) for a demo name, a folder or a Hub cache folder."""
    demo = DEMO_MODELS_DIR / name
    path = Path(name).expanduser()
    if demo.is_dir() and not path.is_dir():
        return demo, name
    if path.is_dir():
        folder = resolve_folder(path)
        if path.name.startswith("models--"):  # Hub cache: models--org--name → org/name
            return folder, path.name.removeprefix("models--").replace("--", "/")
        return folder, path.resolve().name
    demos = sorted(d.name for d in DEMO_MODELS_DIR.glob("demo-*") if d.is_dir())
    listed = f" or a bundled demo: {', '.join(demos)}" if demos else ""
    raise ModelNotFound(f"model '{name}' not found — give a checkpoint folder (config.json + "
                        f"*.safetensors + tokenizer.json), a .gguf file, ollama:NAME[:TAG]{listed}")


def checkpoint_digest(folder: Path) -> str:
    """sha256 of config.json, the safetensors index and the weight files' names and sizes (cheap)."""
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors.index.json"):
        if (folder / name).is_file():
            h.update((folder / name).read_bytes())
    for file in sorted(folder.glob("*.safetensors")):
        h.update(f"{file.name}:{file.stat().st_size}\n".encode())
    return h.hexdigest()


@dataclass
class _Loaded:
    engine: Engine
    info: ModelInfo


class TorchBackend:
    """Backend protocol over in-process engines, one request at a time."""

    name = "torch"

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self._models: dict[str, _Loaded] = {}
        self._loads: dict[str, int] = {}
        self._lock = threading.Lock()

    def check(self, model: str) -> None:
        """The checkpoint folder, GGUF file, Ollama store entry or demo name exists;
        ModelNotFound otherwise."""
        resolve_source(model)

    def prepare(self, model: str, options: Mapping[str, Any] | None = None,
                requests: Sequence[Request] | None = None) -> ModelInfo:
        """Load `model` (load time measured) and describe it; a no-op when already loaded.

        With `config.compile` the decode step is compiled for the longest of `requests`
        (compile time apart in `extra["compile_s"]`, or why not in `extra["compile_error"]`).
        ModelLoadFailed when it cannot be loaded (too big for free memory, bad files)."""
        with self._lock:
            try:
                return self._load(model, requests).info
            except ModelNotFound:
                raise
            except (EngineError, MemoryError, RuntimeError, OSError, ValueError) as error:
                source, display, digest = resolve_source(model)
                reason = " ".join(str(error).split()) or type(error).__name__
                known = ModelInfo(name=display, backend=self.name, digest=digest,
                                  extra={"path": str(source)})
                raise load_failed(display, reason, self.name, known) from None

    def generate(self, model: str, request: Request) -> Completion:
        """Run one request; RequestFailed when the engine fails on it."""
        asked = time.perf_counter()
        with self._lock:
            queue_s = time.perf_counter() - asked
            loaded = self._load(model)
            try:
                return self._run(loaded, request, queue_s)
            except GenerationTimeout:
                raise RequestFailed(f"request to {loaded.info.name} took longer than "
                                    f"{self.config.timeout:g}s — raise --timeout") from None
            except EngineError as error:
                raise RequestFailed(f"{loaded.info.name}: {error}") from None
            except RuntimeError as error:  # torch kernel failures: one line, keep the run going
                raise RequestFailed(f"{loaded.info.name}: engine failed ({error})") from None

    def unload(self, model: str) -> ModelInfo | None:
        """Free the model's memory; returns its info with the number of loads seen."""
        with self._lock:
            loaded = self._models.pop(model, None)
        if loaded is None:
            return None
        info, compiled = loaded.info, loaded.engine.compiled is not None
        del loaded
        _free_memory(self.config.device, compiled)
        return info

    def close(self) -> None:
        """Unload every model."""
        for model in list(self._models):
            self.unload(model)

    def _load(self, model: str, requests: Sequence[Request] | None = None) -> _Loaded:
        if model in self._models:
            return self._models[model]
        source, display, digest = resolve_source(model)
        start = time.perf_counter()
        engine = load_model(source, dtype=self.config.dtype, device=self.config.device)
        load_s = time.perf_counter() - start  # the compile below is timed on its own
        self._loads[model] = self._loads.get(model, 0) + 1
        info = _model_info(engine, source, display, digest, load_s, self._loads[model])
        native = False
        if self.config.native:
            info, native = native_engine(engine, info)
        if self.config.compile and not native:
            info = compile_engine(engine, info, requests or (), lambda r: _need(engine, r),
                                  self.config.compile_length)
        loaded = _Loaded(engine, info)
        self._models[model] = loaded
        return loaded

    def _run(self, loaded: _Loaded, request: Request, queue_s: float) -> Completion:
        engine, options = loaded.engine, request.options
        prompt_ids = prompt_tokens(engine, request)
        stops = _stops(options.get("stop"))
        engine.reset_router_stats()
        first: list[float] = []
        start = time.perf_counter()
        new_ids = engine.generate(
            prompt_ids, max_new_tokens=max_new_tokens(request),
            temperature=float(options.get("temperature", DEFAULT_TEMPERATURE)),
            top_p=float(options.get("top_p", 1.0)), top_k=int(options.get("top_k") or 0),
            seed=options.get("seed"), stop=stops, ignore_eos=bool(options.get("ignore_eos")),
            on_token=lambda _: first.append(time.perf_counter()) if not first else None,
            deadline=start + self.config.timeout)
        end = time.perf_counter()
        stats = engine.last_stats
        assert stats is not None
        n = len(new_ids)
        return Completion(
            text=_cut_at_stop(engine.tokenizer.decode(new_ids), stops),
            model=loaded.info.name, latency_s=end - start,
            ttft_s=first[0] - start if first else None, prompt_tokens=len(prompt_ids),
            output_tokens=n,
            # n tokens take n − 1 decode steps (the first comes from the prefill): scale the
            # measured step time to n tokens, so tokens_per_s is the true per-step rate
            decode_s=stats.decode_s * n / (n - 1) if n > 1 else None,
            prompt_eval_s=stats.prefill_s, server_total_s=end - start,
            done_reason="length" if stats.stop_reason == "length" else "stop",
            queue_s=queue_s, timing_source="engine", router=engine.router_stats().as_dict())


def max_new_tokens(request: Request) -> int:
    """The request's token budget (`max_tokens`, else the backend's default)."""
    return int(request.options.get("max_tokens") or DEFAULT_MAX_TOKENS)


def _need(engine: Engine, request: Request) -> int | None:
    """Cache positions the request can fill: prompt tokens + max_tokens (None when its prompt
    cannot be tokenized: that request fails on its own later)."""
    try:
        return len(prompt_tokens(engine, request)) + max_new_tokens(request)
    except (EngineError, ValueError, TypeError):
        return None


def prompt_tokens(engine: Engine, request: Request) -> list[int]:
    """The request as token ids: chat template when the model has one, else the plain prompt.

    A template that rejects a system message (Mixtral's does) gets it folded into the user turn.
    """
    tok = engine.tokenizer
    if not tok.chat_template:
        text = f"{request.system}\n\n{request.prompt}" if request.system else request.prompt
        return tok.encode(text)
    messages = chat_messages(request)
    if request.system:
        try:
            return tok.encode(tok.apply_chat_template(messages), add_special_tokens=False)
        except ChatTemplateError:
            messages = [{"role": "user", "content": f"{request.system}\n\n{request.prompt}"}]
    return tok.encode(tok.apply_chat_template(messages), add_special_tokens=False)


def _stops(value: Any) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else [str(s) for s in value if s]


def _cut_at_stop(text: str, stops: list[str]) -> str:
    """Text up to the first stop string (not included), as servers return it."""
    cuts = [text.find(s) for s in stops if s in text]
    return text[:min(cuts)] if cuts else text


def _model_info(engine: Engine, folder: Path, name: str, digest: str, load_s: float,
                loads: int) -> ModelInfo:
    info = engine.info
    extra = {**info.as_dict(), "path": str(folder),
             "active_bytes_per_token": engine.model.active_bytes_per_token()}
    return ModelInfo(
        name=name, backend="torch", digest=digest, family=info.family,
        parameter_size=human_number(info.total_params), quantization=quantization(engine),
        context_length=info.context_length, experts=info.experts, top_k=info.top_k,
        shared_experts=info.shared_experts, total_params=info.total_params,
        active_params=info.active_params, size_bytes=info.weight_bytes,
        vram_bytes=info.weight_bytes if info.device.startswith("cuda") else 0,
        load_s=load_s, loads=loads, extra=extra)


def quantization(engine: Engine) -> str:
    """`GGUF Q4_K_M · 4.8 bits/weight` for GGUF weights (run at `--dtype`), else the dtype (`F32`)."""
    info = engine.info
    run_as = f" · run as {info.quant}" if info.quant else ""
    if info.weights_format == "gguf":
        return f"GGUF {info.file_type} · {info.bits_per_weight:.1f} bits/weight{run_as}"
    return _QUANT.get(info.dtype, info.dtype) + run_as


def _free_memory(device: str, compiled: bool = False) -> None:
    """Give an unloaded model's memory back; after a compiled one, drop dynamo's caches too
    (they would hold its graphs, and count against the recompile limit of the next model)."""
    if compiled:
        import torch._dynamo

        torch._dynamo.reset()
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def create(config: BackendConfig) -> TorchBackend:
    """Factory registered as backend "torch"."""
    return TorchBackend(config)
