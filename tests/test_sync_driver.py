"""The blocking Driver twin: parity with the async Driver, and a real upgrade with it."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

import erlbridge
from erlbridge import sync
from erlbridge.asyncio import driver as aio_driver


def _public(cls: type) -> dict[str, Any]:
    return {
        name: member
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and inspect.isfunction(member)
    }


def test_every_driver_coroutine_has_a_blocking_twin() -> None:
    async_api = {
        n: m for n, m in _public(aio_driver.Driver).items() if inspect.iscoroutinefunction(m)
    }
    sync_api = _public(sync.Driver)
    assert sorted(async_api) == sorted(n for n in sync_api if n in async_api)
    for name, member in async_api.items():
        twin = sync_api[name]
        assert not inspect.iscoroutinefunction(twin), name
        assert list(inspect.signature(member).parameters) == list(
            inspect.signature(twin).parameters
        ), name
    assert list(inspect.signature(aio_driver.Driver.__init__).parameters) == list(
        inspect.signature(sync.Driver.__init__).parameters
    )
    assert list(inspect.signature(aio_driver.discover).parameters) == list(
        inspect.signature(sync.discover).parameters
    )


def test_top_level_exports() -> None:
    assert erlbridge.Driver is sync.Driver
    assert erlbridge.discover is sync.discover


@pytest.mark.integration
@pytest.mark.erl_backend("local")
def test_blocking_driver_upgrades_a_cluster(
    erlbridge_node: sync.Node, erl_cluster: Any, erl_fixture_tarballs: Path, tmp_path: Path
) -> None:
    seed, *others = erl_cluster.node_names
    for other in others:  # mesh the cluster so that discovery from the seed sees all
        assert erlbridge_node.rpc(seed, "net_adm", "ping", [erlbridge.Atom(other)]) == "pong"
    targets = sync.discover(erlbridge_node, seed)
    assert sorted(targets) == sorted(erl_cluster.node_names)
    counters = erlbridge_node.multicall(targets, "fixture", "bump", [])
    driver = sync.Driver(erlbridge_node, targets, journal=tmp_path / "j", node_timeout=120)
    readiness = driver.readiness()
    assert readiness.ready, str(readiness)
    report = driver.upgrade(erl_fixture_tarballs / "fixture-2.0.0.tar.gz")
    report.raise_for_failures()
    assert {o.node for o in report.outcomes} == set(targets)
    after = erlbridge_node.multicall(targets, "fixture", "state", [])
    for name, outcome in after.items():
        state = outcome.unwrap()
        assert state["code_vsn"] == "2.0.0"
        assert state["count"] == counters[name].unwrap()


def test_top_level_all_is_pinned() -> None:
    assert erlbridge.__all__ == [
        "Appup", "Atom", "BadRpc", "Driver", "ErlString", "ErlbridgeError", "Node",
        "NodeDown", "Pid", "Reference", "Relup", "RemoteException", "Script",
        "ScriptError", "Timeout", "UpgradeFailed", "__version__", "discover",
    ]
    for name in erlbridge.__all__:
        assert getattr(erlbridge, name) is not None
