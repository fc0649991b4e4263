"""The top-level docker-compose.yml, used as its header says: a 3-node demo cluster that
erlbridge connects to and upgrades 1.0.0 -> 2.0.0 (the relup's sync_nodes barrier waits
for the three nodes named in FIXTURE_CLUSTER)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from erlbridge.asyncio import Node
from erlbridge.driver import Driver
from erlbridge.driver.remote_calls import text_of
from erlbridge.pytest_plugin import ErlTarget
from erlbridge.term import ErlString

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.erl_backend("docker")]
REPO = Path(__file__).resolve().parents[2]
FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))



def _free_net() -> str:
    """A /24 (as its first three octets) that no Docker network overlaps: the file's
    default 172.30.57.0/24 may collide with the session's own network."""
    import docker  # noqa: PLC0415

    taken = []
    for net in docker.from_env().networks.list():
        for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []:
            if cfg.get("Subnet") and ":" not in cfg["Subnet"]:
                taken.append(ipaddress.ip_network(cfg["Subnet"]))
    # the file's default first, then a range outside Docker's default address pools
    for prefix in ["172.30.57"] + [f"10.213.{i}" for i in range(256)]:
        if not any(ipaddress.ip_network(f"{prefix}.0/24").overlaps(t) for t in taken):
            return prefix
    raise AssertionError(f"no free /24 for the compose network (taken: {taken})")


def _compose(project: str, env: dict[str, str], *args: str, timeout: float = 180) -> str:
    done = subprocess.run(
        ["docker-compose", "-f", str(REPO / "docker-compose.yml"), "-p", project, *args],
        env=env, capture_output=True, text=True, timeout=timeout * FACTOR, check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"docker-compose {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


@pytest.fixture
def compose_cluster(erl_target: ErlTarget) -> Iterator[tuple[str, str]]:
    """``(cookie, NET)`` of a running compose cluster."""
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (scripts/test.sh installs it)")
    cookie = secrets.token_hex(16)
    project = f"erlbridgecompose{secrets.token_hex(3)}"
    net = _free_net()
    env = {**os.environ, "ERLANG_COOKIE": cookie, "OTP": f"otp{erl_target.otp}", "NET": net}
    _compose(project, env, "up", "-d", "--no-build")
    try:
        yield cookie, net
    finally:
        logs = subprocess.run(
            ["docker-compose", "-f", str(REPO / "docker-compose.yml"), "-p", project, "logs",
             "--no-color"], env=env, capture_output=True, text=True, timeout=60, check=False)
        print(logs.stdout[-5000:])
        _compose(project, env, "down", "-v", "--remove-orphans", "-t", "1")


def test_compose_demo_cluster_upgrades(compose_cluster: tuple[str, str], tmp_path: Path) -> None:
    cookie, net = compose_cluster
    nodes = [f"fixture@{net}.{i}" for i in (11, 12, 13)]

    async def main() -> None:
        async with Node(f"compose{secrets.token_hex(2)}@{net}.1", cookie=cookie) as node:
            end = time.monotonic() + 60 * FACTOR
            for n in nodes:  # the nodes boot in a few seconds
                while True:
                    try:
                        if await node.rpc(n, "fixture", "vsn", [], timeout=5) == "1.0.0":
                            break
                    except Exception:
                        if time.monotonic() > end:
                            raise
                    await asyncio.sleep(0.5)
            # each node reaches the two others by the names in FIXTURE_CLUSTER
            for n in nodes:
                peers = await node.rpc(n, "fixture", "cluster_nodes", [], timeout=5)
                assert sorted(str.__str__(p) for p in peers) == [m for m in nodes if m != n]
            tdir = text_of(await node.rpc(nodes[0], "fixture", "tarball_dir", [], timeout=10))
            res = await node.rpc(nodes[0], "file", "read_file",
                                 [ErlString(f"{tdir}/fixture-2.0.0.tar.gz")], timeout=60)
            assert res[0] == "ok", res
            tarball = tmp_path / "fixture-2.0.0.tar.gz"
            tarball.write_bytes(res[1])
            report = await Driver(node, nodes, node_timeout=120 * FACTOR).upgrade(tarball)
            assert report.ok, str(report)
            for n in nodes:
                assert await node.rpc(n, "fixture", "vsn", [], timeout=10) == "2.0.0"

    asyncio.run(main())
