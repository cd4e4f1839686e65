"""`load_checkpoint` and `Engine`: a loaded checkpoint with its tokenizer, ready to generate.

Loading: resolve the folder (plain, or a Hub cache `models--org--name`), read config.json and
pick the family, refuse with `OutOfMemoryRisk` when the weights would not fit in free memory,
build the model on the `meta` device, then assign the checkpoint's tensors (read memory-mapped,
cast once). Nothing is ever downloaded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from moebench.engine.compiled import CompiledDecoder
from moebench.engine.native_decode import NativeDecoder
from moebench.engine.config import ModelArgs, check_sizes, count_params, read_config_json
from moebench.engine.families import get_family
from moebench.engine.generate import GenerationStats, Sampling, generate
from moebench.engine.model import Transformer
from moebench.engine.telemetry import RouterCounts
from moebench.engine.tokenizer import Tokenizer
from moebench.engine.weights import Checkpoint
from moebench.errors import EngineError, OutOfMemoryRisk

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
GIB = 1024**3
#: headroom on top of the weights: activations, KV cache of a few thousand tokens, allocator
MEMORY_MARGIN = 1.10
#: below this many weight bytes read per token, decode runs single-threaded: OpenMP barriers
#: cost more than they gain on tiny matrices, and on a busy machine they stall badly (a 3 ms
#: prefill took 2.6 s with 2 threads on a loaded 2-core box)
SMALL_MODEL_BYTES = 64 * 2**20


@dataclass(frozen=True)
class EngineInfo:
    """MoE facts about a loaded model, computed from its config (parameters) and tensors (bytes)."""

    family: str
    layers: int
    moe_layers: int
    experts: int
    top_k: int
    shared_experts: int
    total_params: int
    active_params: int
    vocab_size: int
    context_length: int
    dtype: str
    device: str
    weight_bytes: int
    load_s: float
    #: torch threads `generate` runs with (0: whatever torch is set to)
    threads: int = 0
    #: where the weights came from: "safetensors" or "gguf"
    weights_format: str = "safetensors"
    #: GGUF: the file's `general.file_type` (Q4_K_M, Q8_0, F16, …); "" for safetensors
    file_type: str = ""
    #: GGUF: average stored bits per weight (0 for safetensors)
    bits_per_weight: float = 0.0
    #: GGUF: share of weights per stored tensor type, e.g. "Q4_K 71%, Q6_K 25%, F32 4%"
    type_mix: str = ""
    #: int8 mode (`quantize.QUANT_MODES`: "int8", "q8_0" weight-only, "w8a8" weights and
    #: activations); "" = float weights
    quant: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON and ModelInfo.extra)."""
        return asdict(self)


class Engine:
    """A model + tokenizer: `generate`, router telemetry, and what the last call measured."""

    def __init__(self, model: Transformer, tokenizer: Tokenizer, info: EngineInfo,
                 eos_ids: Sequence[int], folder: Path) -> None:
        self.model, self.tokenizer, self.info = model, tokenizer, info
        self.eos_ids = tuple(eos_ids)
        self.folder = folder
        self.last_stats: GenerationStats | None = None
        self.compiled: CompiledDecoder | None = None
        self.native: NativeDecoder | None = None

    @property
    def args(self) -> ModelArgs:
        """The model's family-agnostic description."""
        return self.model.args

    def generate(self, ids: Sequence[int], max_new_tokens: int = 256, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int | None = None, stop: Sequence[str] | None = None,
                 on_token: Callable[[int], None] | None = None, *, top_k: int = 0,
                 ignore_eos: bool = False, deadline: float | None = None) -> list[int]:
        """New token ids after prompt `ids` (EOS included when it ended the output).

        Stops at an EOS id, when the decoded output contains one of `stop`, or after
        `max_new_tokens`. `on_token(id)` is called as each token is produced; timings of the
        call are in `last_stats`. Past `deadline` (a `time.perf_counter()` value) it raises
        `GenerationTimeout` between decode steps.
        """
        stops = [s for s in (stop or []) if s]

        def should_stop(tokens: list[int]) -> bool:
            text = self.tokenizer.decode(tokens)
            return any(s in text for s in stops)

        decoder: CompiledDecoder | NativeDecoder | None = self.native or self.compiled
        if isinstance(decoder, CompiledDecoder) and len(ids) + max_new_tokens > decoder.length:
            decoder = None  # past the compiled cache: this call decodes eagerly
        with _torch_threads(self.info.threads):
            tokens, self.last_stats = generate(
                self.model, list(ids), max_new_tokens, Sampling(temperature, top_p, top_k, seed),
                () if ignore_eos else self.eos_ids, should_stop if stops else None, on_token,
                step=decoder.step if decoder is not None else None, deadline=deadline)
        if decoder is not None:
            decoder.flush()
        return tokens

    def native_decode(self) -> float:
        """Decode with the C step of `native_decode.py` (CPU; GQA + routed-expert models in
        fp32, fp16 or `q8_0`). Returns the seconds spent building/loading it (the first build
        compiles C, ~1 s; later ones load the cached library); raises EngineError for models
        or machines it does not cover, leaving the engine as it was."""
        from moebench.engine.native_decode import NativeDecoder

        column_major = self.model.column_major_weights()  # the C step makes them row-major
        try:
            decoder = NativeDecoder(self.model, self.info.threads)
        except Exception:
            if column_major:
                self.model.use_column_major_weights()
            raise
        self.compiled, self.native = None, decoder
        return decoder.build_s

    def compile_decode(self, length: int = 1024) -> float:
        """Use a `torch.compile`d decode step for generations up to `length` tokens in all.

        Needs a C compiler on CPU (inductor). Returns the compile time in seconds; raises
        EngineError for layer types the compiled step does not cover. When compiling fails
        (those, or inductor's own errors, re-raised) the engine is left as it was: eager, its
        weights in the layout they had (column-major again for fp32 on CPU).
        """
        import shutil

        if self.model.tok_embeddings.weight.device.type == "cpu" and not (
                shutil.which("cc") or shutil.which("gcc")):
            raise EngineError("compiled decode needs a C compiler (cc/gcc) on PATH — "
                              "install one or keep the eager engine")
        self.compiled = self.native = None
        column_major = self.model.column_major_weights()  # the decoder makes them row-major
        try:
            decoder = CompiledDecoder(self.model, length)
            with _torch_threads(self.info.threads):  # inductor fixes its OpenMP width at compile
                seconds = decoder.warm_up()
        except Exception:
            if column_major:  # the eager layout this engine had
                self.model.use_column_major_weights()
            raise
        self.compiled = decoder
        return seconds

    def router_stats(self) -> RouterCounts:
        """Tokens routed to each expert, per layer, prefill and decode apart, since the last reset."""
        return self.model.stats.snapshot()

    def reset_router_stats(self) -> None:
        """Zero the router counters."""
        self.model.stats.reset()


def load_checkpoint(path: str | Path, dtype: str = "float32", device: str = "cpu", *,
                    available_bytes: int | None = None, threads: int | None = None) -> Engine:
    """Load an HF-format MoE checkpoint folder (config.json + *.safetensors + tokenizer.json);
    `loader.load_model` takes GGUF files too. Arguments as there."""
    start = time.perf_counter()
    folder = resolve_folder(path)
    torch_dtype, torch_device = _dtype(dtype), _device(device)
    cfg = read_config_json(folder)
    family = get_family(cfg.get("model_type"))
    args = _read_args(family, cfg, folder)
    check_sizes(args)  # price the config before building or reading anything
    check_memory(int(count_params(args)[0] * torch_dtype.itemsize * MEMORY_MARGIN),
                 torch_device, available_bytes, folder.name, dtype)
    ckpt = Checkpoint(folder, torch_dtype, torch_device)
    needed = int(ckpt.numel() * torch_dtype.itemsize * MEMORY_MARGIN)
    check_memory(needed, torch_device, available_bytes, folder.name, dtype)
    tokenizer = Tokenizer.from_folder(folder)
    return build_engine(args, family.load_weights, ckpt, tokenizer, folder,
                        _eos_ids(args, folder, tokenizer), dtype, threads, start)


def is_gguf_file(path: Path) -> bool:
    """Whether `path` is a file starting with the GGUF magic (Ollama blobs have no suffix)."""
    try:
        with path.open("rb") as handle:
            return path.is_file() and handle.read(4) == b"GGUF"
    except OSError:
        return False


def build_engine(args: ModelArgs, load_weights: Callable[[ModelArgs, Checkpoint], Any],
                 ckpt: Checkpoint, tokenizer: Tokenizer, source: Path, eos: Sequence[int],
                 dtype: str, threads: int | None, start: float, **facts: Any) -> Engine:
    """Build the model on `meta`, assign the weights `load_weights` reads from `ckpt`, describe it.

    `facts` are extra EngineInfo fields (the GGUF file's format, quantisation, bits per weight).
    """
    torch_dtype, torch_device = ckpt.dtype, ckpt.device
    with torch.device("meta"), _no_init():
        model = Transformer(args)
    _assign(model, load_weights(args, ckpt), source)
    model.requires_grad_(False).eval()
    if torch_dtype == torch.float32 and torch_device.type == "cpu":
        model.use_column_major_weights()
    total, active = count_params(args)
    if threads is None:
        small = model.active_bytes_per_token() < SMALL_MODEL_BYTES
        threads = 1 if small and torch_device.type == "cpu" else 0
    info = EngineInfo(
        family=args.family, layers=args.n_layers,
        moe_layers=sum(args.is_moe_layer(i) for i in range(args.n_layers)),
        experts=args.moe.n_experts, top_k=args.moe.top_k, shared_experts=args.moe.n_shared,
        total_params=total, active_params=active, vocab_size=args.vocab_size,
        context_length=args.max_seq_len, dtype=dtype, device=str(torch_device),
        weight_bytes=model.weight_bytes(), load_s=time.perf_counter() - start, threads=threads,
        **facts)
    return Engine(model, tokenizer, info, eos, source)


def _read_args(family: Any, cfg: dict[str, Any], folder: Path) -> ModelArgs:
    try:
        return family.read_config(cfg)
    except (TypeError, ValueError, KeyError, IndexError, OverflowError, ZeroDivisionError) as error:
        raise EngineError(f"{folder / 'config.json'} has a value of the wrong type or size "
                          f"({type(error).__name__}: {error}) — is it corrupt?") from None


_INIT_FUNCTIONS = ("normal_", "uniform_", "kaiming_uniform_", "xavier_uniform_", "trunc_normal_",
                   "zeros_", "ones_", "constant_")


@contextmanager
def _no_init() -> Iterator[None]:
    """Skip `nn.init` while building: the checkpoint supplies every weight, and random init on
    the meta device imports torch._dynamo (~1 s), which would land in the first model's load time."""
    saved = {name: getattr(nn.init, name) for name in _INIT_FUNCTIONS}
    try:
        for name in _INIT_FUNCTIONS:
            setattr(nn.init, name, _keep)
        yield
    finally:
        for name, fn in saved.items():
            setattr(nn.init, name, fn)


def _keep(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return tensor


def resolve_folder(path: str | Path) -> Path:
    """The checkpoint folder: `path` itself, or the snapshot of a Hub cache folder."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise EngineError(f"checkpoint folder {folder} does not exist — give a folder with "
                          "config.json, *.safetensors and tokenizer.json")
    if (folder / "config.json").is_file():
        return folder
    snapshots = folder / "snapshots"
    if snapshots.is_dir():  # models--org--name/ → snapshots/<refs/main or newest>/
        ref = folder / "refs" / "main"
        if ref.is_file() and (snapshots / ref.read_text().strip() / "config.json").is_file():
            return snapshots / ref.read_text().strip()
        found = sorted((d for d in snapshots.iterdir() if (d / "config.json").is_file()),
                       key=lambda d: d.stat().st_mtime)
        if found:
            return found[-1]
    raise EngineError(f"{folder} has no config.json — point at a Hugging Face checkpoint folder "
                      "(or a Hub cache models--org--name folder)")


def check_memory(needed: int, device: torch.device, available: int | None, name: str,
                 dtype: str) -> None:
    """Raise OutOfMemoryRisk when `needed` bytes exceed the free memory of `device`."""
    if available is None:
        if device.type == "cuda":
            available = torch.cuda.mem_get_info(device)[0]
        else:
            import psutil

            available = psutil.virtual_memory().available
    if needed > available:
        hint = " or dtype=bfloat16" if dtype == "float32" else ""
        raise OutOfMemoryRisk(
            f"loading {name} needs ~{needed / GIB:.2f} GiB in {dtype} but only "
            f"{available / GIB:.2f} GiB of {device.type} memory is free — free memory{hint}, "
            "or pick a smaller model")


def _assign(model: Transformer, state: dict[str, torch.Tensor], folder: Path) -> None:
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:  # a family weight map out of step with model.py: a bug
        raise EngineError(f"weights of {folder} map incompletely (missing {missing[:3]}, "
                          f"unexpected {unexpected[:3]}) — report this engine bug")
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[-1].strip()
        raise EngineError(f"{folder}: {first} — config.json does not match the weights") from None


def _eos_ids(args: ModelArgs, folder: Path, tokenizer: Tokenizer) -> tuple[int, ...]:
    """EOS ids from config.json, generation_config.json and the tokenizer, merged."""
    ids = list(args.eos_ids)
    gen = folder / "generation_config.json"
    if gen.is_file():
        try:
            value = json.loads(gen.read_text(encoding="utf-8")).get("eos_token_id")
        except (OSError, ValueError):
            value = None
        ids += value if isinstance(value, list) else [value] if isinstance(value, int) else []
    ids += tokenizer.eos_ids()
    return tuple(dict.fromkeys(int(i) for i in ids))


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run the block with `n` torch threads (n ≤ 0: unchanged), restoring the setting after."""
    if n <= 0 or n == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise EngineError(f"dtype '{name}' is not supported — use one of: {', '.join(DTYPES)}")
    return DTYPES[name]


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise EngineError(f"device '{name}' is not supported — use cpu, cuda or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineError("device 'cuda' requested but no CUDA GPU is visible — use device=cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise EngineError("device 'mps' requested but MPS is not available — use device=cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise EngineError(f"device '{name}' is not supported — use cpu, cuda or mps")
    return device
