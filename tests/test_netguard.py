"""The test session's network guard: loopback allowed, anything else blocked."""

from __future__ import annotations

import socket

import pytest

from llmlab.kit.netguard import NetworkBlocked, is_loopback


@pytest.mark.parametrize("address,expected", [
    (("127.0.0.1", 80), True), (("::1", 80, 0, 0), True), (("localhost", 8888), True), ("/tmp/kernel.sock", True),
    (("8.8.8.8", 53), False), (("10.0.0.1", 80), False), (("huggingface.co", 443), False),
])
def test_is_loopback(address, expected):
    assert is_loopback(address) is expected


def test_non_loopback_connection_is_blocked():
    with socket.socket() as s, pytest.raises(NetworkBlocked, match="blocked"):
        s.connect(("93.184.216.34", 80))


def test_loopback_connection_still_works():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.socket() as client:
            client.connect(server.getsockname())
            conn, _ = server.accept()
            conn.close()
