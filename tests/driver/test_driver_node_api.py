"""The asyncio Node satisfies the driver's node Protocols (erlbridge.driver.node_api).

Checked twice: at run time (every Protocol method exists on the real class, with the same
parameters and the same sync/async kind) and by mypy on this file (the assignments below).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from erlbridge.asyncio import Node, Process
from erlbridge.driver.node_api import DriverNode, DriverProcess
from erlbridge.term import Atom


def as_driver_node(node: Node) -> DriverNode:
    return node  # mypy: Node is a DriverNode


def as_driver_process(process: Process) -> DriverProcess:
    return process  # mypy: Process is a DriverProcess


def protocol_methods(protocol: type) -> dict[str, object]:
    return {
        name: member
        for name, member in vars(protocol).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }


def parameters(fn: object) -> list[tuple[str, object, object]]:
    assert callable(fn)
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize(("protocol", "real"), [(DriverNode, Node), (DriverProcess, Process)])
def test_real_class_has_every_protocol_method(protocol: type, real: type) -> None:
    methods = protocol_methods(protocol)
    assert methods  # the check is about something
    for name, wanted in methods.items():
        have = getattr(real, name, None)
        assert have is not None, f"{real.__name__} has no {name}"
        assert parameters(have) == parameters(wanted), name
        assert inspect.iscoroutinefunction(have) == inspect.iscoroutinefunction(wanted), name


def test_the_node_api_lists_what_the_driver_calls() -> None:
    assert set(protocol_methods(DriverNode)) == {
        "connect",
        "connected_nodes",
        "ping",
        "process",
        "rpc",
        "whereis",
    }
    assert isinstance(vars(DriverNode)["name"], property)
    assert isinstance(Node("py@localhost").name, Atom)
    assert set(protocol_methods(DriverProcess)) == {"close", "receive", "send"}


def test_mypy_accepts_node_as_driver_node() -> None:
    api = pytest.importorskip("mypy.api")
    root = Path(__file__).resolve().parents[2]
    out, err, status = api.run(
        ["--config-file", str(root / "pyproject.toml"), "--follow-imports=silent", __file__]
    )
    assert status == 0, out + err
