"""The host part of the CLI's own node name, chosen from the first target's host.

A node listens on the address its name holds when that is an IP address, so the name
must hold an address of *this* machine: ``erlbridge-cli@172.18.0.5`` for a target
``app@172.18.0.5`` in a container would fail with "cannot assign requested address"
before connecting. The rule:

* the target's host is an address of this machine (loopback, a local interface): keep
  it, so the names match the cluster's exactly;
* a short host name (no dot) elsewhere: this machine's short host name, as
  ``erl -sname`` would (short and long names cannot be mixed in one cluster);
* else: the local address the kernel routes from towards the target (a UDP socket's
  ``connect`` picks it and sends no packet), which keeps a long name.

When nothing fits (the host does not resolve, no route), the target's host is kept:
the connection attempt then reports the real problem.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket

__all__ = ["local_host_for"]

_ANY_PORT = 9  # discard: nothing is sent to it, a UDP connect only picks a route


def local_host_for(target_host: str) -> str:
    """The host for this machine's node name when it talks to nodes on ``target_host``."""
    address = _address_of(target_host)
    if address is None or _is_local(address):
        return target_host
    if not _is_ip(target_host) and "." not in target_host:
        return socket.gethostname().split(".")[0]
    return _route_source(address) or target_host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _address_of(host: str) -> str | None:
    if _is_ip(host):
        return host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    return str(infos[0][4][0]) if infos else None


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _is_local(address: str) -> bool:
    """True when this machine can bind ``address`` (it is one of its own)."""
    with contextlib.suppress(OSError), socket.socket(_family(address), socket.SOCK_DGRAM) as s:
        s.bind((address, 0))
        return True
    return False


def _route_source(address: str) -> str | None:
    """The local address the kernel would send from towards ``address`` (no packet)."""
    with contextlib.suppress(OSError), socket.socket(_family(address), socket.SOCK_DGRAM) as s:
        s.connect((address, _ANY_PORT))
        return str(s.getsockname()[0])
    return None
