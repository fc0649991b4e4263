"""Erlang nodes running TLS distribution, for the TLS matrix tests (helpers, no tests here).

Two backends with one small interface:

* :class:`LocalTLSBackend` -- the machine's ``erl`` (OTP 25 here);
* :class:`DockerTLSBackend` -- ``erl`` inside ``erlbridge-node:otpNN`` containers on a Docker
  network the test session creates (:class:`erlbridge.testing.docker_cluster.DockerNetwork`);
  the host reaches them at their container address, they reach our Python nodes at the
  network's gateway address.

Both run a private EPMD port (``ERL_EPMD_PORT``; the host's EPMD answers the containers on
the gateway address), keep the cookie in ``~/.erlang.cookie`` (never on argv) and start each
node with ``-proto_dist inet_tls -ssl_dist_optfile F`` or as a plain TCP node.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from erlbridge.asyncio import epmd as epmd_client
from erlbridge.exceptions import ErlbridgeError
from erlbridge.testing import CookieHome, free_port, new_cookie
from erlbridge.testing.tls import CertFiles, TestCA, write_ssl_dist_optfile

FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))


def scaled(seconds: float) -> float:
    return seconds * FACTOR


@dataclass
class Certs:
    """The test PKI: a good CA and a foreign one, with the certificates the cases need."""

    ca: TestCA
    other: TestCA
    root: Path

    def leaf(self, name: str, hosts: list[str], *, expired: bool = False, wrong_ca: bool = False
             ) -> CertFiles:
        issuer = self.other if wrong_ca else self.ca
        return issuer.issue(name, hosts=hosts, expired=expired)


def make_certs(root: Path) -> Certs:
    return Certs(TestCA.create(root / "ca"), TestCA.create(root / "other", common_name="other CA"),
                 root)


class TLSBackend:
    """Base: names, EPMD, waiting for a node to register."""

    otp: str
    host: str  # address in the names of the Erlang nodes (one per backend, local)
    client_host: str  # address of our Python nodes, as the Erlang nodes reach it

    def __init__(self, root: Path, certs: Certs) -> None:
        self.root = root
        self.certs = certs
        self.cookie = new_cookie()
        self.home = CookieHome(root / "home", self.cookie)
        self.epmd_port = free_port()
        self.epmd = subprocess.Popen(
            ["epmd", "-port", str(self.epmd_port)],
            env=self.home.env({"ERL_EPMD_PORT": str(self.epmd_port)}),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def node_host(self, alive: str) -> str:
        return self.host

    async def wait_registered(self, alive: str, host: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + scaled(timeout)
        while True:
            try:
                await epmd_client.port_please(host, alive, epmd_port=self.epmd_port, timeout=2)
                return
            except ErlbridgeError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    def optfile(self, alive: str, cert: CertFiles, ca_file: Path) -> Path:
        return write_ssl_dist_optfile(self.root / f"{alive}.conf", ca_file=ca_file, cert=cert)

    def start(self, alive: str, *, cert: CertFiles | None, ca_file: Path | None = None) -> str:
        """Start ``alive@<host>`` (TLS when ``cert`` is given); returns the node name."""
        raise NotImplementedError

    def close(self) -> None:
        self.epmd.terminate()
        self.epmd.wait(10)


class LocalTLSBackend(TLSBackend):
    def __init__(self, root: Path, certs: Certs) -> None:
        super().__init__(root, certs)
        erl = shutil.which("erl")
        assert erl is not None
        self.erl = erl
        self.host = "127.0.0.1"
        self.client_host = "127.0.0.1"
        out = subprocess.run(
            [erl, "-noshell", "-eval",
             'io:put_chars(erlang:system_info(otp_release)), halt().'],
            capture_output=True, text=True, check=True, env=self.home.env(),
        )
        self.otp = out.stdout.strip()
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, alive: str, *, cert: CertFiles | None, ca_file: Path | None = None) -> str:
        name = f"{alive}@{self.host}"
        args = [self.erl, "-noshell", "-noinput", "-name", name]
        if cert is not None:
            conf = self.optfile(alive, cert, ca_file or self.certs.ca.ca_file)
            args += ["-proto_dist", "inet_tls", "-ssl_dist_optfile", str(conf)]
        log = self.root / f"{alive}.log"
        self.procs.append(subprocess.Popen(
            args, env=self.home.env({"ERL_EPMD_PORT": str(self.epmd_port)}),
            stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=self.root,
        ))
        asyncio.run(self.wait_registered(alive, self.host))
        return name

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
        super().close()


def _tar(files: dict[str, bytes], mode: int = 0o444) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = {name.rsplit("/", 1)[0] for name in files if "/" in name}
        for directory in sorted(dirs):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class DockerTLSBackend(TLSBackend):
    """``erl`` in containers of ``erlbridge-node:otp<otp>`` (one container per node)."""

    def __init__(self, root: Path, certs: Certs, *, otp: str, network: Any) -> None:
        super().__init__(root, certs)
        self.otp = otp
        self.network = network
        self.client = network.client
        self.image = f"erlbridge-node:otp{otp}"
        self.client.images.get(self.image)  # raises ImageNotFound early
        self.client_host = network.gateway
        self.host = ""  # one address per container: see node_host
        self._addresses: dict[str, str] = {}
        self.containers: list[Any] = []

    def node_host(self, alive: str) -> str:
        if alive not in self._addresses:
            self._addresses[alive] = self.network.allocate(1)[0]
        return self._addresses[alive]

    def start(self, alive: str, *, cert: CertFiles | None, ca_file: Path | None = None) -> str:
        from erlbridge.testing.docker_cluster import SESSION_LABEL  # noqa: PLC0415

        ip = self.node_host(alive)
        name = f"{alive}@{ip}"
        command = ["erl", "-noshell", "-noinput", "-name", name]
        files: dict[str, bytes] = {"cookie": self.cookie.encode()}
        if cert is not None:
            ca = ca_file or self.certs.ca.ca_file
            files.update({"ca.pem": ca.read_bytes(), "node.pem": cert.cert.read_bytes(),
                          "node.key": cert.key.read_bytes()})
            inside = CertFiles(Path("/certs/node.pem"), Path("/certs/node.key"),
                               Path("/certs/ca.pem"))
            conf = write_ssl_dist_optfile(self.root / f"{alive}-{self.otp}.conf",
                                          ca_file="/certs/ca.pem", cert=inside)
            files["dist.conf"] = conf.read_bytes()
            command += ["-proto_dist", "inet_tls", "-ssl_dist_optfile", "/certs/dist.conf"]
        api = self.client.api
        created = api.create_container(
            self.image,
            command=command,
            name=f"{self.network.name}-tls{self.otp}-{alive}",
            environment={"ERLANG_COOKIE_FILE": "/certs/cookie",
                         "ERL_EPMD_PORT": str(self.epmd_port)},
            labels={SESSION_LABEL: self.network.name},
            networking_config=api.create_networking_config(
                {self.network.name: api.create_endpoint_config(ipv4_address=ip)}),
            host_config=api.create_host_config(),
        )
        container = self.client.containers.get(created["Id"])
        self.containers.append(container)
        container.put_archive("/", _tar({"certs/" + k: v for k, v in files.items()}))
        container.start()
        asyncio.run(self.wait_registered(alive, ip, timeout=90))
        return name

    def logs(self) -> str:
        return "\n".join(bytes(c.logs(tail=30)).decode(errors="replace")
                         for c in self.containers)

    def close(self) -> None:
        for container in self.containers:
            with contextlib.suppress(Exception):  # cleanup goes on
                container.remove(force=True)
        super().close()
