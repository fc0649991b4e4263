"""TLS distribution against real nodes: success both ways, wrong CA, expired certificate,
hostname check, plaintext peers -- each a clear typed error (TLSError / HandshakeError).

Backends: the local ``erl`` (OTP 25 on this machine) and containers of
``erlbridge-node:otp27`` / ``otp29`` on a Docker network created by the test session.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import shutil
import ssl
import sys
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from eb_tls_backends import (
    Certs,
    DockerTLSBackend,
    LocalTLSBackend,
    TLSBackend,
    make_certs,
    scaled,
)

from erlbridge.asyncio.node import Node
from erlbridge.asyncio.tls import TLSOptions
from erlbridge.exceptions import HandshakeError, TLSError
from erlbridge.term import Atom
from erlbridge.testing.tls import write_ssl_dist_optfile

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

BACKENDS = [
    pytest.param("local", id="local"),
    pytest.param("25", id="otp25", marks=pytest.mark.docker),
    pytest.param("27", id="otp27", marks=pytest.mark.docker),
    pytest.param("29", id="otp29", marks=pytest.mark.docker),
]
_names = itertools.count(1)


def run(coro: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
    async def guarded() -> Any:
        async with asyncio.timeout(scaled(timeout)):
            return await coro

    return asyncio.run(guarded())


class Env:
    """A backend with its TLS nodes started: ``tls`` (good certificate), ``expired``,
    ``nohost`` (certificate for another host name), ``plain`` (TCP distribution)."""

    def __init__(self, backend: TLSBackend, certs: Certs) -> None:
        self.backend = backend
        self.certs = certs
        b = backend
        self.tls = b.start("tls", cert=certs.leaf("tls", [b.node_host("tls")]))
        self.expired = b.start(
            "expired", cert=certs.leaf("expired", [b.node_host("expired")], expired=True)
        )
        self.nohost = b.start("nohost", cert=certs.leaf("nohost", ["elsewhere.invalid"]))
        self.plain = b.start("plain", cert=None)

    def py_name(self) -> str:
        return f"py{next(_names)}@{self.backend.client_host}"

    def options(
        self, name: str, *, expired: bool = False, wrong_ca: bool = False,
        trust_other: bool = False, **kw: Any
    ) -> TLSOptions:
        """Our certificate for ``name`` and trust in the good CA (or the foreign one)."""
        alive = name.split("@", maxsplit=1)[0]
        leaf = self.certs.leaf(alive, [self.backend.client_host], expired=expired,
                               wrong_ca=wrong_ca)
        ca = self.certs.other.ca_file if trust_other else self.certs.ca.ca_file
        return TLSOptions(ca_file=ca, cert_file=leaf.cert, key_file=leaf.key, **kw)

    def node(self, tls: TLSOptions | None, *, listen: bool = False, name: str | None = None
             ) -> Node:
        return Node(
            name or self.py_name(),
            cookie=self.backend.cookie,
            epmd_port=self.backend.epmd_port,
            listen=listen,
            tls=tls,
            connect_timeout=scaled(20),
        )


@pytest.fixture(scope="module", params=BACKENDS)
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Env]:
    root = tmp_path_factory.mktemp(f"tls-{request.param}")
    certs = make_certs(root / "pki")
    backend: TLSBackend
    network = None
    if request.param == "local":
        if shutil.which("erl") is None:
            pytest.skip("erl is not installed")
        backend = LocalTLSBackend(root, certs)
    else:
        try:
            from erlbridge.testing.docker_cluster import (  # noqa: PLC0415
                DockerNetwork,
                docker_client,
            )
            client = docker_client()
            client.images.get(f"erlbridge-node:otp{request.param}")
        except Exception as exc:  # no SDK / engine / image
            if os.environ.get("CI"):
                raise
            pytest.skip(f"docker backend unavailable: {exc}")
        network = DockerNetwork(client).create()
        backend = DockerTLSBackend(root, certs, otp=request.param, network=network)
    try:
        yield Env(backend, certs)
    finally:
        backend.close()
        if network is not None:
            network.remove()


def _tls_address(info: Any) -> bool:
    """net_kernel:node_info/1 says the connection's protocol is tls."""
    return "tls" in repr(info)


# -- dialling a TLS node --------------------------------------------------------------


def test_security_tls_dial_ok(env: Env) -> None:
    async def body() -> None:
        name = env.py_name()
        async with env.node(env.options(name), name=name) as node:
            assert await node.rpc(env.tls, "erlang", "node", []) == Atom(env.tls)
            ok, info = await node.rpc(env.tls, "net_kernel", "node_info", [Atom(name)])
            assert ok == Atom("ok")
            assert _tls_address(info), info
            assert (Atom("type"), Atom("hidden")) in info

    run(body())


def test_security_tls_dial_with_erlang_optfile(env: Env, tmp_path: Path) -> None:
    """The Python node reads its TLS settings from an Erlang -ssl_dist_optfile."""

    async def body() -> None:
        name = env.py_name()
        leaf = env.certs.leaf(name.split("@", 1)[0], [env.backend.client_host])
        conf = write_ssl_dist_optfile(tmp_path / "py.conf", ca_file=env.certs.ca.ca_file,
                                      cert=leaf)
        async with env.node(TLSOptions.from_ssl_dist_optfile(conf), name=name) as node:
            assert await node.rpc(env.tls, "erlang", "node", []) == Atom(env.tls)

    run(body())


def test_security_tls_dial_wrong_ca(env: Env) -> None:
    """We trust only a foreign CA: the server's certificate does not verify."""

    async def body() -> None:
        name = env.py_name()
        async with env.node(env.options(name, trust_other=True), name=name) as node:
            with pytest.raises(TLSError) as info:
                await node.connect(env.tls)
            assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
            assert "certificate verification failed" in str(info.value)

    run(body())


def test_security_tls_dial_our_cert_from_wrong_ca(env: Env) -> None:
    """The server refuses our certificate (unknown CA): alert, TLSError."""

    async def body() -> None:
        name = env.py_name()
        async with env.node(env.options(name, wrong_ca=True), name=name) as node:
            with pytest.raises(TLSError) as info:
                await node.connect(env.tls)
            assert info.value.reason is not None
            assert "UNKNOWN_CA" in info.value.reason.upper(), info.value.reason

    run(body())


def test_security_tls_dial_server_cert_expired(env: Env) -> None:
    async def body() -> None:
        name = env.py_name()
        async with env.node(env.options(name), name=name) as node:
            with pytest.raises(TLSError) as info:
                await node.connect(env.expired)
            assert "expired" in str(info.value)

    run(body())


def test_security_tls_dial_our_cert_expired(env: Env) -> None:
    async def body() -> None:
        name = env.py_name()
        async with env.node(env.options(name, expired=True), name=name) as node:
            with pytest.raises(TLSError) as info:
                await node.connect(env.tls)
            assert "EXPIRED" in str(info.value.reason).upper(), info.value.reason

    run(body())


def test_security_tls_dial_hostname_check(env: Env) -> None:
    """The certificate names another host: refused unless hostname checks are off."""

    async def body() -> None:
        name = env.py_name()
        async with env.node(env.options(name), name=name) as node:
            with pytest.raises(TLSError) as info:
                await node.connect(env.nohost)
            assert "mismatch" in str(info.value).lower() or "match" in str(info.value).lower()
        name = env.py_name()
        relaxed = env.options(name, check_hostname=False)
        async with env.node(relaxed, name=name) as node:
            assert await node.rpc(env.nohost, "erlang", "node", []) == Atom(env.nohost)

    run(body())


def test_security_tls_dial_plaintext_node(env: Env) -> None:
    """TLS to a plain TCP node: the node waits for a 2-byte-framed name that never comes;
    the TLS handshake times out -> TLSError (not a hang)."""

    async def body() -> None:
        name = env.py_name()
        opts = env.options(name, handshake_timeout=scaled(3))
        async with env.node(opts, name=name) as node:
            with pytest.raises(TLSError) as info:
                await node.connect(env.plain)
            assert info.value.reason in ("timeout", "closed"), info.value

    run(body())


def test_security_tls_plaintext_client_to_tls_node(env: Env) -> None:
    """A plain-TCP Python node dialling a TLS node: the node drops our name -> HandshakeError."""

    async def body() -> None:
        async with env.node(None) as node:
            with pytest.raises(HandshakeError) as info:
                await node.connect(env.tls)
            assert not isinstance(info.value, TLSError)

    run(body())


# -- a TLS node dialling us ------------------------------------------------------------


def test_security_tls_accept_ok(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        client_name, acc_name = env.py_name(), env.py_name()
        async with env.node(env.options(client_name), name=client_name) as client, \
                env.node(env.options(acc_name), listen=True, name=acc_name) as acceptor:
            result = await client.rpc(env.tls, "net_kernel", "connect_node", [Atom(acc_name)])
            assert result is True
            assert Atom(env.tls) in acceptor.connected_nodes()
            # the Erlang node reaches back through the TLS connection it made
            ok, info = await client.rpc(env.tls, "net_kernel", "node_info", [Atom(acc_name)])
            assert ok == Atom("ok") and _tls_address(info), info

    run(body())


@pytest.mark.parametrize(
    ("case", "kw", "reason"),
    [
        ("our_cert_wrong_ca", {"wrong_ca": True}, "UNKNOWN_CA"),
        ("our_cert_expired", {"expired": True}, "EXPIRED"),
        ("their_cert_untrusted", {"trust_other": True}, "CERTIFICATE_VERIFICATION_FAILED"),
    ],
)
def test_security_tls_accept_refused(
    env: Env, caplog: pytest.LogCaptureFixture, case: str, kw: dict[str, Any], reason: str
) -> None:
    """The Erlang node cannot connect to us: connect_node is false, our node logs a
    TLSError for the incoming connection and has no connection."""

    async def body() -> None:
        client_name, acc_name = env.py_name(), env.py_name()
        async with env.node(env.options(client_name), name=client_name) as client, \
                env.node(env.options(acc_name, **kw), listen=True, name=acc_name) as acceptor:
            with caplog.at_level(logging.WARNING):
                result = await client.rpc(
                    env.tls, "net_kernel", "connect_node", [Atom(acc_name)]
                )
                await asyncio.sleep(0.2)
            assert result is False
            assert acceptor.connected_nodes() == []
        records = [r for r in caplog.records if "incoming TLS connection" in r.getMessage()]
        assert records, [r.getMessage() for r in caplog.records]
        text = " ".join(r.getMessage() for r in records).upper().replace(" ", "_")
        assert reason in text, text

    run(body())


def test_security_tls_under_uvloop(env: Env) -> None:
    """Both directions work on uvloop too (accepting falls back to the loop's own TLS)."""
    import uvloop  # noqa: PLC0415 -- dev extra

    async def body() -> None:
        client_name, acc_name = env.py_name(), env.py_name()
        async with env.node(env.options(client_name), name=client_name) as client, \
                env.node(env.options(acc_name), listen=True, name=acc_name) as acceptor:
            assert await client.rpc(env.tls, "erlang", "node", []) == Atom(env.tls)
            result = await client.rpc(env.tls, "net_kernel", "connect_node", [Atom(acc_name)])
            assert result is True
            assert Atom(env.tls) in acceptor.connected_nodes()
            with pytest.raises(TLSError):
                await client.connect(env.expired)

    async def guarded() -> None:
        async with asyncio.timeout(scaled(60)):
            await body()

    uvloop.run(guarded())
