"""A loopback server that answers as a test scripts it: a registry that misbehaves on purpose.

Each request is answered by the test's ``script(method, path)``: an ``Answer`` with a
status, headers and a body, which may be huge (sent in chunks, made on the fly, so
the test never holds it) or trickle a byte at a time, through the headers or the
body. Every request is recorded with the ``Authorization`` it carried, and how
many bytes of body the server managed to send before the client hung up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tests.loopback import LoopbackServer, QuietHandler


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    # Send ``body`` this many times over (a huge answer never held in memory).
    repeat: int = 1
    # Seconds between single bytes: in the headers ("headers") or the body ("body").
    drip: float = 0.0
    drip_in: str = "body"


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    authorization: str  # the whole header, "" when absent


Script = Callable[[str, str], Answer]


class HostileRegistry(LoopbackServer):
    """Listens on ``127.0.0.1:<free port>``; ``script`` decides every answer."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.seen: list[Seen] = []
        self.sent = 0  # body bytes written, over all answers
        self.lock = threading.Lock()
        server = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                with server.lock:
                    server.seen.append(
                        Seen(self.command, self.path, self.headers.get("Authorization", ""))
                    )
                answer = server.script(self.command, self.path)
                try:
                    self._reply(answer)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def _reply(self, answer: Answer) -> None:
                total = len(answer.body) * answer.repeat
                head = [f"HTTP/1.1 {answer.status} Scripted\r\n"]
                head += [f"{key}: {value}\r\n" for key, value in answer.headers.items()]
                head.append(f"Content-Length: {total}\r\n\r\n")
                raw = "".join(head).encode()
                if answer.drip and answer.drip_in == "headers":
                    for byte in raw:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(answer.drip)
                else:
                    self.wfile.write(raw)
                if self.command == "HEAD":
                    return
                if answer.drip and answer.drip_in == "body":
                    for byte in answer.body * answer.repeat:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        server.count(1)
                        time.sleep(answer.drip)
                    return
                for _ in range(answer.repeat):
                    self.wfile.write(answer.body)
                    server.count(len(answer.body))

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = handle_any

        super().__init__(0, Handler)

    def count(self, sent: int) -> None:
        with self.lock:
            self.sent += sent
