"""The suite file's schema: the pydantic models of what users write (suite, task, case,
generation options) and the keys each level knows. `loader` validates against these;
`reference` generates docs/suites.md from them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from moebench.suites.generators import GenerateSpec
from moebench.types import GENERATION_KEYS



def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _as_id(value: Any) -> Any:
    # `id: 7` is natural YAML; ids are strings everywhere downstream.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class GenerationOptions(BaseModel):
    """Generation options (suite → task → case); unknown keys are typos, not pass-throughs."""

    model_config = ConfigDict(extra="forbid", strict=True)

    temperature: float | None = Field(default=None, ge=0, description="0 = greedy")
    top_p: float | None = Field(default=None, gt=0, le=1, description="nucleus sampling mass")
    top_k: int | None = Field(default=None, ge=0, description="sample among the k likeliest")
    seed: int | None = Field(default=None, description="sampling seed")
    max_tokens: int | None = Field(default=None, ge=1, description="most output tokens")
    stop: Annotated[list[str] | None, BeforeValidator(_as_list)] = Field(
        default=None, description="stop sequences (a string or a list)")
    num_ctx: int | None = Field(default=None, ge=1, description="context window (Ollama)")

    def values(self) -> dict[str, Any]:
        """The options that were given, as a plain dict."""
        return self.model_dump(exclude_none=True)


class _SuiteModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suite: str | None = Field(default=None, description="suite name (default: the file's stem)")
    description: str | None = Field(default=None, description="free text, shown in reports")
    options: GenerationOptions = Field(default_factory=GenerationOptions,
                                       description="generation defaults for every task")
    tasks: list[Any] = Field(description="the tasks (at least one)")


class _TaskModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="unique within the suite")
    description: str | None = Field(default=None, description="free text")
    scorer: Any = Field(default=None, description="a scorer name, or {type: NAME, ...params}")
    prompt: str | None = Field(default=None, description="template; {field} from the case")
    system: str | None = Field(default=None, description="system message template")
    options: GenerationOptions = Field(default_factory=GenerationOptions,
                                       description="overrides the suite's options")
    cases: list[Any] = Field(default_factory=list,
                             description="the cases (with `generate:`, may be left out)")
    generate: GenerateSpec | None = Field(
        default=None, description="generated cases, after any literal `cases`")


class _CaseModel(BaseModel):
    # Any further keys are template fields visible to the scorer.
    model_config = ConfigDict(extra="allow")

    id: Annotated[str, BeforeValidator(_as_id)] = Field(description="unique within the task")
    prompt: str | None = Field(default=None, description="the whole prompt, used verbatim")
    scorer: Any = Field(default=None, description="overrides the task's scorer for this case")
    options: GenerationOptions = Field(default_factory=GenerationOptions,
                                       description="overrides the task's options")


_KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "suite": tuple(_SuiteModel.model_fields),
    "task": tuple(_TaskModel.model_fields),
    "options": GENERATION_KEYS,
    "generate": tuple(GenerateSpec.model_fields),
}
_ALL_KEYS = sorted({key for keys in _KNOWN_KEYS.values() for key in keys} | {"id"})
