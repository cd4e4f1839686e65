"""The parts of `moebench speed`: counts, prompts, cell statistics and flags, the roofline,
store rows, and what an interrupted sweep keeps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from moebench.speed.cells import Cell, Placement, Round, Sample, Stat, fastest
from moebench.speed.options import SpeedOptions, parse_counts
from moebench.speed.prompts import Fit, PromptBuilder, close_enough
from moebench.speed.roofline import (
    bits_per_weight, bound_tok_s, bytes_from_model_info, bytes_from_tensors, copy_bandwidth_cpu,
)
from moebench.speed.rows import cell_from_row, store_row
from moebench.speed.sweep import NullSpeedEvents, run_speed
from moebench.store import Store
from moebench.testing import FakeModel, OllamaStandin


def test_parse_counts() -> None:
    assert parse_counts("128, 512,128") == (128, 512)
    for bad in ("0", "-1", "1,,2", "a", "", "1.5"):
        with pytest.raises(ValueError):
            parse_counts(bad)


def test_prompts_start_with_fresh_nonces() -> None:
    builder = PromptBuilder(seed=1)
    texts = [builder.text(10) for _ in range(500)]
    nonces = [t.split()[0] for t in texts]
    assert len(set(nonces)) == 500 and all(n.isdigit() and len(n) == 6 for n in nonces)
    assert len(texts[0].split()) == 1 + 10 + 9  # nonce, filler, the instruction's 9 words
    fit = Fit.through(20, 84)  # 1 token per word, 20 tokens of overhead
    assert fit.words_for(128) == 108 and fit.words_for(5) == 0
    assert fit.refine(108, 128, 126) == 110
    assert close_enough(129, 128) and not close_enough(140, 128)


def _cell(tg: list[float], share: float | None = 1.0, out: int = 16,
          others: tuple[str, ...] = (), server: bool = True) -> Cell:
    samples = tuple(Sample(0, 32, out, 1000.0, v, 0.05, "length", "server") for v in tg)
    return Cell("m", "ollama", 32, 16, 1, len(tg), samples, (Round(1.0, 16),),
                Placement(share, server, others), 1.0, 100.0)


def test_stats_and_flags() -> None:
    assert Stat.of([1.0, 2.0, 3.0, None]) == Stat(2.0, 1.0, 2.0, 3)
    clean = _cell([50.0, 51.0, 49.0])
    assert not any(clean.flags().values()) and clean.trusted
    assert clean.roofline_pct == pytest.approx(50.0)
    assert _cell([50.0, 80.0, 20.0]).flags()["high_variance"]
    assert _cell([50.0], share=0.3).flags()["partial_offload"]
    assert _cell([50.0], share=0.0).flags()["cpu_only"]
    assert not _cell([50.0], share=0.0, server=False).flags()["cpu_only"]  # the engine on CPU
    assert _cell([50.0], out=10).flags()["early_stop"]
    assert _cell([50.0], others=("x",)).flags()["other_models_resident"]
    best = fastest([_cell([90.0], share=0.5), clean], "tg_tok_s")
    assert best.cell is clean and best.left_out == 1


def test_cells_round_trip_through_the_store(tmp_path: Path) -> None:
    store = Store(tmp_path)
    run_id = store.create_run({"suites": [], "models": ["m"], "backend": "ollama",
                               "options": {"kind": "speed"}})
    cell = _cell([50.0, 52.0], share=0.45, others=("other:latest",))
    store.add_speed_cell({**store_row(cell, run_id), "position": 0})
    (row,) = store.speed_rows([run_id])
    assert row["partial_offload"] == 1 and row["resident_models"] == "other:latest"
    assert cell_from_row(row) == cell
    store.close()


def test_bits_per_weight_and_active_bytes() -> None:
    assert bits_per_weight("Q4_0") == 4.5 and bits_per_weight("Q4_K_M") == 4.5
    assert bits_per_weight("F16") == 16 and bits_per_weight("MXFP4") == 4.25
    assert bits_per_weight("nonsense") is None
    mixtral = {"general.architecture": "llama", "general.parameter_count": 46_702_792_704,
               "llama.expert_count": 8, "llama.expert_used_count": 2, "llama.block_count": 32,
               "llama.embedding_length": 4096, "llama.expert_feed_forward_length": 14336}
    active = bytes_from_model_info(mixtral, "Q4_0")
    assert active is not None and 7.2e9 < active < 7.5e9  # notes: ~12.9 B active at 4.5 bpw
    tensors = [{"name": "token_embd.weight", "type": "F16", "shape": [8, 100]},
               {"name": "output.weight", "type": "F16", "shape": [8, 100]},
               {"name": "blk.0.ffn_up_exps.weight", "type": "Q8_0", "shape": [32, 64, 4]}]
    # one embedding row (8 × 2 B) + the head (1600 B) + a quarter of the experts at 8.5 bpw
    assert bytes_from_tensors(tensors, experts=4, top_k=1) == 16 + 1600 + 2176
    assert bytes_from_tensors(tensors[:1], 4, 1) is None  # no layers listed: cannot count


def test_roofline_bound_splits_gpu_and_cpu_memory() -> None:
    assert bound_tok_s(1_000, 0.0, 50_000.0, None) == pytest.approx(50.0)
    assert bound_tok_s(1_000, 0.5, 10_000.0, 90_000.0) == pytest.approx(1 / (0.05 + 1 / 180))
    assert bound_tok_s(1_000, 0.5, 10_000.0, None) is None  # GPU bandwidth unknown
    assert copy_bandwidth_cpu() > 1e8


class _StopAfterFirstCell(NullSpeedEvents):
    def on_cell(self, cell: Cell) -> None:
        raise KeyboardInterrupt


def _interrupted_sweep(out: Path, model: FakeModel | str, events: NullSpeedEvents,
                       repeats: int) -> Any:
    """A two-cell sweep on the stand-in that `events` interrupts after its first cell."""
    with OllamaStandin(models=[model]) as server:
        options = SpeedOptions(models=("mixtral:8x7b",), backend="ollama", host=server.url,
                               prompt_tokens=(32, 64), gen_tokens=8, repeats=repeats,
                               out=out, bandwidth_gb_s=100.0)
        return run_speed(options, events)


def test_ctrl_c_keeps_finished_cells(tmp_path: Path) -> None:
    model = FakeModel("mixtral:8x7b", prompt_tok_s=4000.0, gen_tok_s=400.0, jitter=0.3)
    result = _interrupted_sweep(tmp_path, model, _StopAfterFirstCell(), repeats=4)
    assert result.status == "interrupted" and len(result.cells) == 1
    store = Store.open(tmp_path)
    (row,) = store.speed_rows([result.run_id])
    assert row["prompt_tokens"] == 32 and row["high_variance"] == 1  # jitter 30% > 10%
    assert store.run(result.run_id)["status"] == "interrupted"
    store.close()


class _CtrlCInsidePydantic(NullSpeedEvents):
    """Ctrl-C that lands while pydantic serialises (the client's request models): pydantic
    hands it back as PydanticSerializationError, as CI once saw."""

    def on_cell(self, cell: Cell) -> None:
        import os
        import signal

        from pydantic import BaseModel, field_serializer

        class Body(BaseModel):
            x: int = 0

            @field_serializer("x")
            def _ser(self, value: int) -> int:
                os.kill(os.getpid(), signal.SIGINT)  # the handler runs here, mid-serialise
                return value

        Body().model_dump()


def test_ctrl_c_wrapped_by_a_library_still_ends_interrupted(tmp_path: Path) -> None:
    from pydantic_core import PydanticSerializationError

    from moebench.run_control import interrupt_signals

    with pytest.raises(PydanticSerializationError), interrupt_signals():
        _CtrlCInsidePydantic().on_cell(None)  # type: ignore[arg-type]  # the wrapping is real
    with interrupt_signals():
        result = _interrupted_sweep(tmp_path, "mixtral:8x7b", _CtrlCInsidePydantic(), repeats=2)
    assert result.status == "interrupted" and len(result.cells) == 1
    store = Store.open(tmp_path)
    assert store.run(result.run_id)["status"] == "interrupted"
    store.close()
