"""Weights copied into huge-page memory: same values and layout, torch still owns the math."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from moebench.engine import hugepages

pytestmark = pytest.mark.skipif(not hugepages.enabled(), reason="no MADV_HUGEPAGE on this OS")


def test_huge_copy_keeps_values_and_strides_on_a_2_mib_boundary() -> None:
    t = torch.randn(1024, 1024).t()  # 4 MiB, column-major
    copy = hugepages.huge_copy(t)
    assert copy is not None
    assert torch.equal(copy, t) and copy.stride() == t.stride()
    assert copy.untyped_storage().data_ptr() % hugepages.HUGE_PAGE == 0
    copy[0, 0] = 7.0  # writable, and its own memory
    assert t[0, 0] != 7.0


def test_huge_copy_can_change_the_layout() -> None:
    t = torch.randn(3, 512, 1024)
    stride = hugepages.column_major_stride(t.shape)
    copy = hugepages.huge_copy(t, stride)
    assert copy is not None and copy.stride() == stride == (512 * 1024, 1, 512)
    assert torch.equal(copy, t)


def test_small_sparse_or_switched_off_tensors_are_left_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert hugepages.huge_copy(torch.randn(16, 16)) is None  # under one huge page
    assert hugepages.huge_copy(torch.randn(2048, 2048)[:, ::2]) is None  # not dense
    monkeypatch.setenv("MOEBENCH_HUGE_PAGES", "off")
    assert hugepages.huge_copy(torch.randn(1024, 1024)) is None


def test_adopt_moves_large_weights_once_and_keeps_ties() -> None:
    model = nn.Sequential(nn.Embedding(4096, 256), nn.Linear(256, 4096, bias=False))
    model[1].weight = model[0].weight  # tied, as an LM head often is
    model.register_buffer("scales", torch.randn(1024, 1024))
    before = {n: p.clone() for n, p in model.state_dict().items()}
    moved = hugepages.adopt(model)
    assert moved == 4096 * 256 * 4 + 1024 * 1024 * 4  # the tied matrix counted once
    assert model[1].weight is model[0].weight
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
        assert value.untyped_storage().data_ptr() % hugepages.HUGE_PAGE == 0
    assert hugepages.adopt(model) == 0  # already there
