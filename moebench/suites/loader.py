"""Task suites: read suite YAML, validate all of it, and turn its cases into Requests.

A suite file (format in `shared/contracts.md` §2) is checked in layers so that `suites
validate` can list every problem at once: pydantic models (`extra="forbid"`) for the shape of
the suite, each task and each case, then the rules pydantic cannot see (scorer names and
parameters from the scorer registry, duplicate ids, template placeholders rendered against
every case, the case fields each built-in scorer needs). Each problem becomes one line
`file:line: field: message`; any problem raises `SuiteError` carrying all of them.

Public API (the runner uses exactly this): `load_suite`, `load_suites`, `validate_paths`,
`check_paths`, and `Suite.requests(limit, repeats)`.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from moebench.suites.rules import (
    Invalid,
    Problems,
    check_case_fields,
    check_case_typos,
    hint,
    placeholders,
    render,
    scorer_spec,
    type_name,
)
from moebench.suites.yaml_lines import YamlDoc, YamlPath, YamlSyntaxError, parse_yaml
from moebench.errors import MoebenchError, SuiteError
from moebench.suites.generators import task_cases
from moebench.suites.schema import (  # noqa: F401  (GenerationOptions: public name)
    _ALL_KEYS,
    _KNOWN_KEYS,
    GenerationOptions,
    _CaseModel,
    _SuiteModel,
    _TaskModel,
)
from moebench.types import Request, ScorerSpec

SUITE_SUFFIXES = (".yaml", ".yml")
#: largest suite file read (a 10 MB suite validates in seconds; beyond this, split it)
MAX_SUITE_BYTES = 16 * 1024 * 1024


# ---- the loaded suite (frozen: this is what the rest of moebench uses) ----


@dataclass(frozen=True)
class Case:
    """One validated case: its rendered prompt, merged options and fields."""

    id: str
    prompt: str
    scorer: ScorerSpec
    system: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    #: every key of the case except prompt/options/scorer (id, expected, template fields...)
    fields: Mapping[str, Any] = field(default_factory=dict)
    line: int = 1


@dataclass(frozen=True)
class Task:
    """A named group of cases graded by one scorer (cases may override it)."""

    name: str
    cases: tuple[Case, ...]
    scorer: ScorerSpec | None = None
    description: str | None = None


@dataclass(frozen=True)
class Suite:
    """A validated suite file."""

    name: str
    path: Path
    sha256: str
    tasks: tuple[Task, ...]
    description: str | None = None

    @property
    def n_cases(self) -> int:
        """Cases over all tasks."""
        return sum(len(task.cases) for task in self.tasks)

    def requests(self, limit: int | None = None, repeats: int = 1) -> list[Request]:
        """Every case as a Request (task order, then case order, then repeat 1..repeats).

        Args:
            limit: at most this many cases per task (the first ones); None for all.
            repeats: independent repeats per case (≥ 1).
        """
        if limit is not None and limit < 1 or repeats < 1:
            raise ValueError("limit and repeats must be at least 1")
        return [
            Request(suite=self.name, task=task.name, case_id=case.id, prompt=case.prompt,
                    scorer=case.scorer, system=case.system, options=dict(case.options),
                    case=dict(case.fields), repeat=repeat)
            for task in self.tasks
            for case in task.cases[:limit]
            for repeat in range(1, repeats + 1)
        ]


# ---- collecting problems ----


def _validate(model: type[BaseModel], raw: Any, path: YamlPath, kind: str,
              problems: Problems) -> Any:
    """`model.model_validate(raw)`, recording each pydantic error at its path.

    When the errors are all in keys that may be left out (unknown keys, optional fields),
    the model is validated again without them, so the checks after this one still run and
    `suites validate` reports their problems too. None when even that fails.
    """
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        items = error.errors()
        for item in _without_knock_ons(items):
            _add_pydantic_error(item, path, kind, problems)
        bad = {item["loc"][0] for item in items if item["loc"]}
    if not isinstance(raw, Mapping) or not bad:
        return None
    try:
        return model.model_validate({k: v for k, v in raw.items() if k not in bad})
    except ValidationError:
        return None


def _without_knock_ons(items: list[Any]) -> list[Any]:
    """Drop "missing key 'tasks'" when "unknown key 'tsks'" already says it: one typo, one line."""
    typos = {(item["loc"][:-1], close)
             for item in items if item["type"] == "extra_forbidden"
             for close in difflib.get_close_matches(str(item["loc"][-1]), _ALL_KEYS, n=1)}
    return [item for item in items
            if not (item["type"] == "missing" and (item["loc"][:-1], item["loc"][-1]) in typos)]


def _add_pydantic_error(item: Any, path: YamlPath, kind: str, problems: Problems) -> None:
    loc = (*path, *item["loc"])
    parent = item["loc"][-2] if len(item["loc"]) > 1 else None
    kind_here = parent if parent in ("options", "generate") else kind
    if item["type"] == "extra_forbidden":
        key = str(loc[-1])
        what = "option" if kind_here == "options" else "key"
        problems.add(loc[:-1], f"unknown {what} '{key}' {hint(key, _KNOWN_KEYS[kind_here])}",
                     problems.doc.line_of(loc) if problems.doc else None)
    elif item["type"] == "missing":
        problems.add(loc[:-1], f"missing required key '{loc[-1]}'")
    elif item["type"] in ("model_type", "model_attributes_type", "dict_type"):
        problems.add(loc, f"expected a mapping, got {type_name(item['input'])}")
    else:
        message = item["msg"][0].lower() + item["msg"][1:]
        got = repr(item["input"])
        problems.add(loc, f"{message} (got {got if len(got) <= 60 else got[:57] + '...'})")


# ---- building a suite from its YAML ----


@dataclass(frozen=True)
class _TaskContext:
    """What every case of a task shares: scorer, parsed templates, options so far."""

    model: _TaskModel
    scorer: ScorerSpec | None
    scorer_ok: bool
    #: False when the task had invalid keys: then a missing prompt/scorer is no news
    complete: bool
    #: placeholder names of the prompt/system templates; None when the template is broken
    prompt_names: list[str] | None
    system_names: list[str] | None
    options: dict[str, Any]


def _task_context(model: _TaskModel, path: YamlPath, suite_options: dict[str, Any],
                  problems: Problems, complete: bool) -> _TaskContext:
    scorer, scorer_ok = None, True
    if model.scorer is not None:
        scorer, scorer_ok = problems.attempt((*path, "scorer"), scorer_spec, model.scorer)
    names = {}
    for key in ("prompt", "system"):
        template = getattr(model, key)
        names[key] = [] if template is None else problems.attempt(
            (*path, key), placeholders, template)[0]
    return _TaskContext(model, scorer, scorer_ok, complete, names["prompt"], names["system"],
                        {**suite_options, **model.options.values()})


def _case_prompt(case: _CaseModel, ctx: _TaskContext, fields: Mapping[str, Any]) -> str | None:
    """The case's own prompt, or the task template filled from its fields (raises Invalid)."""
    if case.prompt is not None:
        return case.prompt
    if ctx.model.prompt is None and not ctx.complete:
        return None
    if ctx.model.prompt is None:
        raise Invalid("no prompt: give the task a `prompt:` template or this case a `prompt:`")
    if ctx.prompt_names is None:  # the template itself is broken, reported once for the task
        return None
    return render(ctx.model.prompt, ctx.prompt_names, fields, "prompt")


def _case_system(ctx: _TaskContext, fields: Mapping[str, Any]) -> str | None:
    if ctx.model.system is None or ctx.system_names is None:
        return None
    return render(ctx.model.system, ctx.system_names, fields, "system")


def _build_case(raw: Any, path: YamlPath, ctx: _TaskContext, problems: Problems) -> Case | None:
    model = _validate(_CaseModel, raw, path, "case", problems)
    if model is None:
        return None
    fields = {"id": model.id, **(model.model_extra or {})}
    scorer, ok = ctx.scorer, ctx.scorer_ok
    if model.scorer is not None:
        scorer, ok = problems.attempt((*path, "scorer"), scorer_spec, model.scorer)
    elif scorer is None:
        if ok and ctx.complete:  # else the task's scorer was invalid or a key was misspelt
            problems.add(path, "no scorer: give the task a `scorer:` (or this case one)")
        ok = False
    used = [*(ctx.prompt_names or []), *(ctx.system_names or [])]
    typo_free = problems.attempt(path, check_case_typos, scorer, fields, used)[1]
    if ok and typo_free:
        ok = problems.attempt(path, check_case_fields, scorer, fields)[1]
    ok = ok and typo_free
    prompt, prompt_ok = problems.attempt(path, _case_prompt, model, ctx, fields)
    system, system_ok = problems.attempt(path, _case_system, ctx, fields)
    if not (ok and prompt_ok and system_ok) or prompt is None or scorer is None:
        return None
    options = {**ctx.options, **model.options.values()}
    line = problems.doc.line_of(path) if problems.doc else 1
    return Case(model.id, prompt, scorer, system, options, fields, line)


def _build_task(raw: Any, index: int, suite_options: dict[str, Any],
                problems: Problems) -> Task | None:
    path: YamlPath = ("tasks", index)
    before = len(problems.items)
    model = _validate(_TaskModel, raw, path, "task", problems)
    if model is None:
        return None
    model, generated = _generated(model, path, problems)
    if generated is None:
        return None
    ctx = _task_context(model, path, suite_options, problems, len(problems.items) == before)
    raw_cases = [((*path, "cases", j), c) for j, c in enumerate(model.cases)]
    raw_cases += [((*path, "generate"), c) for c in generated]
    if not raw_cases:
        problems.add((*path, "cases"), "needs at least one case (or `generate:`)")
        return None
    cases: list[Case] = []
    first_line: dict[str, int] = {}
    for case_path, raw_case in raw_cases:
        case = _build_case(raw_case, case_path, ctx, problems)
        case_id = case.id if case else _raw_id(raw_case)
        if case_id is not None and case_id in first_line:
            problems.add((*case_path, "id"),
                         f"duplicate case id '{case_id}' (first at line {first_line[case_id]})")
            case = None
        elif case_id is not None:
            first_line[case_id] = problems.doc.line_of((*case_path, "id")) if problems.doc else 1
        if case is not None:
            cases.append(case)
    if len(cases) != len(raw_cases):
        return None
    return Task(model.name, tuple(cases), ctx.scorer, model.description)


def _generated(model: _TaskModel, path: YamlPath,
               problems: Problems) -> tuple[_TaskModel, list[Any] | None]:
    """(task with the family's scorer/prompt where it gives none, generated cases or None)."""
    if model.generate is None:
        return model, []
    try:
        defaults, cases = task_cases(model.generate)
    except MoebenchError as error:
        problems.add((*path, "generate"), str(error))
        return model, None
    return model.model_copy(update={k: v for k, v in defaults.items()
                                    if getattr(model, k) is None}), cases


def _raw_id(raw: Any) -> str | None:
    value = raw.get("id") if isinstance(raw, Mapping) else None
    return None if value is None else str(value)


def _build_suite(doc: YamlDoc, path: Path, digest: str, problems: Problems) -> Suite | None:
    if doc.data is None:
        problems.add((), "the file is empty — a suite needs `tasks:` with at least one task")
        return None
    if not isinstance(doc.data, Mapping):
        problems.add((), f"expected a mapping with `tasks:`, got {type_name(doc.data)}")
        return None
    model = _validate(_SuiteModel, doc.data, (), "suite", problems)
    if model is None:
        return None
    if not model.tasks:
        problems.add(("tasks",), "needs at least one task")
        return None
    tasks: list[Task] = []
    first_line: dict[str, int] = {}
    for i, raw in enumerate(model.tasks):
        task = _build_task(raw, i, model.options.values(), problems)
        if task is not None and task.name in first_line:
            first = first_line[task.name]
            problems.add(("tasks", i, "name"),
                         f"duplicate task name '{task.name}' (first at line {first})")
        elif task is not None:
            first_line[task.name] = doc.line_of(("tasks", i, "name"))
            tasks.append(task)
    if len(tasks) != len(model.tasks) or problems.items:
        return None
    return Suite(model.suite or path.stem, path, digest, tuple(tasks), model.description)


# ---- files and folders ----


def _read_doc(path: Path, problems: Problems) -> tuple[YamlDoc, str] | None:
    """Read and parse one file; records an unreadable file or a YAML syntax error."""
    try:
        if path.stat().st_size > MAX_SUITE_BYTES:
            problems.add((), f"{path.stat().st_size / 2**20:.1f} MiB, over the "
                         f"{MAX_SUITE_BYTES / 2**20:g} MiB limit for one suite file — split its "
                         "tasks into several files in one folder", 1, "file")
            return None
        data = path.read_bytes()
    except FileNotFoundError:
        problems.add((), "no such file — check the path", 1, "file")
        return None
    except OSError as error:
        problems.add((), f"cannot read: {error.strerror or error} — check the path", 1, "file")
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        problems.add((), f"not UTF-8 text (byte 0x{data[error.start]:02x}) — save it as UTF-8",
                     line, "file")
        return None
    try:
        doc = parse_yaml(text)
    except YamlSyntaxError as error:
        problems.add((), str(error), error.line, "yaml")
        return None
    return doc, hashlib.sha256(data).hexdigest()


def _check_file(path: Path) -> tuple[Suite | None, list[str]]:
    """Load one suite file: the Suite (None when invalid) and every error line."""
    problems = Problems(str(path))
    read = _read_doc(path, problems)
    if read is None:
        return None, problems.lines()
    problems.doc, digest = read
    for key_path, line in problems.doc.duplicates:
        problems.add(key_path, "key given twice — YAML would silently keep only the last", line)
    suite = _build_suite(problems.doc, path, digest, problems)
    return (suite if not problems.items else None), problems.lines()


def _suite_files(path: Path) -> list[Path]:
    """A folder's *.yaml/*.yml sorted by name (maybe none); a file as given."""
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix in SUITE_SUFFIXES and p.is_file())


def _check_all(paths: Sequence[Path]) -> tuple[list[Suite], list[str]]:
    """Each file once, in the order given: the valid suites and every error line."""
    suites: list[Suite] = []
    errors: list[str] = []
    seen: set[Path] = set()
    for path in map(Path, paths):
        files = _suite_files(path)
        if not files:
            errors.append(f"{path}:1: folder: no suite files (*.yaml, *.yml) in this folder "
                          "— pass a suite file or a folder of them")
        for file in files:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                suite, lines = _check_file(file)
                errors += lines
                suites += [suite] if suite is not None else []
    return suites, errors


def check_paths(paths: Sequence[Path]) -> tuple[list[Suite], list[str]]:
    """Load suite files and folders: the valid suites and every error line found.

    Errors are `file:line: field: message`, in the order the files were given, then by line.
    Two suites with the same name are an error (results are keyed by suite name).
    """
    suites, errors = _check_all(paths)
    first: dict[str, Suite] = {}
    for suite in suites:
        if suite.name in first:
            errors.append(f"{suite.path}:1: suite: suite name '{suite.name}' is also used by "
                          f"{first[suite.name].path} — give each suite its own `suite:` name")
        first.setdefault(suite.name, suite)
    return suites, errors


def validate_paths(paths: Sequence[Path]) -> list[str]:
    """Every error line in these suite files/folders (empty when all are valid)."""
    return check_paths(paths)[1]


def _raise(errors: list[str], paths: Sequence[Path]) -> None:
    more = ""
    if len(errors) > 1:
        where = " ".join(str(p) for p in paths)
        more = f" (+{len(errors) - 1} more — run: moebench suites validate {where})"
    raise SuiteError(errors[0] + more, errors=errors)


def load_suite(path: Path) -> Suite:
    """Load and validate one suite file; raises SuiteError listing every problem."""
    suite, errors = _check_file(Path(path))
    if errors or suite is None:
        _raise(errors, [path])
    assert suite is not None
    return suite


def load_suites(paths: Sequence[Path]) -> list[Suite]:
    """Load suite files and folders (a folder: its *.yaml/*.yml, sorted by name).

    Raises SuiteError (with every error line in `.errors`) if anything is invalid.
    """
    suites, errors = check_paths(paths)
    if errors:
        _raise(errors, paths)
    return suites
