"""The scorers' lookup cache (`moebench.scorers._memo`): answers survive the process, a change
of the code or a library starts afresh, and a cache that cannot be written breaks nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from moebench.scorers._memo import DiskMemo


def _never() -> str:
    raise AssertionError("the answer should have come from the cache")


def test_answers_are_kept_for_the_next_process(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOEBENCH_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "lookup.py"
    source.write_text("v1")
    first = DiskMemo("words", [str(source)], ("pytest",))
    assert first.get("colour", lambda: "ok") == "ok"
    assert first.get("asdfgh", lambda: None) is None
    first.save()  # what exit does
    again = DiskMemo("words", [str(source)], ("pytest",))
    assert again.get("colour", _never) == "ok" and again.get("asdfgh", _never) is None
    source.write_text("v2")  # the code that computes the answers changed
    assert DiskMemo("words", [str(source)], ("pytest",)).get("colour", lambda: "new") == "new"


@pytest.mark.parametrize("setting", ["off", "unwritable"])
def test_no_cache_folder_just_computes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       setting: str) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the folder should be: mkdir fails
    monkeypatch.setenv("MOEBENCH_CACHE_DIR", "off" if setting == "off" else str(blocked / "c"))
    source = tmp_path / "lookup.py"
    source.write_text("v1")
    memo = DiskMemo("words", [str(source)], ())
    assert memo.get("colour", lambda: "ok") == "ok"
    memo.save()
    assert DiskMemo("words", [str(source)], ()).get("colour", lambda: "again") == "again"
