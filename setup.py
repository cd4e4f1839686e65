"""Build hook: ship the repo's top-level `tasks/` inside the wheel as `moebench/tasks/`.

Everything else is in pyproject.toml. The suites stay at the top of the repo (where users,
docs and `moebench suites list` in a checkout find them); `moebench.paths.bundled_tasks()`
looks in the package first, so an installed wheel finds its copy from any folder.
"""

from setuptools import find_namespace_packages, setup

setup(
    # namespace discovery: data folders (report/assets, demo_models/*) are packages too
    packages=[*find_namespace_packages(include=["moebench", "moebench.*"],
                                       exclude=["*.__pycache__"]), "moebench.tasks"],
    package_dir={"moebench.tasks": "tasks"},
)
