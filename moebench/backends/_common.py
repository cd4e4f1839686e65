"""Helpers shared by the backends (native Ollama, LangChain, OpenAI-compatible, torch engine).

`chat_messages` turns a Request into the system + user message pair every chat API takes.
`StreamClock` is the client-side stopwatch of one streamed attempt: time to first token, and
first → last token time, from which `client_decode_s` estimates the decode time when the server
reports none (the Completion is then labelled `timing_source="client"`).
Retries live in `moebench.backends._retry`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from moebench.types import Request


def chat_messages(request: Request) -> list[dict[str, str]]:
    """`[{"role": "system", ...}, {"role": "user", ...}]` (no system message when unset)."""
    messages = [{"role": "system", "content": request.system}] if request.system else []
    messages.append({"role": "user", "content": request.prompt})
    return messages


@dataclass
class StreamClock:
    """`perf_counter` marks of one streamed request: send, first and last non-empty chunk."""

    start: float = field(default_factory=time.perf_counter)
    first: float | None = None
    last: float | None = None

    def mark(self, has_text: bool) -> float:
        """Note a chunk arriving now; returns the time. Empty chunks move no mark."""
        now = time.perf_counter()
        if has_text:
            if self.first is None:
                self.first = now
            self.last = now
        return now

    @property
    def ttft_s(self) -> float | None:
        """Send → first non-empty chunk."""
        return None if self.first is None else self.first - self.start

    def client_decode_s(self, output_tokens: int | None) -> float | None:
        """Estimated time to decode `output_tokens`, from the client's first → last token gap.

        n tokens arrive over n − 1 inter-token gaps, so the gap is scaled by n / (n − 1) to
        cover n tokens (the first token's time is otherwise left out). None when fewer than
        two tokens arrived or the count is unknown.
        """
        if not output_tokens or output_tokens < 2 or self.first is None or self.last is None:
            return None
        gap = self.last - self.first
        return gap * output_tokens / (output_tokens - 1) if gap > 0 else None
