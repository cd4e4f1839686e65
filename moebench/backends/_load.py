"""Model load failures shared by the backends: which ones to retry, and what to tell the user.

Servers refuse a model that does not fit with texts such as Ollama's `model requires more
system memory (74.2 GiB) than is available (22.5 GiB)`; retrying cannot help, so
`is_memory_error` stops the retries at once. Crashed or slow runners (`llama runner process
has terminated: ...`, `timed out waiting for llama runner to start`), 5xx and connection resets
are transient and retried like any request. `load_failed` builds the `ModelLoadFailed` the
runner stores (status `failed`, reason, hint) before going on to the next model.
"""

from __future__ import annotations

import re

from moebench.errors import ModelLoadFailed

#: phrases of servers and runtimes that mean "does not fit in memory" (case-insensitive)
_MEMORY = re.compile(
    r"requires more (?:system )?memory|out of memory|not enough memory|insufficient memory|"
    r"cannot allocate memory|unable to allocate|failed to allocate|cudaMalloc failed|"
    r"would need .* of (?:RAM|memory)|OutOfMemory", re.IGNORECASE)
_RUNNER = re.compile(r"llama runner|runner process|exit status|terminated", re.IGNORECASE)

_HINTS = {
    "memory": "it does not fit: try a smaller quantisation tag (e.g. a q4_K_M or smaller "
              "variant), offload fewer layers to the GPU (options num_gpu), or close other "
              "loaded models (moebench ps)",
    "runner": "the server's runner crashed or did not start: check the server log, try a "
              "smaller quantisation tag, lower num_gpu, or close other loaded models",
    "torch": "the weights do not fit: try --dtype bfloat16, a smaller checkpoint, or close "
             "other programs",
    "other": "check the server log",
}


def is_memory_error(text: str) -> bool:
    """True when `text` says the model does not fit in memory (never worth a retry)."""
    return bool(_MEMORY.search(text))


def load_hint(reason: str, backend: str = "ollama") -> str:
    """What usually helps for a load that failed with `reason`."""
    if is_memory_error(reason):
        return _HINTS["torch" if backend == "torch" else "memory"]
    if _RUNNER.search(reason):
        return _HINTS["runner"]
    return _HINTS["other"]


def load_failed(model: str, reason: str, backend: str = "ollama",
                info: object = None) -> ModelLoadFailed:
    """The error for a model that could not be loaded (`reason` is the server's own text)."""
    reason = " ".join(reason.split()) or "unknown error"
    return ModelLoadFailed(model, reason, load_hint(reason, backend), info)
