"""TLS distribution (``-proto_dist inet_tls``): options, contexts, accepting.

See docs/internals/otp-facts.md#tls-distribution.

EPMD stays plaintext; only the distribution connection is wrapped. Inside TLS every
handshake message has a 4-byte length (``{packet, 4}``), not the 2 bytes of TCP; the node
passes ``packet_bytes=4`` to the handshake when it uses TLS.

Use::

    tls = TLSOptions(ca_file="ca.pem", cert_file="node.pem", key_file="node.key")
    async with Node("py@10.0.0.5", tls=tls) as node: ...

Both directions verify the peer's certificate against ``ca_file`` by default (the server
side requires a client certificate, like ``fail_if_no_peer_cert``). Failures are raised
(dialling) or logged (accepting) as :class:`~erlbridge.exceptions.TLSError` with the
``ssl`` error chained.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from erlbridge.exceptions import TLSError

__all__ = ["TLSAcceptor", "TLSOptions", "accepts_with_start_tls", "tls_error"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TLSOptions:
    """How a node speaks TLS distribution. Keyword-only; paths may be ``str`` or ``Path``.

    ``ca_file``: PEM bundle the peer's chain must lead to (None: the system store).
    ``cert_file`` / ``key_file``: our certificate chain and key (PEM), shown to servers we
    dial and to clients that dial us; required for accepting. ``key_password``: for an
    encrypted key (never shown in ``repr``). ``verify_peer``: verify the peer's certificate
    (server side: require one). ``check_hostname``: when dialling, the server's certificate
    must name the host of the node name (an IP address matches an IP SAN).
    ``min_version``: lowest TLS version accepted. ``handshake_timeout``: seconds for the TLS
    handshake (the distribution handshake has its own deadline). ``server_hostname``:
    override the name checked and sent as SNI when dialling (None: the node's host).
    """

    ca_file: str | Path | None = None
    cert_file: str | Path | None = None
    key_file: str | Path | None = None
    key_password: str | None = field(default=None, repr=False)
    verify_peer: bool = True
    check_hostname: bool = True
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    handshake_timeout: float = 10.0
    server_hostname: str | None = None

    @classmethod
    def from_ssl_dist_optfile(
        cls, path: str | Path, *, side: str = "client", **overrides: Any
    ) -> TLSOptions:
        """Options from an Erlang ``-ssl_dist_optfile`` (``[{server, Opts}, {client, Opts}]``),
        so a Python node can reuse the cluster's TLS files.

        Reads ``side`` (``"client"`` or ``"server"``): ``cacertfile``, ``certfile``,
        ``keyfile``, ``password``, ``verify`` (``verify_none`` turns verification off),
        ``server_name_indication`` (``disable`` turns the hostname check off) and
        ``versions`` (the lowest becomes ``min_version``); other options are ignored.
        ``overrides`` are TLSOptions fields that win. Raises OSError, TermSyntaxError,
        ValueError (no such section).
        """
        from erlbridge.term import parse_terms  # noqa: PLC0415 -- only needed here

        terms = parse_terms(Path(path).read_text(encoding="utf-8"))
        sections = terms[0] if len(terms) == 1 and isinstance(terms[0], list) else []
        opts: dict[str, Any] = {}
        for entry in sections:
            if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == side:
                for opt in entry[1]:
                    if isinstance(opt, tuple) and len(opt) == 2:
                        opts[str.__str__(opt[0])] = opt[1]
                break
        else:
            raise ValueError(f"{path} has no {side!r} section")
        fields: dict[str, Any] = {}
        for erl, ours in (
            ("cacertfile", "ca_file"),
            ("certfile", "cert_file"),
            ("keyfile", "key_file"),
            ("password", "key_password"),
        ):
            if erl in opts:
                fields[ours] = _text(opts[erl])
        if opts.get("verify") == "verify_none":
            fields["verify_peer"] = False
        if opts.get("server_name_indication") == "disable":
            fields["check_hostname"] = False
        names = [str.__str__(v) for v in opts.get("versions", []) if isinstance(v, str)]
        versions = [_VERSIONS[n] for n in names if n in _VERSIONS]
        if versions:
            fields["min_version"] = min(versions)
        fields.update(overrides)
        return cls(**fields)

    def _load(self, ctx: ssl.SSLContext) -> None:
        ctx.minimum_version = self.min_version
        if self.verify_peer:
            if self.ca_file is not None:
                ctx.load_verify_locations(cafile=str(self.ca_file))
            else:
                ctx.load_default_certs(
                    ssl.Purpose.CLIENT_AUTH
                    if ctx.protocol is ssl.PROTOCOL_TLS_SERVER
                    else ssl.Purpose.SERVER_AUTH
                )
        if self.cert_file is not None:
            ctx.load_cert_chain(
                str(self.cert_file),
                str(self.key_file) if self.key_file is not None else None,
                password=self.key_password,
            )

    def client_context(self) -> ssl.SSLContext:
        """A context for dialling a TLS node (raises ``ssl.SSLError``/``OSError`` for bad
        files)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = self.verify_peer and self.check_hostname
        ctx.verify_mode = ssl.CERT_REQUIRED if self.verify_peer else ssl.CERT_NONE
        self._load(ctx)
        return ctx

    def server_context(self) -> ssl.SSLContext:
        """A context for accepting TLS connections; needs ``cert_file``."""
        if self.cert_file is None:
            raise ValueError("accepting TLS connections needs cert_file (and key_file)")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.verify_mode = ssl.CERT_REQUIRED if self.verify_peer else ssl.CERT_NONE
        self._load(ctx)
        return ctx


_VERSIONS = {
    "tlsv1.3": ssl.TLSVersion.TLSv1_3,
    "tlsv1.2": ssl.TLSVersion.TLSv1_2,
    "tlsv1.1": ssl.TLSVersion.TLSv1_1,
    "tlsv1": ssl.TLSVersion.TLSv1,
}


def _text(value: Any) -> str:
    """A charlist/ErlString/binary/atom option value as text."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list):
        return "".join(chr(c) for c in value)
    text = getattr(value, "text", None)
    return text if isinstance(text, str) else str.__str__(value)


def tls_error(exc: BaseException, peer: str) -> TLSError:
    """Wrap an ``ssl``/socket failure of a TLS handshake with ``peer`` in a TLSError
    (the caller chains ``exc`` with ``raise ... from exc``)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
        return TLSError(peer, f"certificate verification failed: {reason}", reason=reason)
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or str(exc)
        return TLSError(peer, f"TLS failure: {reason}", reason=reason)
    if isinstance(exc, TimeoutError | ConnectionAbortedError):
        # asyncio aborts a TLS handshake that outlives ssl_handshake_timeout with
        # ConnectionAbortedError; a plaintext Erlang node just waits for more bytes.
        return TLSError(
            peer,
            f"TLS handshake did not complete ({exc or 'timed out'}; is it a TLS node?)",
            reason="timeout",
        )
    if isinstance(exc, ConnectionError | EOFError):
        return TLSError(
            peer,
            "the peer closed the connection during the TLS handshake "
            "(is it a TLS node? does it accept our certificate?)",
            reason="closed",
        )
    return TLSError(peer, f"TLS handshake failed: {exc}", reason=type(exc).__name__)


def accepts_with_start_tls(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether :class:`TLSAcceptor` works on ``loop``: asyncio's own loops. uvloop's
    ``start_tls`` never completes a server-side handshake on an accepted socket (observed
    with uvloop 0.23), so there the node lets ``create_server(ssl=...)`` do the handshake
    and failed incoming handshakes are not logged."""
    return isinstance(loop, asyncio.BaseEventLoop)


class StreamTarget(Protocol):
    """What the acceptor hands the TLS transport to (the distribution connection)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None: ...

    def data_received(self, data: bytes) -> None: ...

    def connection_lost(self, exc: Exception | None) -> None: ...


class TLSAcceptor(asyncio.Protocol):
    """Server side: accept TCP, run the TLS handshake, then hand the TLS transport to the
    protocol made by ``factory``.

    Doing the handshake with ``loop.start_tls`` instead of ``create_server(ssl=...)`` lets
    a failed handshake (wrong CA, expired certificate, a plaintext peer) be logged and
    reported to ``on_failure`` -- asyncio's own server drops such a connection silently.
    """

    def __init__(
        self,
        factory: Callable[[], StreamTarget],
        context: ssl.SSLContext,
        *,
        handshake_timeout: float,
        on_failure: Callable[[TLSError], None] | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self._factory = factory
        self._context = context
        self._timeout = handshake_timeout
        self._on_failure = on_failure
        self._log = log or logger
        self._buffer: list[bytes] = []
        self._lost = False
        self._target: StreamTarget | None = None
        self._task: asyncio.Task[None] | None = None
        self._peer = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # not isinstance-checked: uvloop's transports do not subclass asyncio.Transport
        transport = cast(asyncio.Transport, transport)
        # Nothing may be read as plain data before start_tls takes over the transport.
        transport.pause_reading()
        peer = transport.get_extra_info("peername")
        if peer:
            self._peer = f"{peer[0]}:{peer[1]}"
        self._task = asyncio.get_running_loop().create_task(self._upgrade(transport))

    async def _upgrade(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        try:
            tls_transport = await loop.start_tls(
                transport,
                self,
                self._context,
                server_side=True,
                ssl_handshake_timeout=self._timeout,
            )
        except (OSError, TimeoutError, EOFError, ssl.SSLError) as exc:
            transport.abort()
            error = tls_error(exc, self._peer)
            error.__cause__ = exc
            self._log.warning("incoming TLS connection from %s refused: %s", self._peer, error)
            if self._on_failure is not None:
                self._on_failure(error)
            return
        if tls_transport is None:  # closed meanwhile
            transport.abort()
            return
        target = self._factory()
        self._target = target
        tls_transport.set_protocol(cast(asyncio.BaseProtocol, target))
        target.connection_made(tls_transport)
        for chunk in self._buffer:
            target.data_received(chunk)
        self._buffer.clear()
        if self._lost:
            target.connection_lost(None)

    # Between the end of the TLS handshake and the hand-over, data and a close can reach
    # this protocol: keep them for the target.
    def data_received(self, data: bytes) -> None:
        if self._target is not None:
            self._target.data_received(data)
        else:
            self._buffer.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._target is not None:
            self._target.connection_lost(exc)
        else:
            self._lost = True

    def eof_received(self) -> bool | None:
        return None
