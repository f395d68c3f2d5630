"""The demo's free-port check: a port left in TIME_WAIT by a stopped demo is free (the proxy
binds it with SO_REUSEADDR), a port something listens on is not."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from devstack.runner import port_is_free

_TIME_WAIT = "06"  # the state column of /proc/net/tcp


def _time_wait_ports() -> set[int]:
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == _TIME_WAIT:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _leave_time_wait() -> int:
    """A loopback port with a connection in TIME_WAIT on it and nothing listening: the
    server side closes first (as the proxy does when the demo stops), then the client.

    The listener sets SO_REUSEADDR as node's does: the TIME_WAIT socket inherits the flag,
    and Linux lets a later bind reuse the port only when both sides set it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port: int = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        served, _ = listener.accept()
        served.close()  # server side first: it is the one left in TIME_WAIT
        client.recv(1)  # the server's FIN has arrived
        client.close()
    for _ in range(200):
        if port in _time_wait_ports():
            return port
        time.sleep(0.01)
    pytest.fail(f"no TIME_WAIT connection appeared on port {port}")


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="TCP states read from /proc")
def test_a_port_in_time_wait_is_free() -> None:
    port = _leave_time_wait()
    assert port in _time_wait_ports()
    assert port_is_free(port)


def test_a_port_with_a_listener_is_not_free() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as node and tornado do
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        assert not port_is_free(port)
    assert port_is_free(port)


def test_a_port_with_a_wildcard_listener_is_not_free() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", 0))  # noqa: S104 - what a hub on all interfaces binds
        listener.listen(1)
        assert not port_is_free(listener.getsockname()[1])
