"""Safetensors checkpoints: find the files, read tensors memory-mapped, cast once, fuse.

`Checkpoint` indexes every tensor of a (possibly sharded) checkpoint — via
`model.safetensors.index.json` when present, else every `*.safetensors` file — without reading
data. Tensors are read one at a time and copied straight into their final dtype/device (into a
preallocated fused or stacked tensor where the engine fuses weights), so peak memory is the
model plus one tensor. Families use `get`, `fuse` and `stack_experts` in their weight maps.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import Tensor

from moebench.errors import EngineError, OutOfMemoryRisk

INDEX_FILE = "model.safetensors.index.json"

_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
                "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


def weight_files(folder: Path) -> list[Path]:
    """The checkpoint's safetensors files (from the index when sharded)."""
    index = folder / INDEX_FILE
    if index.is_file():
        try:
            mapping = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError) as error:
            raise EngineError(f"{index} is unreadable ({error}) — re-download the checkpoint") from None
        files = [folder / name for name in sorted(set(mapping.values()))]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise EngineError(f"{folder} lacks shard {missing[0]} named in {INDEX_FILE} — "
                              "finish downloading the checkpoint")
        return files
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise EngineError(f"{folder} has no *.safetensors weights — the engine reads safetensors "
                          "checkpoints only (convert .bin/.pt with transformers' save_pretrained)")
    return files


def _open(file: Path) -> Any:
    """A safetensors handle; a truncated or garbage file is an EngineError naming it."""
    try:
        return safe_open(str(file), framework="pt")
    except Exception as error:  # noqa: BLE001 - safetensors raises its own SafetensorError
        message = " ".join(str(error).split())
        if "allocate memory" in message or "unable to mmap" in message:
            raise OutOfMemoryRisk(f"{file}: {message[:200]} — free memory or pick a smaller "
                                  "model") from None
        raise EngineError(f"{file} is not a readable safetensors file ({message[:160]}) — "
                          "re-download the checkpoint") from None


class Checkpoint:
    """Lazy, name-indexed access to the tensors of a safetensors checkpoint."""

    def __init__(self, folder: Path, dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu") -> None:
        self.folder, self.dtype, self.device = folder, dtype, torch.device(device)
        self.files = weight_files(folder)
        self._handles = [_open(f) for f in self.files]
        self._where: dict[str, Any] = {}
        for handle in self._handles:
            for name in handle.keys():
                self._where[name] = handle
        self.used: set[str] = set()

    def __contains__(self, name: str) -> bool:
        return name in self._where

    def names(self) -> list[str]:
        """Every tensor name in the checkpoint."""
        return list(self._where)

    def shape(self, name: str) -> list[int]:
        """A tensor's stored shape, read from the header only."""
        return list(self._handle(name).get_slice(name).get_shape())

    def stored_bytes(self) -> int:
        """Bytes of all tensors as stored on disk."""
        return sum(math.prod(self.shape(n)) * _DTYPE_BYTES.get(self._dtype(n), 4) for n in self._where)

    def numel(self) -> int:
        """Number of values across all tensors (MXFP4 `*_blocks` pack two values per byte)."""
        return sum(math.prod(self.shape(n)) * (2 if n.endswith("_blocks") else 1) for n in self._where)

    def get(self, name: str) -> Tensor:
        """Tensor `name` in the engine's dtype and device."""
        tensor = self._handle(name).get_tensor(name)
        self.used.add(name)
        return tensor.to(device=self.device, dtype=self.dtype)

    def raw(self, name: str) -> Tensor:
        """Tensor `name` as stored, dtype and device untouched (e.g. packed MXFP4 blocks)."""
        tensor = self._handle(name).get_tensor(name)
        self.used.add(name)
        return tensor

    def copy_into(self, out: Tensor, name: str, transform: Any = None) -> None:
        """Read `name` (optionally reshaped by `transform`) into the preallocated `out`."""
        tensor = self._handle(name).get_tensor(name)
        self.used.add(name)
        if transform is not None:
            tensor = transform(tensor)
        if tuple(tensor.shape) != tuple(out.shape):
            raise EngineError(f"tensor {name} has shape {list(tensor.shape)} but config.json implies "
                              f"{list(out.shape)} — config.json does not match the weights")
        out.copy_(tensor)  # casts and moves in one step

    def fuse(self, names: Sequence[str], dim: int = 0) -> Tensor:
        """Concatenate tensors along `dim` (e.g. q|k|v, gate|up) with one allocation."""
        shapes = [self.shape(n) for n in names]
        sizes = [s[dim] for s in shapes]
        shape = list(shapes[0])
        shape[dim] = sum(sizes)
        out = torch.empty(shape, dtype=self.dtype, device=self.device)
        for name, part in zip(names, out.split(sizes, dim=dim)):
            self.copy_into(part, name)
        return out

    def stack_experts(self, templates: Sequence[str], n_experts: int) -> Tensor:
        """`[E, rows, cols]` from per-expert tensors; several templates are fused along rows.

        Each template names one expert's tensor with `{e}`, e.g. `...experts.{e}.w1.weight`.
        """
        first = [self.shape(t.format(e=0)) for t in templates]
        rows = [s[0] for s in first]
        out = torch.empty(n_experts, sum(rows), first[0][1], dtype=self.dtype, device=self.device)
        for e in range(n_experts):
            for template, part in zip(templates, out[e].split(rows, dim=0)):
                self.copy_into(part, template.format(e=e))
        return out

    def unused(self) -> list[str]:
        """Tensors no weight map has read (a family map that misses some is a bug)."""
        return sorted(set(self._where) - self.used)

    def _handle(self, name: str) -> Any:
        handle = self._where.get(name)
        if handle is None:
            raise EngineError(f"checkpoint {self.folder} lacks tensor '{name}' — is it complete and "
                              "of the family config.json names?")
        return handle

    def _dtype(self, name: str) -> str:
        return str(self._handle(name).get_slice(name).get_dtype())
