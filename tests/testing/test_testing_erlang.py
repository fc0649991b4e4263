"""erlbridge.testing's plain-Erlang helpers against real nodes: erl_call errors,
cookie homes, and that the cookie never reaches a command line."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from erlbridge.exceptions import BadRpc, NodeDown, RemoteException
from erlbridge.testing import Cluster, CookieHome, ErlCall
from erlbridge.testing.docker_cluster import DockerCluster


def test_cookie_home_is_private(tmp_path: Path) -> None:
    home = CookieHome(tmp_path / "h", "abc123")
    assert stat.S_IMODE(home.path.stat().st_mode) == 0o700
    assert stat.S_IMODE(home.cookie_file.stat().st_mode) == 0o400
    assert home.cookie_file.read_text() == "abc123"
    # Writing again (e.g. a restart) replaces the read-only file.
    CookieHome(tmp_path / "h", "other")
    assert home.cookie_file.read_text() == "other"
    env = home.env({"ERL_EPMD_PORT": "4400"}, base={"ERLANG_COOKIE": "x", "PATH": "/bin"})
    assert env == {"HOME": str(home.path), "ERL_EPMD_PORT": "4400", "PATH": "/bin"}


@pytest.mark.erl_backend("local")
@pytest.mark.erl_cluster(size=1, sync_barrier=False)
def test_erl_call_results_and_errors(erl_cluster: Cluster, tmp_path: Path) -> None:
    node = erl_cluster.node_names[0]
    call = erl_cluster.erl_call
    assert call.eval(node, "X = 1 + 2, {X, node()}") == f"{{3, '{node}'}}"
    assert call.ping(node)
    with pytest.raises(RemoteException):
        call.eval(node, "erlang:error(boom)")
    with pytest.raises(BadRpc):
        call.eval(node, "1 +")
    with pytest.raises(NodeDown):
        call.eval("nosuchnode@127.0.0.1", "ok")
    # A wrong cookie cannot get in.
    stranger = ErlCall(home=CookieHome(tmp_path / "x", "wrong-cookie"),
                       epmd_port=erl_cluster.epmd_port)
    assert not stranger.ping(node)


def _all_cmdlines() -> list[str]:
    lines = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace"))
        except OSError:
            continue
    return lines


@pytest.mark.erl_cluster(size=2)
def test_cookie_never_on_a_command_line(erl_cluster: Cluster) -> None:
    observer = erl_cluster.observer()
    assert observer.connect(erl_cluster.node_names[0])
    assert erl_cluster.ping(1)
    leaks = [line for line in _all_cmdlines() if erl_cluster.cookie in line]
    assert leaks == []
    if erl_cluster.backend == "docker":
        assert isinstance(erl_cluster, DockerCluster)
        for node in erl_cluster.nodes:
            container = erl_cluster.container(node)
            container.reload()
            env = container.attrs["Config"]["Env"]
            assert not any(erl_cluster.cookie in item for item in env)
            top = container.top(ps_args="-eo pid,args")
            assert not any(erl_cluster.cookie in " ".join(p) for p in top["Processes"])
