"""The error tree: every error a user can cause or fix, each message naming the fix.

The CLI prints `str(error)` as one red line and exits 1; anything that is not a
`MoebenchError` is a bug and keeps its traceback.
"""

from __future__ import annotations


class MoebenchError(Exception):
    """Base class: the message is one line that tells the user what to do."""


class SuiteError(MoebenchError):
    """A suite file is unreadable or invalid; the message starts with `file:line: field:`."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        #: every error found, each `file:line: field: message` (validate lists them all)
        self.errors: list[str] = errors if errors is not None else [message]


class BackendError(MoebenchError):
    """A backend failed in a way that ends the run (not a single failed request)."""


class BackendUnavailable(BackendError):
    """The server is not reachable at all (e.g. `ollama serve` is not running)."""


class ModelNotFound(BackendError):
    """The backend does not have the model; the message says how to get it."""


class AuthError(BackendError):
    """The server refused our credentials (401/403)."""


class RequestFailed(BackendError):
    """One request failed after all retries; the runner turns it into a row with `error`."""


class ScorerFailed(MoebenchError):
    """A scorer could not reach a verdict (e.g. an unparsable judge reply); the runner stores
    the sample as a row with `error`, never as a pass or a fail.

    `score_stripped` raises only this: any exception inside a scorer (pathological text, a
    backtracking regex, a bug) becomes one, the output is kept and `moebench rescore` can
    grade the sample later. The runner prefixes `scorer NAME: `.
    """


#: the name issue 17 uses for the same error
ScorerError = ScorerFailed


class MissingDependencyError(MoebenchError):
    """An optional dependency is not installed; the message gives the pip command."""


class StoreError(MoebenchError):
    """The results store is unreadable, or a run id is unknown."""


class RunNotFound(StoreError):
    """No run with that id (or no runs at all for `last`)."""


class EngineError(MoebenchError):
    """The built-in engine cannot load or run a checkpoint (unknown family, bad files, too big)."""


class OutOfMemoryRisk(EngineError):
    """Loading would need more RAM than is available; we refuse instead of being OOM-killed."""



class ModelLoadFailed(RequestFailed):
    """A model could not be loaded (after the retries a transient failure gets).

    The run goes on: the model is stored with status `failed`, its samples as error rows
    carrying `reason` (the server's own words), and `--resume` tries it again. `hint` names
    what usually helps; `info` is what the backend learned before the load failed.
    """

    def __init__(self, model: str, reason: str, hint: str = "", info: object = None) -> None:
        super().__init__(f"load failed: {reason}")
        self.model = model
        self.reason = reason
        self.hint = hint
        self.info = info


class ServerGone(RequestFailed):
    """The server stopped accepting connections mid-run; the run stops as `interrupted`."""
