"""The pytest plugin as another project uses it: a user's test file, run with pytester.

The user's tests are the complete example from docs/testing.md (its ``pyproject.toml``
section and test module) on a ``myapp`` release built with rebar3: a cluster fixture, a
connected erlbridge node, a release upgrade checked on every node, and failing checks
whose reports carry the nodes' logs and the driver's journal.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOCS_TESTING = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))


@pytest.fixture(autouse=True)
def user_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's shell has none of the backend/OTP selection this suite's CI exports
    (scripts/test.sh): with them the user's run would ask for Docker and every OTP."""
    for name in ("ERLBRIDGE_ERL_BACKEND", "ERLBRIDGE_OTP"):
        monkeypatch.delenv(name, raising=False)


def user_example() -> str:
    """The first ```python block of docs/testing.md that defines tests."""
    text = DOCS_TESTING.read_text(encoding="utf-8")
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        if "def test_" in block:
            return block
    raise AssertionError("docs/testing.md has no example test module")


def user_config() -> str:
    """The ```toml block of docs/testing.md (the project's pyproject.toml section)."""
    text = DOCS_TESTING.read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", text, re.S)
    assert blocks, "docs/testing.md has no pyproject.toml example"
    return blocks[0]


def user_project(path: Path, releases: Path) -> None:
    """The docs' project layout in ``path``: pyproject.toml, releases/, tests/."""
    (path / "pyproject.toml").write_text(user_config(), encoding="utf-8")
    (path / "releases").mkdir(exist_ok=True)
    for tarball in releases.glob("myapp-*.tar.gz"):
        shutil.copy(tarball, path / "releases" / tarball.name)
    (path / "tests").mkdir(exist_ok=True)
    (path / "tests" / "test_upgrade.py").write_text(user_example(), encoding="utf-8")


def test_plugin_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*--erl-backend*", "*--erl-release*", "*--erl-fixtures-dir*"])
    fixtures = pytester.runpytest_subprocess("--fixtures")
    fixtures.stdout.fnmatch_lines(
        ["erl_cluster_factory -- *", "erl_cluster -- *", "erlbridge_node -- *"]
    )


@pytest.mark.integration
def test_documented_example_passes(pytester: pytest.Pytester, myapp_releases: Path) -> None:
    user_project(pytester.path, myapp_releases)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider",
                                           timeout=600 * FACTOR)
    result.assert_outcomes(passed=3)


@pytest.mark.integration
def test_failed_upgrade_reports_logs_and_journal(pytester: pytest.Pytester,
                                                  myapp_releases: Path) -> None:
    user_project(pytester.path, myapp_releases)
    (pytester.path / "tests" / "test_upgrade.py").write_text("""
from pathlib import Path

RELEASES = Path(__file__).resolve().parents[1] / "releases"

def test_upgrade_to_the_same_version(erl_cluster):
    erl_cluster.upgrade(RELEASES / "myapp-1.0.0.tar.gz")  # already installed: fails
""")
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider",
                                           timeout=600 * FACTOR)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*UpgradeFailed*", "*erlang node myapp1@127.0.0.1*",
                                 "*erlbridge journal upgrade-1.journal*"])


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
