"""Docker backend of the test clusters (L4; needs the ``docker`` SDK, extra ``testing``).

:class:`DockerNetwork` is one user-defined bridge network per test session, with a
unique name and an explicit subnet so that every node gets a fixed address (its node
name is ``NAME@<ip>`` before it starts, and keeps it across restarts). Everything the
session creates carries the label ``org.erlbridge.session=<network name>``;
:meth:`DockerNetwork.remove` deletes those containers and the network.

:class:`DockerCluster` runs N containers on such a network, of either

* ``release_tarball=`` any relx release: an image is built from it on the OTP base image
  ``erlbridge-base:otpNN`` (see :mod:`.images`; cached by content hash), or
* ``image=`` an image that already holds an extracted release (labels
  ``org.erlbridge.release.root``/``.name``; erlbridge's ``erlbridge-node:otpNN`` images
  of the fixture are recognised by their ``FIXTURE_ROOT``).

Before every start, the node's ``vm.args`` files are rewritten through the Docker API (as
:func:`erlbridge.testing.release.configure_node_files` does locally). The cookie is
copied into each container as a file before it starts: it is neither on a command line
nor in the container's environment.
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
from erlbridge.testing import cleanup
from erlbridge.testing.cluster import Cluster, ClusterNode, NodeRef
from erlbridge.testing.images import base_image, release_image
from erlbridge.testing.release import ReleaseInfo, rewrite_vm_args

__all__ = ["DockerCluster", "DockerNetwork", "docker_client", "node_image"]

logger = logging.getLogger(__name__)

SESSION_LABEL = "org.erlbridge.session"
COOKIE_PATH = "/run/erlbridge-cookie"
# The container's command (any entrypoint of the image execs it): put the cookie in
# $HOME/.erlang.cookie, then boot the release start_erl.data names -- the permanent one,
# as a heart restart would. relx's bin/NAME always boots the version it was built with;
# release_handler never replaces it, but it does unpack bin/NAME-VSN with each release.
START_PERMANENT = (
    'set -e; home="${HOME:-/root}"; mkdir -p "$home";'
    ' rm -f "$home/.erlang.cookie"; tr -d "\\n" <"$ERLBRIDGE_COOKIE_FILE" >"$home/.erlang.cookie";'
    ' chmod 0400 "$home/.erlang.cookie";'
    ' root="$ERLBRIDGE_RELEASE_ROOT"; name="$ERLBRIDGE_RELEASE_NAME";'
    ' vsn=$(cut -d" " -f2 "$root/releases/start_erl.data");'
    ' script="$root/bin/$name-$vsn";'
    ' [ -x "$script" ] || script="$root/bin/$name";'
    ' exec "$script" foreground'
)
ROOT_LABEL = "org.erlbridge.release.root"
NAME_LABEL = "org.erlbridge.release.name"


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
            cleanup.track(self, self.remove)
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
        cleanup.untrack(self)
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
    """N containers on ``network`` running a release; node names ``<name_prefix>@<ip>``.

    Give ``release_tarball`` (an image is built from it on the base image of ``otp``, see
    :func:`erlbridge.testing.images.release_image`) or ``image`` (default without a
    tarball: erlbridge's fixture image ``erlbridge-node:otpNN``). ``name_prefix``
    defaults to the release name. Containers are named ``<network>-<cluster id>-n<i>`` and
    removed by :meth:`close` (and, as a safety net, by :meth:`DockerNetwork.remove`).
    """

    backend: ClassVar[str] = "docker"

    def __init__(
        self,
        *,
        network: DockerNetwork,
        otp: str = "27",
        release_tarball: Path | None = None,
        image: str | None = None,
        size: int = 3,
        workdir: Path,
        name_prefix: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(size=size, workdir=workdir, **options)
        self.network = network
        self.client = network.client
        self.otp = otp
        """The OTP release of the image (its base image)."""
        self.otp_release = otp
        self.release: ReleaseInfo | None = None
        if release_tarball is not None:
            if image is not None:
                raise ValueError("give release_tarball or image, not both")
            self.release = ReleaseInfo.read(Path(release_tarball))
            if self.release.includes_erts:  # it runs its own erts, not the image's OTP
                self.otp_release = self.release.otp_release or otp
        self.release_tarball = release_tarball
        self.image = image or (None if release_tarball is not None else node_image(otp))
        self._name_prefix = name_prefix
        self.release_root = ""
        self.release_name = ""
        self.cluster_id = secrets.token_hex(3)
        self._containers: dict[str, Any] = {}
        self._disconnected: set[str] = set()

    @property
    def name_prefix(self) -> str:
        return self._name_prefix or self.release_name or "node"

    def client_host(self) -> str:
        # Containers reach the machine at the gateway address of the session network.
        return self.network.gateway or "127.0.0.1"

    def container(self, ref: NodeRef) -> Any:
        """The ``docker.models.containers.Container`` of a node."""
        return self._containers[self.node(ref).name]

    def _resolve_image(self) -> None:
        import docker  # noqa: PLC0415

        if self.release is not None and self.release_tarball is not None:
            self.image = release_image(self.client, Path(self.release_tarball),
                                       base=base_image(self.otp))
        assert self.image is not None
        try:
            found = self.client.images.get(self.image)
        except docker.errors.ImageNotFound as exc:
            raise InvalidState(f"image {self.image} not found "
                               "(erlbridge images build --otp N builds the base images)"
                               ) from exc
        labels = found.attrs.get("Config", {}).get("Labels") or {}
        env = dict(item.split("=", 1) for item in found.attrs.get("Config", {}).get("Env") or []
                   if "=" in item)
        if labels.get(ROOT_LABEL) and labels.get(NAME_LABEL):
            self.release_root, self.release_name = labels[ROOT_LABEL], labels[NAME_LABEL]
        elif env.get("FIXTURE_ROOT"):  # erlbridge-node images of the fixture release
            self.release_root, self.release_name = env["FIXTURE_ROOT"], "fixture"
        else:
            raise InvalidState(f"image {self.image} names no release (labels {ROOT_LABEL} "
                               f"and {NAME_LABEL})")

    def _prepare(self) -> None:
        self._resolve_image()
        addresses = self.network.allocate(self.size)
        self.nodes = tuple(
            ClusterNode(i, f"{self.name_prefix}@{ip}", ip) for i, ip in enumerate(addresses)
        )
        api = self.client.api
        for node in self.nodes:
            env = self.node_env(node)
            env["ERLBRIDGE_COOKIE_FILE"] = COOKIE_PATH
            env["ERLANG_COOKIE_FILE"] = COOKIE_PATH  # what erlbridge-node's entrypoint reads
            env["ERLBRIDGE_RELEASE_ROOT"] = self.release_root
            env["ERLBRIDGE_RELEASE_NAME"] = self.release_name
            env["RELX_REPLACE_OS_VARS"] = "true"
            env.update(self._name_variables(node))
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

    def _name_variables(self, node: ClusterNode) -> dict[str, str]:
        """Variables the release's vm.args.src name lines read, set to the node name (the
        environment is fixed when the container is made; NODE_NAME for images)."""
        names = self.release.name_variables if self.release is not None else ("NODE_NAME",)
        return dict.fromkeys(names, node.name)

    def _configure_files(self, node: ClusterNode) -> None:
        """Rewrite the container's releases/*/vm.args[.src] for its node name."""
        container = self._containers[node.name]
        releases = f"{self.release_root}/releases"
        chunks, _stat = container.get_archive(releases)
        raw = io.BytesIO(b"".join(chunks))
        cookie = self.cookie if self.release is not None and \
            self.release.cookie_line_required else None
        out = io.BytesIO()
        changed = 0
        with tarfile.open(fileobj=raw) as src, tarfile.open(fileobj=out, mode="w") as dst:
            for member in src.getmembers():
                base = member.name.rsplit("/", 1)[-1]
                if not member.isfile() or base not in ("vm.args", "vm.args.src") \
                        or member.name.count("/") != 2:
                    continue
                f = src.extractfile(member)
                if f is None:
                    continue
                text, _vars = rewrite_vm_args(f.read().decode(errors="replace"), node.name,
                                              cookie=cookie)
                data = text.encode()
                info = tarfile.TarInfo(member.name.split("/", 1)[1])
                info.size = len(data)
                info.mode = 0o600 if cookie else 0o644
                dst.addfile(info, io.BytesIO(data))
                changed += 1
        if changed == 0:
            raise InvalidState(f"{self.image}: {releases} holds no vm.args or vm.args.src")
        container.put_archive(releases, out.getvalue())

    def _start_node(self, node: ClusterNode) -> None:
        self._configure_files(node)
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
