"""The pytest plugin as another project uses it: a user's test file, run with pytester.

The user's tests are the complete example from docs/testing.md: a cluster fixture, a
connected erlbridge node, a release upgrade checked on every node, and a failing check
whose report carries the nodes' logs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOCS_TESTING = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))


def user_example() -> str:
    """The first ```python block of docs/testing.md that defines tests."""
    text = DOCS_TESTING.read_text(encoding="utf-8")
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        if "def test_" in block:
            return block
    raise AssertionError("docs/testing.md has no example test module")


def test_plugin_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*--erl-backend*", "*--erl-fixtures-dir*"])
    fixtures = pytester.runpytest_subprocess("--fixtures")
    fixtures.stdout.fnmatch_lines(
        ["erl_cluster_factory -- *", "erl_cluster -- *", "erlbridge_node -- *"]
    )


@pytest.mark.integration
def test_documented_example_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_upgrade_example=user_example())
    result = pytester.runpytest_subprocess(
        "--erl-backend=local", "-q", "-p", "no:cacheprovider", timeout=600 * FACTOR
    )
    result.assert_outcomes(passed=2)


@pytest.mark.integration
def test_failing_user_test_reports_node_logs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fails="""
import pytest

@pytest.mark.erl_cluster(size=1)
def test_wrong_version(erlbridge_node, erl_cluster):
    [name] = erl_cluster.node_names
    assert erlbridge_node.rpc(name, "fixture", "vsn", []) == "9.9.9"
"""
    )
    result = pytester.runpytest_subprocess(
        "--erl-backend=local", "-q", "-p", "no:cacheprovider", timeout=300 * FACTOR
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*erlang node fixture1@127.0.0.1*"])
