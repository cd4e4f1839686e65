"""One GGUF file, memory-mapped: metadata, tensors, dequantising with gguf-py's `gguf.quants`.

`GGUFFile` gives the metadata as plain Python values (`meta`, `arch_value`), the tensor index
(names, numpy-order shapes, GGML types) and `array(name, expert)`, which dequantises one
tensor — or one expert's slice of a stacked `[E, rows, cols]` tensor — to float32 with
`gguf.quants` (F32, F16, BF16, Q4_0…Q8_0, Q2_K…Q6_K, MXFP4, …). Nothing is read until asked.
It also describes the file: type mix, bits per weight, the `general.file_type` name (Q4_K_M).
`gguf` is imported here only (≈0.3 s), when a GGUF model is loaded.

The header is parsed here rather than by `gguf.GGUFReader`, which builds a numpy view per
array element: on a 150k-token vocabulary it took 80 s (this parser: well under a second);
tensor data stays a `numpy.memmap` exactly as GGUFReader would map it.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moebench.errors import EngineError


@dataclass(frozen=True)
class TensorInfo:
    """One tensor: GGML type, numpy-order shape, sizes, and its memory-mapped stored data."""

    name: str
    tensor_type: Any  # gguf.GGMLQuantizationType
    shape: tuple[int, ...]
    n_elements: int
    n_bytes: int
    data: np.ndarray


class GGUFFile:
    """Metadata and lazily dequantised tensors of a GGUF file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.meta, self.tensors = _parse(path)
        except (ValueError, OSError, IndexError, struct.error, KeyError) as error:
            raise EngineError(f"{path} is not a readable GGUF file ({error}) — re-download it "
                              "(ollama pull) or convert it again") from None
        arch = self.meta.get("general.architecture")
        if not isinstance(arch, str):
            raise EngineError(f"{path} has no general.architecture — not a model GGUF file")
        self.arch = arch

    def arch_value(self, key: str, default: Any = None) -> Any:
        """`<arch>.<key>` (e.g. `expert_count`), or `default`."""
        return self.meta.get(f"{self.arch}.{key}", default)

    def shape(self, name: str) -> tuple[int, ...]:
        """The tensor's logical shape in numpy (row-major) order, e.g. `[E, I, H]` for experts."""
        return self.tensors[name].shape

    def type_name(self, name: str) -> str:
        """GGML type of a tensor (`Q4_K`, `F32`, …)."""
        return self.tensors[name].tensor_type.name

    def array(self, name: str, expert: int | None = None) -> np.ndarray:
        """Tensor `name` (or slice `expert` of its first axis) as a float32 array, numpy order."""
        from gguf import GGMLQuantizationType, quants

        tensor = self.tensors[name]
        data = tensor.data if expert is None else tensor.data[expert]
        qtype = tensor.tensor_type
        try:
            if qtype in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
                values = np.asarray(data).astype(np.float32, copy=True)
            else:
                values = quants.dequantize(np.asarray(data), qtype)
        except NotImplementedError:
            raise EngineError(f"{self.path.name}: tensor {name} is {qtype.name}, which gguf-py "
                              "cannot dequantise — upgrade the gguf package or re-quantise") from None
        shape = self.shape(name)
        return values.reshape(shape if expert is None else shape[1:])

    def numel(self) -> int:
        """Number of values across all tensors."""
        return sum(int(t.n_elements) for t in self.tensors.values())

    def stored_bytes(self) -> int:
        """Bytes of all tensors as stored (quantised)."""
        return sum(int(t.n_bytes) for t in self.tensors.values())

    def type_mix(self) -> dict[str, float]:
        """Share of the weights (by count) held in each GGML type, largest first."""
        counts: Counter[str] = Counter()
        for tensor in self.tensors.values():
            counts[tensor.tensor_type.name] += int(tensor.n_elements)
        total = sum(counts.values()) or 1
        return {name: n / total for name, n in counts.most_common()}

    def bits_per_weight(self) -> float:
        """Average stored bits per weight over all tensors."""
        return 8 * self.stored_bytes() / max(self.numel(), 1)

    def file_type(self) -> str:
        """`general.file_type` as llama.cpp names it (`Q4_K_M`), else the dominant tensor type."""
        from gguf import LlamaFileType

        value = self.meta.get("general.file_type")
        try:
            name = LlamaFileType(int(value)).name if value is not None else ""
        except ValueError:
            name = ""
        if name.startswith("MOSTLY_"):
            return name.removeprefix("MOSTLY_")
        if name == "ALL_F32":
            return "F32"
        mix = self.type_mix()
        return next(iter(mix)) if mix else "unknown"


#: GGUF metadata value types → struct format (8: string, 9: array)
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
            11: "<q", 12: "<d"}
_NUMPY = {0: np.uint8, 1: np.int8, 2: np.uint16, 3: np.int16, 4: np.uint32, 5: np.int32,
          6: np.float32, 7: np.bool_, 10: np.uint64, 11: np.int64, 12: np.float64}


class _Cursor:
    """Reads GGUF's little-endian values from a memory-mapped buffer."""

    def __init__(self, buffer: np.ndarray) -> None:
        self.buf, self.pos = memoryview(buffer), 0

    def unpack(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        n = self.unpack("<Q")
        self.pos += n
        return str(self.buf[self.pos - n:self.pos], "utf-8", errors="replace")

    def value(self, kind: int) -> Any:
        if kind == 8:
            return self.string()
        if kind != 9:
            return self.unpack(_SCALARS[kind])
        item, count = self.unpack("<I"), self.unpack("<Q")
        if item in _NUMPY:  # numeric arrays in one read
            dtype = np.dtype(_NUMPY[item]).newbyteorder("<")
            values = np.frombuffer(self.buf, dtype, count, self.pos)
            self.pos += count * dtype.itemsize
            return values.tolist()
        return [self.value(item) for _ in range(count)]


def _parse(path: Path) -> tuple[dict[str, Any], dict[str, TensorInfo]]:
    """(metadata, tensors) of a GGUF v2/v3 file; tensor data as memory-mapped arrays."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    data = np.memmap(path, mode="r")
    cur = _Cursor(data)
    if bytes(cur.buf[:4]) != b"GGUF":
        raise ValueError("no GGUF magic")
    cur.pos = 4
    version, n_tensors, n_kv = cur.unpack("<I"), cur.unpack("<Q"), cur.unpack("<Q")
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version} (big-endian or v1 files are not supported)")
    meta: dict[str, Any] = {}
    for _ in range(n_kv):
        key = cur.string()
        meta[key] = cur.value(cur.unpack("<I"))
    infos = []
    for _ in range(n_tensors):
        name, dims = cur.string(), cur.unpack("<I")
        ne = [cur.unpack("<Q") for _ in range(dims)]
        infos.append((name, ne, GGMLQuantizationType(cur.unpack("<I")), cur.unpack("<Q")))
    align = int(meta.get("general.alignment", 32))
    start = -(-cur.pos // align) * align
    tensors = {}
    for name, ne, kind, offset in infos:
        block, size = GGML_QUANT_SIZES[kind]
        shape = tuple(int(n) for n in reversed(ne))
        count = int(np.prod(ne, dtype=np.int64))
        n_bytes = count * size // block
        raw = data[start + offset:start + offset + n_bytes]
        if kind == GGMLQuantizationType.F32:
            stored = raw.view(np.float32).reshape(shape)
        elif kind == GGMLQuantizationType.F16:
            stored = raw.view(np.float16).reshape(shape)
        else:  # quantised (and BF16): rows of bytes, as gguf.quants expects them
            stored = raw.reshape(*shape[:-1], shape[-1] // block * size)
        tensors[name] = TensorInfo(name, kind, shape, count, n_bytes, stored)
    return meta, tensors
