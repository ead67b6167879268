"""A guard that makes any non-loopback network connection fail loudly (used by the test suite)."""

from __future__ import annotations

import ipaddress
import socket

_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex


class NetworkBlocked(OSError):
    """Raised when code tries to reach a non-loopback address while the guard is on."""


def is_loopback(address) -> bool:
    """Whether a socket address stays on this machine (loopback IP, localhost or a Unix socket)."""
    if isinstance(address, (str, bytes)):
        return True  # AF_UNIX path
    host = address[0] if isinstance(address, tuple) and address else address
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _guarded_connect(self, address):
    if not is_loopback(address):
        raise NetworkBlocked(f"llmlab network guard: connection to {address!r} blocked (tests run offline)")
    return _original_connect(self, address)


def _guarded_connect_ex(self, address):
    if not is_loopback(address):
        raise NetworkBlocked(f"llmlab network guard: connection to {address!r} blocked (tests run offline)")
    return _original_connect_ex(self, address)


def block_network() -> None:
    """Make socket connections to non-loopback addresses raise NetworkBlocked."""
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex


def allow_network() -> None:
    """Undo block_network()."""
    socket.socket.connect = _original_connect
    socket.socket.connect_ex = _original_connect_ex
