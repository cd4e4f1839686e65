"""Weights in transparent huge pages (Linux): fewer TLB misses while decode streams them.

Batch-1 decode reads every active weight once per token, hundreds of MB per token on a real
MoE, straight through. With 4 KiB pages each 4 KiB of that stream needs its own address
translation; on the 2-core EPYC measured here a column-major fp32 GEMV ran at 15.8–16.2 GB/s
from ordinary memory and 18.9–19.7 GB/s from 2 MiB pages (same process, same matrices) — the
page walks were costing a fifth of the bandwidth. llama.cpp gets the same effect from the page
cache of its memory-mapped file.

PyTorch's CPU allocator only asks for huge pages when `THP_MEM_ALLOC_ENABLE=1` is set before
torch is imported, which a library cannot rely on; so every weight of 2 MiB or more is copied
once into an anonymous mapping advised `MADV_HUGEPAGE` (2 MiB-aligned, before first touch) and
the tensor is re-pointed at it. Where the OS lacks `madvise` or refuses, weights stay as they
are: this changes speed only, never numbers. `MOEBENCH_HUGE_PAGES=off` turns it off.
"""

from __future__ import annotations

import ctypes
import mmap
import os

import torch
from torch import Tensor, nn

HUGE_PAGE = 2 << 20
#: smaller tensors gain nothing (less than one huge page to translate)
MIN_BYTES = HUGE_PAGE


def enabled() -> bool:
    """Whether weights go into huge pages here (Linux madvise, not switched off)."""
    return (hasattr(mmap, "MADV_HUGEPAGE")
            and os.environ.get("MOEBENCH_HUGE_PAGES", "").lower() not in ("off", "0", "no"))


def huge_copy(t: Tensor, stride: tuple[int, ...] | None = None) -> Tensor | None:
    """A copy of CPU tensor `t` in huge-page memory with `stride` (default: `t`'s own; any
    dense layout of its shape), or None when `t` is small, not dense, not on the CPU, or the
    mapping cannot be made."""
    if (t.device.type != "cpu" or t.nbytes < MIN_BYTES or not _dense(t)
            or not enabled()):
        return None
    try:
        # private: a shared anonymous map is shmem, which has its own (usually off) THP switch
        buf = mmap.mmap(-1, t.nbytes + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        address = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        buf.madvise(mmap.MADV_HUGEPAGE)
    except (OSError, ValueError):
        return None
    offset = -address % HUGE_PAGE
    flat = torch.frombuffer(buf, dtype=t.dtype, count=t.numel(), offset=offset)  # keeps buf alive
    out = flat.as_strided(t.shape, stride or t.stride())
    out.copy_(t)
    return out


def column_major_stride(shape: torch.Size) -> tuple[int, ...]:
    """Strides of a dense `shape` whose last two dimensions are stored transposed."""
    return torch.empty(shape, device="meta").transpose(-1, -2).contiguous().transpose(
        -1, -2).stride()


@torch.no_grad()
def adopt(module: nn.Module) -> int:
    """Move `module`'s large parameters and buffers into huge pages, one tensor at a time
    (peak memory: one extra tensor); shared tensors move once. Returns the bytes moved."""
    moved: dict[int, Tensor] = {}
    total = 0
    for sub in module.modules():
        for table in (sub._parameters, sub._buffers):
            for name, tensor in table.items():
                if tensor is None or is_huge(tensor):
                    continue
                key = tensor.data_ptr()
                if key not in moved:
                    copy = huge_copy(tensor.data)
                    if copy is None:
                        continue
                    moved[key] = copy
                    total += copy.nbytes
                if isinstance(tensor, nn.Parameter):
                    tensor.data = moved[key]
                else:
                    table[name] = moved[key]
    return total


def is_huge(t: Tensor) -> bool:
    """Already moved: its storage starts on a 2 MiB boundary, as `huge_copy`'s do (a torch
    allocation that happens to start on one is left alone, which costs speed only)."""
    return t.untyped_storage().data_ptr() % HUGE_PAGE == 0 and t.nbytes >= MIN_BYTES


def _dense(t: Tensor) -> bool:
    """Whether `t`'s elements fill its storage span exactly once, in some dimension order."""
    expected = 1
    for stride, size in sorted((st, n) for n, st in zip(t.shape, t.stride()) if n != 1):
        if stride != expected:
            return False
        expected *= size
    return True
