"""Where the bundled suites are found: inside an installed wheel, else in the checkout."""

from __future__ import annotations

from pathlib import Path

from moebench import paths


def test_checkout_finds_top_level_tasks() -> None:
    assert paths.BUNDLED_TASKS == paths.PACKAGE_DIR.parent / "tasks"
    assert (paths.BUNDLED_TASKS / "demo.yaml").is_file()


def test_installed_wheel_finds_tasks_inside_the_package(tmp_path: Path) -> None:
    package = tmp_path / "site-packages" / "moebench"
    (package / "tasks").mkdir(parents=True)
    assert paths.bundled_tasks(package) == package / "tasks"
    (tmp_path / "site-packages" / "tasks").mkdir()  # someone else's top-level tasks/
    assert paths.bundled_tasks(package) == package / "tasks"


def test_checkout_layout_falls_back_to_the_repo_root(tmp_path: Path) -> None:
    (tmp_path / "moebench").mkdir()
    assert paths.bundled_tasks(tmp_path / "moebench") == tmp_path / "tasks"
