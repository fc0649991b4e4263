"""The pytest plugin's own rules, run with pytester in a subprocess: target ids, the CI
rule for skipped integration tests, bad options, and node logs on failure."""

from __future__ import annotations

import pytest

from erlbridge.pytest_plugin import ErlTarget
from erlbridge.testing import find_erl
from erlbridge.testing.docker_cluster import docker_client

SKIPPING = """
import pytest

@pytest.mark.integration
def test_needs_erlang():
    pytest.skip("pretend Erlang is missing")
"""


def test_ci_fails_when_integration_tests_skip(pytester: pytest.Pytester,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_skips=SKIPPING)
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*integration tests skipped in CI*",
                                 "*SKIPPED (fails CI)*test_needs_erlang*"])
    monkeypatch.setenv("CI", "false")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*1 integration test(s) skipped (would fail with CI=true)*"])


def test_unknown_backend_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--erl-backend=vm")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_targets_are_parametrized(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ids="""
import pytest

@pytest.mark.erl_backend("docker")
def test_t(erl_target):
    pass
""")
    result = pytester.runpytest_subprocess(
        "--collect-only", "-q", "--erl-backend=local,docker", "--otp=25,29")
    result.stdout.fnmatch_lines(["*test_t?docker-otp25?*", "*test_t?docker-otp29?*"])
    assert "local-otp" not in result.stdout.str()


@pytest.mark.integration
@pytest.mark.skipif(find_erl() is None, reason="no erl on this machine")
def test_failed_test_gets_node_logs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fails="""
import pytest

@pytest.mark.erl_cluster(size=1, sync_barrier=False)
def test_boom(erl_cluster):
    erl_cluster.kill(0)
    assert False, "deliberate"
""")
    result = pytester.runpytest_subprocess("--erl-backend=local", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*erlang node fixture1@127.0.0.1 (local, NOT ANSWERING)*",
                                 "*Exec:*bin/erlexec*"])


@pytest.mark.docker
@pytest.mark.erl_backend("docker")
def test_session_network_removed_after_failing_test(
        pytester: pytest.Pytester, erl_target: ErlTarget) -> None:
    pytester.makepyfile(test_fails_in_docker="""
import pytest

@pytest.mark.erl_cluster(size=1, sync_barrier=False)
def test_boom(erl_cluster, erl_docker_network):
    print("NETWORK=" + erl_docker_network.name)
    print("CONTAINER=" + erl_cluster.container(0).name)
    assert False, "deliberate"
""")
    result = pytester.runpytest_subprocess(
        "--erl-backend=docker", f"--otp={erl_target.otp}", "-p", "no:cacheprovider", "-rA")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    network = out.split("NETWORK=")[-1].split()[0]
    container = out.split("CONTAINER=")[-1].split()[0]
    assert network.startswith("erlbridge-test-")
    client = docker_client()
    assert client.networks.list(names=[network]) == []
    assert client.containers.list(all=True, filters={"name": container}) == []


def test_default_backend_is_local_and_a_marker_asks_for_docker(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ERLBRIDGE_ERL_BACKEND", "ERLBRIDGE_OTP", "CI"):
        monkeypatch.delenv(var, raising=False)
    pytester.makepyfile(test_ids="""
import pytest

def test_plain(erl_target):
    pass

@pytest.mark.erl_backend("docker")
@pytest.mark.erl_cluster(otp="25")
def test_docker(erl_target):
    pass
""")
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    out = result.stdout.str()
    assert "test_plain[local-otp" in out and "test_plain[docker" not in out
    assert "test_docker[docker-otp25]" in out and "test_docker[local" not in out
    # An explicit selection (option, environment or ini) restricts the marker instead.
    pytester.makeini("[pytest]\nerl_backend = local\n")
    out = pytester.runpytest_subprocess("--collect-only", "-q").stdout.str()
    assert "test_docker[no-backend]" in out


def test_a_missing_release_fails_clearly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_rel="""
def test_x(erl_cluster):
    pass
""")
    result = pytester.runpytest_subprocess("--erl-backend=local", "--erl-release=nope.tar.gz",
                                           "-p", "no:cacheprovider")
    if find_erl() is None:
        result.assert_outcomes(skipped=1)
        return
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*release tarball*nope.tar.gz not found*"])
