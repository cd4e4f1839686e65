"""Optional native decode step: the batch-1 decode of a GQA + top-k MoE model run by C code.

`native/decode.c` holds the step (norms, fused QKV, RoPE, the KV cache write, attention,
router, the k chosen SwiGLU experts, LM head); this module builds it with the system C
compiler once per source/CPU (cached under `~/.cache/moebench/native/`), loads it with
ctypes, and points its structs at the torch model's own tensors: weights, KV caches (the
eager prefill writes them, the step reads and appends) and RoPE tables. Why: eager PyTorch
costs ~2.4 ms of per-op work per token on a small MoE and runs f16 and int8 GEMVs
compute-bound on CPU, while the C step streams every weight row once with SIMD dot products
(f32, f16 via F16C, Q8_0 × Q8_0-activation int8 dots, as llama.cpp does).

Covers plain GQA attention (rotate-half RoPE, optional QKV bias and clipping: Mixtral, DBRX,
Granite-MoE without multipliers) with routed SwiGLU experts (softmax → top-k, renormalised or
not) in every layer, RMSNorm or bias-free LayerNorm, fp32 or fp16 weights, or Q8_0 experts
(`quant="q8_0"`, whose attention and LM head are then read as Q8_0 blocks too, exactly
the blocks a Q8_0 GGUF holds). Anything else raises EngineError naming why; the engine then
stays eager. Router counts are accumulated in C and flushed into `RouterStats` after each
generation, as `compiled.CompiledDecoder` does.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from ctypes import POINTER, c_float, c_int32, c_int64, c_void_p
from pathlib import Path

import torch
from torch import Tensor, nn

from moebench.engine import hugepages
from moebench.engine.attention import Attention
from moebench.engine.config import ModelArgs
from moebench.engine.int8 import BLOCK, Int8Experts, q8_0_blocks
from moebench.engine.model import Transformer
from moebench.engine.moe import Experts, MoEFeedForward
from moebench.errors import EngineError

SOURCE = Path(__file__).with_name("native") / "decode.c"
FLAGS = ["-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c11"]
T_F32, T_F16, T_Q8 = 0, 1, 2
#: router kind → whether the k weights are renormalised to sum 1 (DBRX's p-norm with p = 1 is
#: that renormalisation; `_renorm` reads it; Granite's softmax over the top-k logits equals the
#: renormalised softmax of those k)
ROUTERS = {"softmax_topk_renorm": 1, "softmax_topk": 0, "softmax_topk_pnorm": 1,
           "topk_softmax": 1}


class Mat(ctypes.Structure):
    _fields_ = [("w", c_void_p), ("s", c_void_p), ("bias", c_void_p), ("type", c_int32),
                ("rows", c_int32), ("cols", c_int32), ("pad", c_int32)]


class Layer(ctypes.Structure):
    _fields_ = [("attn_norm", c_void_p), ("ffn_norm", c_void_p), ("wqkv", Mat), ("wo", Mat),
                ("router", Mat), ("w13", Mat), ("w2", Mat), ("k", c_void_p), ("v", c_void_p)]


_INTS = ("dim", "n_layers", "n_heads", "n_kv", "head_dim", "n_experts", "top_k", "ffn_dim",
         "vocab", "cache_len", "cache_f16", "renorm", "threads", "layer_norm")


class Model(ctypes.Structure):
    _fields_ = [*((name, c_int32) for name in _INTS), ("eps", c_float), ("attn_scale", c_float),
                ("clip", c_float), ("pad", c_float), ("embed", Mat), ("output", Mat),
                ("final_norm", c_void_p), ("layers", POINTER(Layer)), ("work", c_void_p),
                ("qwork", c_void_p), ("counts", c_void_p)]


_library: ctypes.CDLL | None = None


def library() -> tuple[ctypes.CDLL, float]:
    """The built step (compiled on first use, then cached) and the seconds this call took."""
    global _library
    start = time.perf_counter()
    if _library is None:
        _library = ctypes.CDLL(str(_build()))
        _library.moe_work_floats.restype = c_int64
        _library.moe_work_floats.argtypes = [POINTER(Model)]
        _library.moe_decode_step.restype = None
        _library.moe_decode_step.argtypes = [POINTER(Model), c_int64, c_int32, c_void_p,
                                             c_void_p, c_void_p]
    return _library, time.perf_counter() - start


def _build() -> Path:
    """The shared library for this source, compiler and CPU, compiling it if not cached."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise EngineError("the native decode step needs a C compiler (cc/gcc) on PATH — "
                          "install one or keep the eager engine")
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join(FLAGS).encode() + _cpu_flags()
                         + compiler.encode()).hexdigest()[:16]
    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "moebench/native"
    target = folder / f"decode-{key}.so"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
    os.close(fd)
    done = subprocess.run([compiler, *FLAGS, "-o", tmp, str(SOURCE), "-lm"],
                          capture_output=True, text=True)
    if done.returncode:
        os.unlink(tmp)
        first = (done.stderr.strip().splitlines() or ["no output"])[0][:200]
        raise EngineError(f"building the native decode step failed ({first}) — keep the "
                          "eager engine")
    os.replace(tmp, target)  # atomic: another process may be building the same file
    return target


def _cpu_flags() -> bytes:
    """What -march=native depends on: a cached build must not move to another CPU."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return os.uname().machine.encode()
    return next((line for line in text.splitlines() if line.startswith(("flags", "Features"))),
                "").encode()


def check_supported(model: Transformer) -> None:
    """EngineError naming the first thing the native step does not cover."""
    args = model.args
    device = model.tok_embeddings.weight.device
    if device.type != "cpu":
        raise EngineError(f"the native decode step runs on CPU, not {device.type}")
    dtype = model.tok_embeddings.weight.dtype
    if dtype not in (torch.float32, torch.float16):
        raise EngineError(f"the native decode step reads fp32 or fp16 weights, not {dtype}")
    if args.rope.interleaved or args.sliding_window:
        raise EngineError("the native decode step has no interleaved RoPE or sliding window")
    if args.norm not in ("rms", "layer"):
        raise EngineError(f"the native decode step has no '{args.norm}' norm")
    pnorm = args.moe.router == "softmax_topk_pnorm" and args.moe.norm_p not in (None, 1)
    if args.moe.router not in ROUTERS or pnorm or args.moe.activation != "silu":
        raise EngineError(f"the native decode step has no '{args.moe.router}' router with "
                          f"'{args.moe.activation}' experts — routers: {', '.join(ROUTERS)}")
    for i, block in enumerate(model.layers):
        _check_block(i, block)


def _check_block(i: int, block: nn.Module) -> None:
    attention, ffn = block.attention, block.ffn
    if type(attention) is not Attention or attention.wo.bias is not None:
        raise EngineError(f"layer {i}: the native decode step covers plain GQA attention "
                          f"only, not {type(attention).__name__} with these options")
    if not isinstance(ffn, MoEFeedForward) or type(ffn) is not MoEFeedForward:
        raise EngineError(f"layer {i}: the native decode step needs routed experts in every "
                          f"layer, not {type(ffn).__name__}")
    if ffn.shared is not None:
        raise EngineError(f"layer {i}: the native decode step has no shared experts")
    experts = ffn.experts
    if type(experts) is not Experts and not (isinstance(experts, Int8Experts)
                                             and experts.mode == "q8_0"):
        raise EngineError(f"layer {i}: the native decode step reads float or q8_0 experts, "
                          f"not {getattr(experts, 'mode', type(experts).__name__)}")


def _renorm(args: ModelArgs) -> int:
    if args.moe.router == "softmax_topk_pnorm":
        return int(args.moe.norm_p is not None)
    return ROUTERS[args.moe.router]


class NativeDecoder:
    """`step(token [1, 1], position) -> logits [1, 1, V]` through `native/decode.c`."""

    def __init__(self, model: Transformer, threads: int) -> None:
        check_supported(model)
        self.lib, self.build_s = library()
        self.model, self.threads = model, threads
        self.q8 = isinstance(model.layers[0].ffn.experts, Int8Experts)
        model.use_column_major_weights(False)  # the C step reads contiguous weight rows
        self._keep: list[Tensor] = []  # tensors the structs point into (copies made here)
        self.layers = (Layer * len(model.layers))()
        self.struct = self._model_struct()
        self.counts = torch.zeros(len(model.layers), model.args.moe.n_experts,
                                  dtype=torch.int64)
        self.logits = torch.empty(model.args.vocab_size, dtype=torch.float32)
        self.struct.counts = self.counts.data_ptr()
        self.cache_length = -1

    def step(self, token: Tensor, pos: int) -> Tensor:
        """One decode step; K/V of `token` are written at `pos` in the model's caches."""
        if self.model.cache_length != self.cache_length:
            self._bind_cache()
        row = pos * self.cos.shape[1] * 4
        self.lib.moe_decode_step(ctypes.byref(self.struct), int(token), pos,
                                 self.cos.data_ptr() + row, self.sin.data_ptr() + row,
                                 self.logits.data_ptr())
        return self.logits.view(1, 1, -1)

    def flush(self) -> None:
        """Move the router counts into the model's RouterStats (decode phase)."""
        for layer, counts in enumerate(self.counts.tolist()):
            self.model.stats.add_counts(layer, counts)
        self.counts.zero_()

    def _model_struct(self) -> Model:
        model, args = self.model, self.model.args
        first = model.layers[0].attention
        struct = Model(
            dim=args.dim, n_layers=args.n_layers, n_heads=args.n_heads, n_kv=args.n_kv_heads,
            head_dim=args.head_dim, n_experts=args.moe.n_experts, top_k=args.moe.top_k,
            ffn_dim=args.moe.ffn_dim, vocab=args.vocab_size, renorm=_renorm(args),
            threads=self.threads, layer_norm=int(args.norm == "layer"), eps=args.norm_eps,
            attn_scale=first.scale, clip=float(first.clip or 0.0))
        struct.embed = self._mat(model.tok_embeddings.weight, quantize=False)
        struct.output = self._linear(model.output)
        struct.final_norm = self._floats(model.norm.weight)
        for i, block in enumerate(model.layers):
            self.layers[i] = self._layer(block)
        struct.layers = self.layers
        return struct

    def _layer(self, block: nn.Module) -> Layer:
        attention, ffn = block.attention, block.ffn
        experts = ffn.experts
        layer = Layer(attn_norm=self._floats(block.attention_norm.weight),
                      ffn_norm=self._floats(block.ffn_norm.weight),
                      wqkv=self._linear(attention.wqkv), wo=self._linear(attention.wo),
                      router=self._mat(ffn.router.weight, quantize=False))
        if isinstance(experts, Int8Experts):
            layer.w13 = self._q8(experts.q13, experts.s13)
            layer.w2 = self._q8(experts.q2, experts.s2)
        else:
            layer.w13, layer.w2 = self._mat(experts.w13, False), self._mat(experts.w2, False)
        return layer

    def _linear(self, linear: nn.Module) -> Mat:
        weight = getattr(linear, "weight", None)
        if weight is None:
            raise EngineError(f"the native decode step reads float linear layers, not "
                              f"{type(linear).__name__}")
        mat = self._mat(weight, quantize=self.q8)
        if linear.bias is not None:
            mat.bias = self._floats(linear.bias)
        return mat

    def _mat(self, weight: Tensor, quantize: bool) -> Mat:
        """A float weight, or (q8_0 models) its Q8_0 blocks, which a Q8_0 file holds."""
        if quantize and weight.shape[-1] % BLOCK == 0:
            return self._q8(*q8_0_blocks(weight.detach()))
        data = self._hold(weight.detach())
        kind = T_F16 if data.dtype == torch.float16 else T_F32
        return Mat(w=data.data_ptr(), type=kind, rows=data.shape[-2], cols=data.shape[-1])

    def _q8(self, q: Tensor, scale: Tensor) -> Mat:
        q, scale = self._hold(q), self._hold(scale.float())
        return Mat(w=q.data_ptr(), s=scale.data_ptr(), type=T_Q8, rows=q.shape[-2],
                   cols=q.shape[-1])

    def _floats(self, t: Tensor) -> int:
        return self._hold(t.detach().float()).data_ptr()

    def _hold(self, t: Tensor) -> Tensor:
        t = t.contiguous()
        if not hugepages.is_huge(t):  # a copy made here (Q8_0 blocks, fp32 norms)
            copy = hugepages.huge_copy(t)
            t = t if copy is None else copy
        self._keep.append(t)
        return t

    def _bind_cache(self) -> None:
        """Point the structs at the (re)allocated KV caches and RoPE tables, and size the
        scratch, which holds a score per cached position."""
        model = self.model
        assert model.rotary is not None
        self.cos = model.rotary.cos.float().contiguous()
        self.sin = model.rotary.sin.float().contiguous()
        for i, block in enumerate(model.layers):
            cache = block.attention.cache
            assert cache is not None and cache.k.is_contiguous() and cache.v.is_contiguous()
            self.layers[i].k, self.layers[i].v = cache.k.data_ptr(), cache.v.data_ptr()
        self.struct.cache_len = model.cache_length
        self.struct.cache_f16 = int(model.layers[0].attention.cache.k.dtype == torch.float16)
        floats = self.lib.moe_work_floats(ctypes.byref(self.struct))
        self.work = torch.zeros(floats, dtype=torch.float32)
        self.qwork = torch.zeros(floats, dtype=torch.int8)
        self.struct.work, self.struct.qwork = self.work.data_ptr(), self.qwork.data_ptr()
        self.cache_length = model.cache_length
