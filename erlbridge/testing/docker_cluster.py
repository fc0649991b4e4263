"""Docker backend of the test clusters (L4; needs the ``docker`` SDK, extra ``docker``).

:class:`DockerNetwork` is one user-defined bridge network per test session, with a
unique name and an explicit subnet so that every node gets a fixed address (its node
name is ``fixture@<ip>`` before it starts, and keeps it across restarts). Everything the
session creates carries the label ``org.erlbridge.session=<network name>``;
:meth:`DockerNetwork.remove` deletes those containers and the network.

:class:`DockerCluster` runs N containers of an ``erlbridge-node:otpNN`` image (see the
top-level ``Dockerfile``) on such a network. The cookie is copied into each container
as a file (``ERLANG_COOKIE_FILE``) before it starts: it is neither on a command line nor
in the container's environment.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import secrets
import tarfile
import time
from pathlib import Path
from typing import Any, ClassVar

from erlbridge.exceptions import InvalidState
from erlbridge.testing.cluster import Cluster, ClusterNode, NodeRef

__all__ = ["DockerCluster", "DockerNetwork", "docker_client", "node_image"]

logger = logging.getLogger(__name__)

SESSION_LABEL = "org.erlbridge.session"
COOKIE_PATH = "/run/erlbridge-cookie"
# The container's command (the image's entrypoint execs it after writing the cookie):
# boot the release start_erl.data names -- the permanent one, as a heart restart would.
# relx's bin/fixture always boots the version it was built with (1.0.0); release_handler
# never replaces it, but it does unpack bin/fixture-VSN with each release.
START_PERMANENT = (
    'vsn=$(cut -d" " -f2 "$FIXTURE_ROOT/releases/start_erl.data");'
    ' script="$FIXTURE_ROOT/bin/fixture-$vsn";'
    ' [ -x "$script" ] || script="$FIXTURE_ROOT/bin/fixture";'
    ' exec "$script" foreground'
)


def node_image(otp: str) -> str:
    """The node image tag for an OTP release, e.g. ``erlbridge-node:otp27``."""
    return f"erlbridge-node:otp{otp}"


def docker_client() -> Any:
    """A connected ``docker.DockerClient``; raises :class:`InvalidState` when there is no
    SDK or no engine answers."""
    try:
        import docker  # type: ignore[import-untyped]  # noqa: PLC0415 -- optional
    except ImportError as exc:
        raise InvalidState("the docker SDK is not installed (pip install 'erlbridge[docker]')"
                           ) from exc
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:  # any failure means: no engine
        raise InvalidState(f"no Docker engine answers: {exc}") from exc
    return client


class DockerNetwork:
    """A bridge network for one test session; create with :meth:`create`.

    Addresses are handed out from ``.10`` of the subnet by :meth:`allocate`.
    """

    def __init__(self, client: Any, *, name: str | None = None) -> None:
        self.client = client
        self.name = name or f"erlbridge-test-{secrets.token_hex(4)}"
        self.subnet: ipaddress.IPv4Network | None = None
        self.gateway: str | None = None
        self._network: Any = None
        self._next_host = 10

    def create(self) -> DockerNetwork:
        """Create the network; returns self.

        Docker only lets containers take fixed addresses on networks with a configured
        subnet, so a network is created first to learn a free subnet from Docker, then
        created again with that subnet stated explicitly.
        """
        import docker  # noqa: PLC0415

        labels = {SESSION_LABEL: self.name}
        last_error: Exception | None = None
        for _attempt in range(5):
            probe = self.client.networks.create(self.name, driver="bridge", labels=labels)
            try:
                probe.reload()
                subnet = probe.attrs["IPAM"]["Config"][0]["Subnet"]
            finally:
                probe.remove()
            net = ipaddress.IPv4Network(subnet)
            gateway = str(net.network_address + 1)
            ipam = docker.types.IPAMConfig(
                pool_configs=[docker.types.IPAMPool(subnet=subnet, gateway=gateway)]
            )
            try:
                self._network = self.client.networks.create(
                    self.name, driver="bridge", ipam=ipam, labels=labels)
            except docker.errors.APIError as exc:  # another network took the subnet
                last_error = exc
                time.sleep(0.5)
                continue
            self.subnet = net
            self.gateway = gateway
            logger.info("docker network %s on %s", self.name, subnet)
            return self
        raise InvalidState(f"could not create docker network {self.name}: {last_error}")

    @property
    def network(self) -> Any:
        """The ``docker.models.networks.Network``."""
        if self._network is None:
            raise InvalidState("network not created")
        return self._network

    def allocate(self, count: int) -> list[str]:
        """``count`` fresh addresses of the subnet."""
        if self.subnet is None:
            raise InvalidState("network not created")
        hosts = []
        for _ in range(count):
            address = self.subnet.network_address + self._next_host
            if address not in self.subnet or address == self.subnet.broadcast_address:
                raise InvalidState(f"subnet {self.subnet} is full")
            hosts.append(str(address))
            self._next_host += 1
        return hosts

    def remove(self) -> None:
        """Remove every container of this session and the network (never raises)."""
        try:
            for c in self.client.containers.list(
                    all=True, filters={"label": f"{SESSION_LABEL}={self.name}"}):
                try:
                    c.remove(force=True)
                except Exception:
                    logger.exception("removing container %s", c.name)
            if self._network is not None:
                self._network.remove()
                self._network = None
        except Exception:
            logger.exception("removing docker network %s", self.name)


def _cookie_archive(cookie: str) -> bytes:
    buf = io.BytesIO()
    data = cookie.encode()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(Path(COOKIE_PATH).name)
        info.size = len(data)
        info.mode = 0o400
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class DockerCluster(Cluster):
    """N containers of ``image`` on ``network``; node names ``fixture@<ip>``.

    ``image`` defaults to :func:`node_image` of ``otp``. Containers are named
    ``<network>-<cluster id>-n<i>`` and removed by :meth:`close` (and, as a safety net,
    by :meth:`DockerNetwork.remove`).
    """

    backend: ClassVar[str] = "docker"

    def __init__(
        self,
        *,
        network: DockerNetwork,
        otp: str = "27",
        image: str | None = None,
        size: int = 3,
        workdir: Path,
        name_prefix: str = "fixture",
        **options: Any,
    ) -> None:
        super().__init__(size=size, workdir=workdir, **options)
        self.network = network
        self.client = network.client
        self.otp_release = otp
        self.image = image or node_image(otp)
        self.name_prefix = name_prefix
        self.cluster_id = secrets.token_hex(3)
        self._containers: dict[str, Any] = {}
        self._disconnected: set[str] = set()

    def client_host(self) -> str:
        # Containers reach the machine at the gateway address of the session network.
        return self.network.gateway or "127.0.0.1"

    def container(self, ref: NodeRef) -> Any:
        """The ``docker.models.containers.Container`` of a node."""
        return self._containers[self.node(ref).name]

    def _prepare(self) -> None:
        import docker  # noqa: PLC0415

        try:
            self.client.images.get(self.image)
        except docker.errors.ImageNotFound as exc:
            raise InvalidState(f"image {self.image} not found "
                               "(run scripts/build-node-images.sh)") from exc
        addresses = self.network.allocate(self.size)
        self.nodes = tuple(
            ClusterNode(i, f"{self.name_prefix}@{ip}", ip) for i, ip in enumerate(addresses)
        )
        api = self.client.api
        for node in self.nodes:
            env = self.node_env(node)
            env["ERLANG_COOKIE_FILE"] = COOKIE_PATH
            name = f"{self.network.name}-{self.cluster_id}-n{node.index + 1}"
            created = api.create_container(
                self.image,
                command=["/bin/sh", "-c", START_PERMANENT],
                name=name,
                hostname=f"n{node.index + 1}",
                environment=env,
                labels={SESSION_LABEL: self.network.name, "org.erlbridge.node": node.name},
                networking_config=api.create_networking_config(
                    {self.network.name: api.create_endpoint_config(ipv4_address=node.address)}
                ),
                host_config=api.create_host_config(),
            )
            container = self.client.containers.get(created["Id"])
            container.put_archive(str(Path(COOKIE_PATH).parent), _cookie_archive(self.cookie))
            self._containers[node.name] = container

    def _start_node(self, node: ClusterNode) -> None:
        self._containers[node.name].start()

    def _status(self, node: ClusterNode) -> str:
        container = self._containers.get(node.name)
        if container is None:
            return "missing"
        container.reload()
        return str(container.status)

    def is_running(self, ref: NodeRef) -> bool:
        return self._status(self.node(ref)) in ("running", "paused")

    def _wait_exit(self, node: ClusterNode, timeout: float) -> bool:
        container = self._containers.get(node.name)
        if container is None:
            return True
        try:
            # Blocks until the container is not running (at once if it already stopped).
            container.wait(timeout=timeout)
        except Exception:  # the SDK raises a requests error when the wait times out
            return not self.is_running(node)
        return True

    def kill(self, ref: NodeRef) -> None:
        node = self.node(ref)
        container = self._containers[node.name]
        if self._status(node) == "paused":
            container.unpause()
        container.kill()
        container.wait(timeout=30)

    def pause(self, ref: NodeRef) -> None:
        self.container(ref).pause()

    def unpause(self, ref: NodeRef) -> None:
        self.container(ref).unpause()

    def restart(self, ref: NodeRef, *, timeout: float = 60.0) -> None:
        node = self.node(ref)
        if node.name in self._disconnected:
            self._reconnect(node)
        super().restart(node, timeout=timeout)

    def disconnect(self, ref: NodeRef) -> None:
        """Detach the container from the session network: no packet reaches it."""
        node = self.node(ref)
        self.network.network.disconnect(self._containers[node.name])
        self._disconnected.add(node.name)

    def _reconnect(self, node: ClusterNode) -> None:
        if node.name not in self._disconnected:
            return
        self.network.network.connect(self._containers[node.name], ipv4_address=node.address)
        self._disconnected.discard(node.name)

    def logs(self, ref: NodeRef, *, tail_lines: int = 200) -> str:
        try:
            raw = self.container(ref).logs(tail=tail_lines)
        except Exception as exc:  # a report must not fail on logs
            return f"(no logs: {exc})"
        return bytes(raw).decode(errors="replace")

    def _teardown(self) -> None:
        for container in self._containers.values():
            try:
                container.remove(force=True)
            except Exception:
                logger.exception("removing container %s", container.name)
