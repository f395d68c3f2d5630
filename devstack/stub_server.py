"""A stub single-user server: one threaded HTTP server that answers for every pod when the
fake kubelet runs none (``KubeStandIn(run_servers=False, pod_ip="127.0.0.1")`` with the
spawner's ``port`` set to this server's). Spawn figures then measure the hub, the spawner and
the API path alone."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["StubServerHandler", "stub_server"]


class StubServerHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with 200, like a single-user server the hub waits for."""

    version_header = ""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("X-JupyterHub-Version", self.version_header)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def stub_server() -> Iterator[int]:
    """A threaded stub single-user server on 127.0.0.1; yields its port."""
    import jupyterhub

    StubServerHandler.version_header = jupyterhub.__version__
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StubServerHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
