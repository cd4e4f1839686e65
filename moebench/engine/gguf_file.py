"""One GGUF file opened memory-mapped with gguf-py's `GGUFReader`: metadata, tensors, dequantising.

`GGUFFile` gives the metadata as plain Python values (`meta`, `arch_value`), the tensor index
(names, numpy-order shapes, GGML types) and `array(name, expert)`, which dequantises one
tensor — or one expert's slice of a stacked `[E, rows, cols]` tensor — to float32 with
`gguf.quants` (F32, F16, BF16, Q4_0…Q8_0, Q2_K…Q6_K, MXFP4, …). Nothing is read until asked.
It also describes the file: type mix, bits per weight, the `general.file_type` name (Q4_K_M).
`gguf` is imported here only (≈0.3 s), when a GGUF model is loaded.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from moebench.errors import EngineError


class GGUFFile:
    """Metadata and lazily dequantised tensors of a GGUF file."""

    def __init__(self, path: Path) -> None:
        from gguf import GGUFReader

        self.path = path
        try:
            self.reader = GGUFReader(path, "r")
        except (ValueError, OSError, IndexError) as error:
            raise EngineError(f"{path} is not a readable GGUF file ({error}) — re-download it "
                              "(ollama pull) or convert it again") from None
        self.meta: dict[str, Any] = {name: _value(field) for name, field in self.reader.fields.items()
                                     if not name.startswith("GGUF.")}
        self.tensors = {t.name: t for t in self.reader.tensors}
        arch = self.meta.get("general.architecture")
        if not isinstance(arch, str):
            raise EngineError(f"{path} has no general.architecture — not a model GGUF file")
        self.arch = arch

    def arch_value(self, key: str, default: Any = None) -> Any:
        """`<arch>.<key>` (e.g. `expert_count`), or `default`."""
        return self.meta.get(f"{self.arch}.{key}", default)

    def shape(self, name: str) -> tuple[int, ...]:
        """The tensor's logical shape in numpy (row-major) order, e.g. `[E, I, H]` for experts."""
        return tuple(int(n) for n in reversed(self.tensors[name].shape.tolist()))

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


def _value(field: Any) -> Any:
    """A metadata field as a Python value (str, int, float, bool or list)."""
    value = field.contents()
    if isinstance(value, np.generic):
        return value.item()
    return value
