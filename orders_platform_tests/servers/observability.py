"""Observability backends for tests: a real Prometheus Pushgateway (Debian's
``prometheus-pushgateway`` binary) and an OpenLineage HTTP receiver.

Both listen on 127.0.0.1 on a free port. The Pushgateway runs in its own process group and is
stopped by that group's id, never by name (other test sessions run the same binary).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PUSHGATEWAY_BINARIES = ("prometheus-pushgateway", "pushgateway")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pushgateway_binary() -> str | None:
    for name in PUSHGATEWAY_BINARIES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class Pushgateway:
    url: str
    process: subprocess.Popen

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as resp:
            return resp.read().decode()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@contextlib.contextmanager
def pushgateway(binary: str) -> Iterator[Pushgateway]:
    port = free_port()
    process = subprocess.Popen(
        # No persistence file: Debian defaults to one shared /var/lib path.
        [
            binary,
            f"--web.listen-address=127.0.0.1:{port}",
            "--persistence.file=",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    gateway = Pushgateway(url=f"http://127.0.0.1:{port}", process=process)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{gateway.url}/-/ready", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the Pushgateway did not start") from None
                time.sleep(0.1)
        yield gateway
    finally:
        gateway.stop()


@dataclass
class LineageReceiver:
    """Records every OpenLineage event POSTed to it (any path), in arrival order."""

    url: str
    events: list[dict] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)


@contextlib.contextmanager
def lineage_receiver() -> Iterator[LineageReceiver]:
    server_ref: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver = server_ref["receiver"]
            with server_ref["lock"]:
                receiver.events.append(json.loads(body))
                receiver.paths.append(self.path)
                receiver.headers.append(dict(self.headers))
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = LineageReceiver(url=f"http://127.0.0.1:{server.server_address[1]}")
    server_ref.update(receiver=receiver, lock=threading.Lock())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
