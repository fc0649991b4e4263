"""The blocking Driver twin: parity with the async Driver, and a real upgrade with it."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import eb_parity

import erlbridge
from erlbridge import asyncio as aio
from erlbridge import driver as aio_driver
from erlbridge import sync


def test_every_driver_coroutine_has_a_blocking_twin() -> None:
    """Names, parameter kinds, defaults, annotations and docstrings all match."""
    coroutines = {
        n for n, m in eb_parity.public(aio_driver.Driver).items() if inspect.iscoroutinefunction(m)
    }
    others = set(eb_parity.public(aio_driver.Driver)) - coroutines
    assert coroutines  # the check below is about something
    assert eb_parity.problems(
        aio_driver.Driver,
        sync.Driver,
        translate={aio.Node: sync.Node},
        skip=others,
        init_replaced={"node": sync.Node},
    ) == []
    assert eb_parity.signature_problems(
        "discover",
        aio_driver.discover,
        sync.discover,
        translate={},
        replaced={"node": sync.Node},
    ) == []
    assert inspect.getdoc(sync.discover) == inspect.getdoc(aio_driver.discover)


def test_the_driver_parity_check_catches_drift() -> None:
    class Drifted(sync.Driver):
        def upgrade_app(  # type: ignore[override]
            self, app: str, new_dir: str | None = None, *, push_code: Any = None
        ) -> Any:
            return None

    found = eb_parity.problems(
        aio_driver.Driver,
        Drifted,
        translate={aio.Node: sync.Node},
        skip=set(eb_parity.public(aio_driver.Driver)) - {"upgrade_app"},
        init_replaced={"node": sync.Node},
    )
    assert "upgrade_app: docstring differs" in found
    assert any(p.startswith("upgrade_app(push_code): annotation") for p in found)
    assert any(p.startswith("upgrade_app: returns") for p in found)


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
