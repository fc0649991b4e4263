"""The CLI against real nodes: every command, its exit codes, --json and progress output."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from erlbridge.testing.cluster import Cluster

FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))
ERLBRIDGE = [sys.executable, "-m", "erlbridge.cli"]


class Cli:
    def __init__(self, cluster: Cluster, cwd: Path) -> None:
        self.cluster = cluster
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ERLBRIDGE_")}
        self.env["ERLANG_COOKIE"] = cluster.cookie
        self.env["ERLBRIDGE_NAME"] = f"clitest-{os.getpid()}@{cluster.client_host()}"
        if cluster.epmd_port is not None:
            self.env["ERL_EPMD_PORT"] = str(cluster.epmd_port)

    def __call__(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*ERLBRIDGE, *args],
            env=env or self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=300 * FACTOR,
        )

    def json(self, *args: str, code: int = 0) -> dict:
        done = self(*args, "--json")
        assert done.returncode == code, done.stdout + done.stderr
        try:
            return json.loads(done.stdout)
        except ValueError as exc:
            raise AssertionError(f"not JSON: {done.stdout!r}\n{done.stderr}") from exc


@pytest.fixture
def cli(erl_cluster: Cluster, tmp_path: Path) -> Cli:
    return Cli(erl_cluster, tmp_path)


def mesh(cluster: Cluster) -> None:
    others = ",".join(f"'{n}'" for n in cluster.node_names[1:])
    cluster.eval(0, f"[net_adm:ping(N) || N <- [{others}]].")


def test_ping_rpc_nodes_and_exit_codes(cli: Cli, erl_cluster: Cluster) -> None:
    names = erl_cluster.node_names
    host = names[0].split("@")[1]

    data = cli.json("ping", *names)
    assert [r["result"] for r in data["results"]] == ["pong"] * len(names)

    some = cli("ping", names[0], f"nosuchnode@{host}")
    assert some.returncode == 1
    assert "pang" in some.stdout and "pong" in some.stdout

    none = cli("ping", f"nosuchnode@{host}")
    assert none.returncode == 3
    assert "cannot connect" in none.stderr

    wrong = dict(cli.env, ERLANG_COOKIE="not-the-cookie")
    denied = cli("rpc", names[0], "erlang", "node", env=wrong)
    assert denied.returncode == 3
    assert "not-the-cookie" not in denied.stdout + denied.stderr

    seq = cli("rpc", names[0], "lists", "seq", "[1, 5]")
    assert (seq.returncode, seq.stdout.strip()) == (0, "[1,2,3,4,5]")

    hello = cli.json("rpc", names[0], "io", "format", '["hello ~s~n", ["world"]]')
    assert (hello["output"], hello["erlang"]) == ("hello world\n", "ok")

    boom = cli.json("rpc", names[0], "erlang", "error", "[{boom, 1}]", code=1)
    assert boom["error"]["type"] == "RemoteException"
    assert (boom["error"]["kind"], boom["error"]["reason"]) == ("error", "{boom,1}")

    assert cli("rpc", names[0], "erlang", "node", "[1,").returncode == 2

    mesh(erl_cluster)
    found = cli.json("nodes", names[0])
    assert sorted(found["nodes"]) == sorted(names)
    only = cli.json("nodes", names[0], "--match", names[1].replace("@", "*@"))
    assert only["nodes"] == [names[1]]
    nothing = cli("nodes", names[0], "--match", "nomatch*")
    assert nothing.returncode == 2
    assert "no node matches" in nothing.stderr

    # every target counts in the readiness caption, the unreachable one too
    partial = cli("readiness", "-t", ",".join(names), "-t", f"gone@{host}")
    assert partial.returncode == 1, partial.stdout + partial.stderr
    caption = f"readiness: {len(names)}/{len(names) + 1} nodes ready"
    assert caption in partial.stdout, partial.stdout
    assert f"gone@{host}" in partial.stdout and "unreachable" in partial.stdout


def test_default_node_name_is_an_address_of_this_machine(cli: Cli, erl_cluster: Cluster) -> None:
    """Without --name the CLI's node is named after the local address that routes to the
    target (a container's address is not this machine's: listening on it would fail with
    "cannot assign requested address" before connecting)."""
    names = erl_cluster.node_names
    env = {k: v for k, v in cli.env.items() if k != "ERLBRIDGE_NAME"}
    done = cli("-v", "ping", names[0], env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pong" in done.stdout
    assert "cannot listen" not in done.stderr, done.stderr
    seen = cli("rpc", names[0], "erlang", "nodes", "[hidden]", env=env)
    assert seen.returncode == 0, seen.stderr
    host = re.escape(erl_cluster.client_host())
    assert re.search(rf"'erlbridge-cli-\d+@{host}'", seen.stdout), seen.stdout


def test_release_cycle_from_the_cli(
    cli: Cli, erl_cluster: Cluster, erl_fixture_tarballs: Path
) -> None:
    names = erl_cluster.node_names
    targets = ",".join(names)

    ready = cli.json("readiness", "-t", targets)
    assert ready["ready"] is True
    assert {n["node"] for n in ready["nodes"]} == set(names)

    before = cli.json("releases", "-t", targets)["releases"]
    assert {(r["node"], r["version"], r["status"]) for r in before} == {
        (n, "1.0.0", "permanent") for n in names
    }

    if erl_cluster.backend == "docker":
        # The images hold tarballs built with their own OTP: unpack 2.0.0 there, by version.
        for name in names:
            unpacked = cli("rpc", name, "fixture", "unpack", '["2.0.0"]')
            assert unpacked.stdout.strip() == '{ok,"2.0.0"}', unpacked.stdout + unpacked.stderr
        release = "2.0.0"
    else:
        release = str(erl_fixture_tarballs / "fixture-2.0.0.tar.gz")
        # a dry run with the tarball checks, read-only: nothing is uploaded or unpacked
        dry = cli.json("upgrade", release, "-t", targets, "--dry-run")
        assert dry["ok"] is True and dry["dry_run"] is True, dry
        assert {s["step"] for o in dry["outcomes"] for s in o["steps"]} == {"check_release"}
        assert cli.json("releases", "-t", targets)["releases"] == before
    up = cli("upgrade", release, "-t", targets, "--journal", "up.journal")
    assert up.returncode == 0, up.stdout + up.stderr
    # not a terminal: one plain progress line per change, on stderr
    for name in names:
        assert f"{name}: install…" in up.stderr
        assert f"{name}: install done" in up.stderr
    assert "make_permanent" in up.stdout

    after = cli.json("releases", "-t", targets)["releases"]
    assert {(r["node"], r["status"]) for r in after if r["version"] == "2.0.0"} == {
        (n, "permanent") for n in names
    }
    versions = [cli("rpc", n, "fixture", "vsn").stdout.strip() for n in names]
    assert versions == ['"2.0.0"'] * len(names)

    journal = cli.json("journal", "show", "up.journal")
    assert {n: s["state"] for n, s in journal["nodes"].items()} == dict.fromkeys(names, "ok")

    down = cli.json("downgrade", "1.0.0", "-t", targets, "--journal", "down.journal")
    assert down["ok"] is True
    assert down["operation"] == "downgrade:1.0.0", down["operation"]
    runs = cli.json("journal", "show", "down.journal")["runs"]
    assert [r["op"] for r in runs] == ["downgrade:1.0.0"]
    versions = [cli("rpc", n, "fixture", "vsn").stdout.strip() for n in names]
    assert versions == ['"1.0.0"'] * len(names)


def test_run_script_and_failures(cli: Cli, erl_cluster: Cluster) -> None:
    names = erl_cluster.node_names
    targets = ",".join(names)
    host = names[0].split("@")[1]
    (cli.cwd / "gc.script").write_text("[{apply, {erlang, garbage_collect, []}}].")
    (cli.cwd / "bad.script").write_text("[{apply, {erlang, error, [broken]}}].")

    dry = cli.json("run", "gc.script", "-t", targets, "--dry-run")
    assert dry["dry_run"] is True and dry["ok"] is True

    done = cli.json("run", "gc.script", "-t", targets, "--journal", "run.journal")
    assert done["counts"]["ok"] == len(names)

    failed = cli.json("run", "bad.script", "-t", targets, code=1)
    assert failed["ok"] is False
    assert {o["status"] for o in failed["outcomes"]} == {"error"}

    refused = cli.json("run", "gc.script", "-t", f"{targets},gone@{host}", code=1)
    assert refused == {
        "ok": False,
        "started": False,
        "unreachable": {f"gone@{host}": "EPMD does not know the node name 'gone'"},
    }
    rest = cli.json("run", "gc.script", "-t", f"{targets},gone@{host}", "--skip-unreachable")
    assert [o["node"] for o in rest["outcomes"]] == names

    unreachable = cli("run", "gc.script", "-t", f"gone@{host}")
    assert unreachable.returncode == 3

    # a cross-node barrier in direct mode: erlbridge's node coordinates it
    atoms = ",".join(f"'{n}'" for n in names)
    (cli.cwd / "barrier.script").write_text(
        f'[{{load_object_code, {{fixture, "1.0.0", [fixture_lib]}}}}, point_of_no_return,'
        f" {{sync_nodes, cli_barrier, [{atoms}]}},"
        " {load, {fixture_lib, brutal_purge, brutal_purge}}]."
    )
    barrier = cli.json("run", "barrier.script", "-t", targets)
    assert barrier["ok"] is True, barrier
    assert barrier["extra"]["barriers"], barrier["extra"]

    (cli.cwd / "invalid.script").write_text(
        '[point_of_no_return, {load_object_code, {fixture, "1.0.0", [fixture]}}].'
    )
    invalid = cli("run", "invalid.script", "-t", targets)
    assert invalid.returncode == 1
    assert "refused, nothing was run" in invalid.stderr
    assert "illegal_instruction_after_point_of_no_return" in invalid.stderr

    shown = cli("journal", "show", "run.journal")
    assert shown.returncode == 0
    assert "preflight=ok" in shown.stdout and "eval=ok" in shown.stdout


@pytest.mark.erl_backend("local")
def test_interrupted_upgrade_exits_130_and_journal_shows_in_doubt(
    cli: Cli, erl_cluster: Cluster, erl_fixture_tarballs: Path
) -> None:
    names = erl_cluster.node_names
    journal = cli.cwd / "up.journal"
    proc = subprocess.Popen(
        [
            *ERLBRIDGE,
            "upgrade",
            str(erl_fixture_tarballs / "fixture-2.0.0.tar.gz"),
            "-t",
            ",".join(names),
            "--journal",
            str(journal),
        ],
        env=cli.env,
        cwd=cli.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60 * FACTOR
        while not journal.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        erl_cluster.pause(names[2])  # its upload cannot finish now
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60 * FACTOR)
    finally:
        if proc.poll() is None:
            proc.kill()
        erl_cluster.unpause(names[2])
    assert proc.returncode == 130, err
    assert "interrupted" in err
    shown = cli.json("journal", "show", str(journal), code=1)
    assert shown["runs"][0]["finished"] is False
    assert shown["nodes"][names[2]]["state"] == "in_doubt"
    versions = {cli("rpc", n, "fixture", "vsn").stdout.strip() for n in names}
    assert versions == {'"1.0.0"'}  # nothing was installed anywhere

    # --resume finishes the interrupted run without redoing what already succeeded
    resumed = cli.json(
        "upgrade",
        str(erl_fixture_tarballs / "fixture-2.0.0.tar.gz"),
        "-t",
        ",".join(names),
        "--journal",
        str(journal),
        "--resume",
    )
    assert resumed["ok"] is True, resumed
    steps = {o["node"]: {s["step"]: s["resumed"] for s in o["steps"]} for o in resumed["preflight"]}
    assert steps[names[0]]["upload"] is True
    assert steps[names[2]]["upload"] is False
    versions = {cli("rpc", n, "fixture", "vsn").stdout.strip() for n in names}
    assert versions == {'"2.0.0"'}


@pytest.mark.erl_backend("local")
def test_run_pushes_code_the_targets_do_not_have(cli: Cli, erl_cluster: Cluster) -> None:
    names = erl_cluster.node_names
    ebin = cli.cwd / "greeter-1.0" / "ebin"
    ebin.mkdir(parents=True)
    source = cli.cwd / "greeter.erl"
    source.write_text('-module(greeter).\n-vsn("1").\n-export([hi/0]).\nhi() -> pushed.\n')
    subprocess.run(["erlc", "-o", str(ebin), str(source)], check=True, timeout=60)
    (cli.cwd / "push.script").write_text(
        '[{load_object_code, {greeter, "1.0", [greeter]}}, point_of_no_return,'
        " {load, {greeter, brutal_purge, brutal_purge}}]."
    )
    assert cli("rpc", names[0], "greeter", "hi").returncode == 1  # not there yet
    # a dry run writes the code for check_script and removes it again
    def listing(name: str) -> tuple[str, str]:
        root = cli("rpc", name, "filelib", "is_dir", '["/tmp/erlbridge-push"]').stdout
        return root, cli("rpc", name, "filelib", "wildcard", '["/tmp/erlbridge-push/**"]').stdout

    before = [listing(n) for n in names]
    dry = cli.json("run", "push.script", "-t", ",".join(names), "--push", f"greeter={ebin}",
                   "--dry-run")
    assert dry["ok"] is True and dry["dry_run"] is True, dry
    for outcome in dry["outcomes"]:
        steps = [s["step"] for s in outcome["steps"]]
        assert steps == ["push", "lib_dirs", "preflight", "remove_pushed"], steps
    assert [listing(n) for n in names] == before
    assert cli("rpc", names[0], "greeter", "hi").returncode == 1  # still not there
    done = cli.json("run", "push.script", "-t", ",".join(names), "--push", f"greeter={ebin}")
    assert done["ok"] is True, done
    for name in names:
        assert cli("rpc", name, "greeter", "hi").stdout.strip() == "pushed"
    bad = cli("run", "push.script", "-t", names[0], "--push", "greeter")
    assert bad.returncode == 2


@pytest.mark.erl_backend("local")
def test_works_without_a_local_epmd_by_host_and_port(cli: Cli, erl_cluster: Cluster) -> None:
    names = erl_cluster.node_names
    listing = subprocess.run(
        ["epmd", "-names"],
        env={**os.environ, "ERL_EPMD_PORT": str(erl_cluster.epmd_port)},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    alive = names[0].split("@")[0]
    port = next(line.split()[-1] for line in listing.splitlines() if f"name {alive} " in line)
    env = dict(cli.env, ERL_EPMD_PORT="1")  # nothing listens there
    done = cli("-v", "rpc", f"{names[0]}:{port}", "erlang", "node", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"'{names[0]}'"
    assert "starting without a listener" in done.stderr
    assert cli("ping", names[0], env=env).returncode == 3  # a name alone needs EPMD
