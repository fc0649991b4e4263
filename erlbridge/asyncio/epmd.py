"""EPMD client: PORT_PLEASE2, NAMES and a kept-open ALIVE2 registration.

See docs/internals/otp-facts.md#epmd.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time

from erlbridge.exceptions import EpmdError, EpmdUnreachable, Timeout
from erlbridge.protocol import epmd as proto

__all__ = ["EpmdRegistration", "epmd_port_from_env", "names", "port_please", "start_daemon"]

logger = logging.getLogger(__name__)


def epmd_port_from_env(epmd_port: int | None = None) -> int:
    """``epmd_port`` if given, else ``$ERL_EPMD_PORT``, else 4369."""
    if epmd_port is not None:
        return epmd_port
    env = os.environ.get("ERL_EPMD_PORT")
    return int(env) if env else proto.DEFAULT_EPMD_PORT


async def _open(
    host: str, port: int, timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError as exc:
        raise Timeout(f"connecting to EPMD at {host}:{port}", timeout) from exc
    except ConnectionRefusedError as exc:
        raise EpmdUnreachable(f"cannot reach EPMD at {host}:{port}: {exc}") from exc
    except OSError as exc:
        raise EpmdError(f"cannot reach EPMD at {host}:{port}: {exc}") from exc


async def start_daemon(epmd_port: int | None = None, *, timeout: float = 5.0) -> None:
    """Start a local ``epmd -daemon`` on the port, as ``erl -name`` does when none runs.

    Returns once it accepts connections. Raises EpmdUnreachable if no ``epmd`` executable is
    on PATH, EpmdError if it does not come up within ``timeout`` seconds.
    """
    port = epmd_port_from_env(epmd_port)
    exe = shutil.which("epmd")
    if exe is None:
        raise EpmdUnreachable(
            f"no EPMD listens on port {port} and no epmd executable is on PATH to start one "
            "(install Erlang, start epmd, or use listen=False for outgoing connections only)"
        )
    proc = await asyncio.create_subprocess_exec(
        exe,
        "-daemon",
        "-port",
        str(port),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    # -daemon forks and the parent exits at once; a second epmd racing for the port exits
    # too, which is fine: all we need is that one listens.
    await asyncio.wait_for(proc.wait(), timeout)
    deadline = time.monotonic() + timeout
    while True:
        try:
            _reader, writer = await _open("127.0.0.1", port, timeout)
        except EpmdUnreachable:
            if time.monotonic() > deadline:
                msg = f"started {exe} -daemon -port {port}, but it does not listen"
                raise EpmdError(msg) from None
            await asyncio.sleep(0.02)
            continue
        writer.close()
        logger.info("started epmd on port %d (none was running)", port)
        return


async def port_please(
    host: str, name: str, *, epmd_port: int | None = None, timeout: float = 5.0
) -> proto.PortInfo:
    """Ask the EPMD on ``host`` where node ``name`` (name part only) listens.

    Raises NodeNotFound if EPMD does not know it, EpmdError if EPMD is unreachable.
    """
    port = epmd_port_from_env(epmd_port)
    reader, writer = await _open(host, port, timeout)
    try:
        writer.write(proto.port_please2_request(name))
        data = b""
        async with asyncio.timeout(timeout):
            while True:
                chunk = await reader.read(4096)
                data += chunk
                info = proto.parse_port2_response(data, name=name)
                if info is not None:
                    return info
                if not chunk:
                    raise EpmdError(f"EPMD closed before answering PORT_PLEASE2 for {name!r}")
    except TimeoutError as exc:
        raise Timeout(f"EPMD port_please for {name!r}", timeout) from exc
    finally:
        writer.close()


async def names(
    host: str = "127.0.0.1", *, epmd_port: int | None = None, timeout: float = 5.0
) -> dict[str, int]:
    """Names registered with the EPMD on ``host``, mapped to their ports."""
    port = epmd_port_from_env(epmd_port)
    reader, writer = await _open(host, port, timeout)
    try:
        writer.write(proto.names_request())
        async with asyncio.timeout(timeout):
            data = await reader.read()
        return proto.parse_names_response(data)
    except TimeoutError as exc:
        raise Timeout("EPMD names", timeout) from exc
    finally:
        writer.close()


class EpmdRegistration:
    """An ALIVE2 registration; the TCP connection stays open for the node's lifetime."""

    def __init__(self, name: str, creation: int, writer: asyncio.StreamWriter) -> None:
        self.name = name
        self.creation = creation
        self._writer = writer

    @classmethod
    async def register(
        cls,
        name: str,
        listen_port: int,
        *,
        hidden: bool,
        host: str = "127.0.0.1",
        epmd_port: int | None = None,
        timeout: float = 5.0,
    ) -> EpmdRegistration:
        """Register ``name`` (name part) as listening on ``listen_port``.

        Raises RegistrationError if the name is taken, EpmdUnreachable if no EPMD runs,
        EpmdError for other EPMD failures.
        """
        port = epmd_port_from_env(epmd_port)
        reader, writer = await _open(host, port, timeout)
        try:
            writer.write(proto.alive2_request(name, listen_port, hidden=hidden))
            data = b""
            async with asyncio.timeout(timeout):
                while True:
                    chunk = await reader.read(64)
                    data += chunk
                    creation = proto.parse_alive2_response(data)
                    if creation is not None:
                        break
                    if not chunk:
                        raise EpmdError("EPMD closed the registration connection")
        except TimeoutError as exc:
            writer.close()
            raise Timeout("EPMD registration", timeout) from exc
        except BaseException:
            writer.close()
            raise
        logger.debug("registered %s with EPMD on port %d, creation %d", name, port, creation)
        return cls(name, creation, writer)

    def close(self) -> None:
        """Unregister (closing the connection is how EPMD learns it)."""
        self._writer.close()
