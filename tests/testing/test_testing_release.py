"""Any relx release through every erlbridge.testing operation: releases that are not the
fixture (other names, both vm.args shapes, with and without erts), boot failures with
their log, upgrades through the cluster, and SIGTERM stopping clusters."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest

from erlbridge.exceptions import InvalidState, NodeDown
from erlbridge.testing import Cluster, LocalCluster, ReleaseInfo
from erlbridge.testing.release import rewrite_vm_args

FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))


# -- vm.args rewriting (pure) ----------------------------------------------------------


def test_rewrite_sets_the_name_and_drops_the_cookie() -> None:
    text, variables = rewrite_vm_args("-sname kvs\n-setcookie secret\n+K true\n", "a@1.2.3.4")
    assert text == "-name a@1.2.3.4\n+K true\n"
    assert variables == {}


def test_rewrite_reports_the_variables_of_a_src_name_line() -> None:
    src = "## comment\n-name ${NODE_NAME:-x@h}\n-setcookie ${COOKIE}\n-args_file extra\n"
    text, variables = rewrite_vm_args(src, "n@10.0.0.2")
    assert text == "## comment\n-name n@10.0.0.2\n-args_file extra\n"
    assert variables == {"NODE_NAME": "n@10.0.0.2"}


def test_rewrite_keeps_a_cookie_line_when_asked_and_adds_a_missing_name() -> None:
    text, _ = rewrite_vm_args("-setcookie old\n", "n@h", cookie="new")
    assert text == "-name n@h\n-setcookie new\n"


def test_not_a_release_tarball_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "x.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        data = b"hello"
        info = tarfile.TarInfo("README")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(InvalidState, match="not a relx release"):
        ReleaseInfo.read(bad)
    (tmp_path / "junk.tar.gz").write_bytes(b"junk")
    with pytest.raises(InvalidState):
        ReleaseInfo.read(tmp_path / "junk.tar.gz")
    with pytest.raises(InvalidState, match="not found"):
        ReleaseInfo.read(tmp_path / "missing.tar.gz")


def test_release_info(kvs_release: Path, myapp_releases: Path) -> None:
    kvs = ReleaseInfo.read(kvs_release)
    assert (kvs.name, kvs.vsn, kvs.includes_erts) == ("kvs", "1.0.0", False)
    assert [a for a, _ in kvs.applications][-2:] == ["sasl", "kvs"]
    myapp = ReleaseInfo.read(myapp_releases / "myapp-2.0.0.tar.gz")
    assert (myapp.name, myapp.vsn, myapp.includes_erts) == ("myapp", "2.0.0", True)
    assert myapp.name_variables == ("NODE_NAME",)


# -- a release that is not the fixture, through every operation ---------------------


def _cmdlines() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                    errors="replace"))
            except OSError:
                continue
    return found


# On docker, one OTP is enough: the cluster code is the same for every image, and the
# fixture's tests cover the OTP matrix (keeps CI short).
@pytest.mark.erl_cluster(otp="27")
def test_other_release_through_every_operation(erl_cluster_factory, kvs_release: Path
                                               ) -> None:
    c: Cluster = erl_cluster_factory(2, release=kvs_release, net_ticktime=4)
    n0, n1 = c.node_names
    assert n0.startswith("kvs") and n1.startswith("kvs")
    assert c.eval(0, "kvs_server:bump()") == "1"
    assert c.eval(0, "lists:keymember(kvs, 1, application:which_applications())") == "true"
    # The release's own -setcookie line is gone: the cluster's cookie, on no command line.
    assert c.eval(1, "erlang:get_cookie()").strip("'") == c.cookie
    if c.backend == "local":
        assert not [line for line in _cmdlines() if c.cookie in line]

    c.kill(1)
    assert not c.is_running(1)
    c.restart(1)
    assert c.eval(1, "kvs_server:count()") == "0"  # a fresh boot

    c.pause(0)
    assert not c.ping(0, timeout=2)
    c.unpause(0)
    assert c.ping(0, timeout=10)

    c.disconnect(1)
    assert not c.ping(1, timeout=2)
    c.reconnect(1)
    assert c.ping(1, timeout=10)

    with c.supervise([0]) as sup:
        c.eval(0, "spawn(fun() -> timer:sleep(200), init:reboot() end), ok")
        sup.wait_restarted([0], timeout=120)
    assert c.eval(0, "kvs_server:count()") == "0"
    assert "erlexec" in c.logs(0)  # the start script's boot output


@pytest.mark.erl_backend("local")
def test_release_that_does_not_boot_fails_with_its_log(erl_target, kvs_release: Path,
                                                        tmp_path: Path) -> None:
    broken = tmp_path / "kvs-1.0.0.tar.gz"
    with tarfile.open(kvs_release) as src, tarfile.open(broken, "w:gz") as dst:
        for member in src.getmembers():
            f = src.extractfile(member) if member.isfile() else None
            if member.name == "releases/1.0.0/sys.config":
                data = b"[{kernel, [}].\n"  # a syntax error: the boot stops
                member.size = len(data)
                f = io.BytesIO(data)
            dst.addfile(member, f)
    cluster = LocalCluster(release_tarball=broken, size=1, workdir=tmp_path / "w")
    with pytest.raises(NodeDown) as failure:
        cluster.start(timeout=120 * FACTOR)
    assert "sys.config" in str(failure.value)  # the boot log says what is wrong
    assert not cluster.is_running(0)


@pytest.mark.erl_cluster(otp="27")
def test_upgrade_and_downgrade_through_the_cluster(erl_cluster_factory, myapp_releases: Path
                                                   ) -> None:
    c: Cluster = erl_cluster_factory(2, release=myapp_releases / "myapp-1.0.0.tar.gz")
    assert [c.eval(i, "myapp_server:bump()") for i in (0, 1)] == ["1", "1"]
    report = c.upgrade(myapp_releases / "myapp-2.0.0.tar.gz")
    assert report.ok
    for i in (0, 1):
        assert c.eval(i, "myapp_server:version()") == '"2.0.0"'
        assert c.eval(i, "myapp_server:count()") == "1"  # code_change kept the count
    assert c.journals and c.journals[0].is_file()
    c.downgrade("1.0.0")
    assert c.eval(0, "myapp_server:version()") == '"1.0.0"'
    # A restart boots the permanent release (1.0.0 again), with the cluster's name.
    c.restart(1)
    assert c.eval(1, "myapp_server:version()") == '"1.0.0"'


# -- SIGTERM ---------------------------------------------------------------------------

SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from erlbridge.testing import LocalCluster
    cluster = LocalCluster(release_tarball=Path(sys.argv[1]), size=2,
                           workdir=Path(sys.argv[2]))
    cluster.start()
    print("UP", cluster.epmd_port, flush=True)
    time.sleep(600)
""")


@pytest.mark.integration
def test_sigterm_stops_every_cluster_the_process_started(kvs_release: Path,
                                                         tmp_path: Path) -> None:
    workdir = tmp_path / "nodes"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(kvs_release), str(workdir)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("UP "), line + proc.stdout.read()
    port = line.split()[1]
    assert [c for c in _cmdlines() if str(workdir) in c]  # the nodes run
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60 * FACTOR) == -signal.SIGTERM
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and [
            c for c in _cmdlines() if str(workdir) in c or f"-port {port}" in c]:
        time.sleep(0.2)
    assert [c for c in _cmdlines() if str(workdir) in c or f"-port {port}" in c] == []


def test_relx3_scripts_keep_a_cookie_line_with_the_clusters_cookie(tmp_path: Path) -> None:
    from erlbridge.testing.release import configure_node_files  # noqa: PLC0415

    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "app").write_text(
        '#!/bin/sh\necho "vm.args needs to have a -setcookie parameter."\n')
    (tmp_path / "releases" / "1.0.0").mkdir(parents=True)
    vm_args = tmp_path / "releases" / "1.0.0" / "vm.args"
    vm_args.write_text("-sname app\n-setcookie app_cookie\n")
    env = configure_node_files(tmp_path, "app", "app1@127.0.0.1", "c00kie")
    assert vm_args.read_text() == "-name app1@127.0.0.1\n-setcookie c00kie\n"
    assert vm_args.stat().st_mode & 0o077 == 0  # the cookie is in a private file
    assert env == {"RELX_REPLACE_OS_VARS": "true"}
    (tmp_path / "bin" / "app").write_text("#!/bin/sh\n")  # relx 4: no cookie line needed
    vm_args.write_text("-name ${NODE_NAME}\n-setcookie ${COOKIE}\n")
    env = configure_node_files(tmp_path, "app", "app1@127.0.0.1", "c00kie")
    assert vm_args.read_text() == "-name app1@127.0.0.1\n"
    assert env == {"NODE_NAME": "app1@127.0.0.1", "RELX_REPLACE_OS_VARS": "true"}


def test_a_release_without_vm_args_is_refused(tmp_path: Path) -> None:
    from erlbridge.testing.release import configure_node_files  # noqa: PLC0415

    (tmp_path / "releases" / "1.0.0").mkdir(parents=True)
    with pytest.raises(InvalidState, match=r"vm\.args"):
        configure_node_files(tmp_path, "app", "app1@127.0.0.1", "c")
