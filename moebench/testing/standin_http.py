"""The stand-in's HTTP layer: keep-alive HTTP/1.1 with TCP_NODELAY, JSON and chunked writers.

`StandinRequest` is what every route handler receives: it reads the JSON body (answering 400
the way Ollama does), writes JSON / plain-text responses in one send, streams chunked bodies
(NDJSON or SSE), and applies the armed faults (status errors, delays, dropped streams, trickled
bytes, invalid lines, the whole server dying) before and during a response. Routing is looked up in the owning `OllamaStandin.routes`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from moebench.testing.standin_engine import Fault

if TYPE_CHECKING:
    from moebench.testing.ollama_standin import OllamaStandin

Handler = Callable[["OllamaStandin", "StandinRequest"], None]
_TRACK_LOCK = threading.Lock()


class DroppedStream(Exception):
    """Raised inside a handler to cut the connection mid-body (fault injection)."""


class StandinRequest(BaseHTTPRequestHandler):
    """One HTTP exchange; handlers use `json_body()`, `send_json()`, and the chunked writers."""

    protocol_version = "HTTP/1.1"  # keep-alive, chunked streaming like Go's net/http
    timeout = 60  # idle keep-alive connections are closed after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Without TCP_NODELAY, Nagle + delayed ACK add ~40 ms per response (perf notes §5.7).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the per-request stderr log."""

    # ---- dispatch ------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        standin = self.server.standin
        path = self.path.split("?", 1)[0]
        self._raw = self._read_body()
        standin.state.count(method, path, self._parsed())
        methods = standin.routes.get(path)
        if methods is None:
            return self.send_text("404 page not found", 404)
        handler = methods.get(method) or (methods.get("GET") if method == "HEAD" else None)
        if handler is None:
            return self.send_text("405 method not allowed", 405)
        if self.server.dead:
            return self._reset()
        body = self._parsed()
        streaming = isinstance(body, dict) and body.get("stream", path.startswith("/api/")) \
            is not False and bool(body.get("stream", True))
        # a model that cannot load is refused by its route whatever else is armed
        refused = isinstance(body, dict) and standin.state.refuses_load(body)
        faults = [] if refused else standin.state.faults.take(path, streaming)
        if any(f.kind == "die" for f in faults):
            self.server.die()
            return self._reset()
        for fault in faults:
            if fault.kind == "delay":
                time.sleep(fault.seconds)
        for fault in faults:
            if fault.kind == "status":
                extra = ({"Retry-After": f"{fault.seconds:g}"} if fault.seconds else None)
                return self.send_json({"error": fault.message}, fault.status, extra)
        self.drop = next((f for f in faults if f.kind in ("drop", "badline")), None)
        self.trickle = next((f for f in faults if f.kind == "trickle"), None)
        try:
            handler(standin, self)
        except DroppedStream:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # ---- request body ----------------------------------------------------------------------
    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _parsed(self) -> Any:
        try:
            return json.loads(self._raw) if self._raw else None
        except ValueError:
            return None

    def json_body(self) -> dict[str, Any] | None:
        """The JSON body, or None after answering 400 like Ollama does."""
        if not self._raw.strip():
            self.send_json({"error": "missing request body"}, 400)
            return None
        try:
            body = json.loads(self._raw)
        except ValueError as error:
            self.send_json({"error": f"invalid character: {error}"}, 400)
            return None
        if not isinstance(body, dict):
            self.send_json({"error": "json: cannot unmarshal into Go value"}, 400)
            return None
        return body

    # ---- responses ---------------------------------------------------------------------------
    def send_bytes(self, data: bytes, status: int, content_type: str,
                   headers: dict[str, str] | None = None) -> None:
        """Headers and body in one send (no Nagle stall even without NODELAY)."""
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(data)}\r\n{extra}"
                f"Date: {self.date_time_string()}\r\n\r\n").encode()
        self.wfile.write(head + (b"" if self.command == "HEAD" else data))

    def send_json(self, obj: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> None:
        """A JSON response (`application/json; charset=utf-8`)."""
        self.send_bytes(json.dumps(obj).encode(), status, "application/json; charset=utf-8",
                        headers)

    def send_text(self, text: str, status: int = 200) -> None:
        """A plain-text response."""
        self.send_bytes(text.encode(), status, "text/plain; charset=utf-8")

    def start_chunked(self, content_type: str = "application/x-ndjson") -> None:
        """Begin a 200 streamed body (chunked transfer encoding)."""
        self._chunks = 0
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
                f"Transfer-Encoding: chunked\r\nDate: {self.date_time_string()}\r\n\r\n")
        self.wfile.write(head.encode())

    def write_chunk(self, data: bytes) -> None:
        """Send one chunk now; applies an armed `drop` fault (raises DroppedStream)."""
        if self.drop is not None and self._chunks >= self.drop.after_chunks:
            self._drop(self.drop)
        frame = b"%x\r\n%s\r\n" % (len(data), data)
        if self.trickle is None:
            self.wfile.write(frame)
        else:  # one byte at a time: the client's per-read timeout never fires
            for i in range(len(frame)):
                self.wfile.write(frame[i:i + 1])
                self.wfile.flush()
                time.sleep(self.trickle.seconds)
        self._chunks += 1

    def write_line(self, obj: Any) -> None:
        """One NDJSON line."""
        self.write_chunk(json.dumps(obj).encode() + b"\n")

    def end_chunked(self) -> None:
        """Finish the streamed body."""
        self.wfile.write(b"0\r\n\r\n")

    def _reset(self) -> None:
        """Cut this connection without an answer (a dead server)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _drop(self, fault: Fault) -> None:
        if fault.kind == "badline":  # an unparsable line, then a clean end of body
            self.wfile.write(b"%x\r\n%s\r\n" % (len(fault.line), fault.line))
            self.end_chunked()
        elif fault.clean:  # a well-formed end of body, but no `done` chunk
            self.end_chunked()
        else:  # reset: the client sees an incomplete chunked body
            self.connection.shutdown(socket.SHUT_RDWR)
        raise DroppedStream


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    standin: OllamaStandin
    dead = False

    def track(self, connection: socket.socket, open_: bool) -> None:
        """Remember open client connections (so `die` can cut them all)."""
        with _TRACK_LOCK:
            conns: set[socket.socket] = self.__dict__.setdefault("connections", set())
            (conns.add if open_ else conns.discard)(connection)

    def die(self) -> None:
        """Stop like a killed server: refuse new connections, cut every open one."""
        self.dead = True
        threading.Thread(target=self.shutdown, daemon=True).start()
        self.socket.close()  # connections are refused from now on
        with _TRACK_LOCK:
            conns = list(self.__dict__.get("connections", ()))
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up is normal (timeouts, killed runs): no traceback spam."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)
