"""The README's main command, `scripts/demo.sh`, works as written and cleans up after itself;
`--keep` prints what the example notebook needs, and SIGTERM stops it like Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "erlbridge-demo.ipynb"
FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in args:
                found.append(f"{entry.name}: {args[:200]}")
    return found


@pytest.mark.integration
def test_demo_script_upgrades_the_local_cluster_and_stops_it(
    erl_fixture_tarballs: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "demo-cluster"
    env = dict(os.environ)
    env["ERLBRIDGE_VENV"] = str(Path(sys.executable).parent.parent)
    env["ERLBRIDGE_FIXTURES"] = str(erl_fixture_tarballs)
    done = subprocess.run(
        [str(ROOT / "scripts" / "demo.sh"), "--workdir", str(workdir)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600 * FACTOR,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "demo succeeded: every node runs 2.0.0" in out
    assert "readiness: 3/3 nodes ready" in out
    assert "upgrade:fixture-2.0.0: 3 ok" in out
    # the per-node report, then each node's state after the upgrade
    for index in (1, 2, 3):
        assert f"fixture{index}@127.0.0.1" in out
    assert out.count("2.0.0 permanent, 1.0.0 old") == 3
    assert "cluster stopped" in out
    assert processes_mentioning(str(workdir)) == []


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """stdout of ``proc`` up to the line holding ``marker`` (fails on exit or timeout)."""
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if marker in line:
                done.set()
                return
        done.set()

    threading.Thread(target=read, daemon=True).start()
    if not done.wait(timeout) or not any(marker in line for line in lines):
        proc.kill()
        raise AssertionError("demo did not get to " + repr(marker) + ":\n" + "".join(lines))
    return "".join(lines)


def _exported(text: str) -> dict[str, str]:
    """The variables the demo's `export` lines set, evaluated by bash as a user would."""
    exports = "\n".join(line.strip() for line in text.splitlines()
                        if line.strip().startswith("export "))
    out = subprocess.run(["bash", "-c", exports + "\nenv -0"], capture_output=True,
                         text=True, check=True, timeout=30, env={"PATH": os.environ["PATH"]})
    return dict(item.split("=", 1) for item in out.stdout.split("\0") if "=" in item)


@pytest.mark.integration
def test_keep_prints_what_the_notebook_needs_and_sigterm_stops_the_cluster(
    erl_fixture_tarballs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    workdir = tmp_path / "kept-cluster"
    env = {k: v for k, v in os.environ.items()
           if k not in ("ERLBRIDGE_FIXTURES", "ERL_EPMD_PORT", "ERLANG_COOKIE")}
    env["ERLBRIDGE_FIXTURES_DIR"] = str(erl_fixture_tarballs)
    # Started from a folder that is not the checkout: the demo finds its files anyway.
    demo = subprocess.Popen(
        [sys.executable, "-m", "erlbridge.demo", "--keep", "--workdir", str(workdir)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        text = _read_until(demo, "Press Ctrl-C", 600 * FACTOR)
        assert "demo succeeded: every node runs 2.0.0" in text
        variables = _exported(text)
        wanted = {"ERLANG_COOKIE", "ERL_EPMD_PORT", "ERLBRIDGE_TARGETS",
                  "ERLBRIDGE_FIXTURES", "ERLBRIDGE_CLIENT_HOST"}
        assert wanted <= set(variables), variables.keys()
        epmd_port = variables["ERL_EPMD_PORT"]

        # The notebook, as Jupyter runs it: kernel started in examples/, on the cluster
        # the demo left at 2.0.0, with nothing but the printed variables.
        for key in ("ERLBRIDGE_FIXTURES", "ERLBRIDGE_RELEASE", "ERLBRIDGE_COOKIE_FILE"):
            monkeypatch.delenv(key, raising=False)
        for key in wanted | {"ERLBRIDGE_COOKIE_FILE"}:
            if key in variables:
                monkeypatch.setenv(key, variables[key])
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        nbclient.NotebookClient(
            notebook, timeout=int(300 * FACTOR), kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOK.parent)}},
        ).execute()
        final = [out for cell in notebook.cells if cell.cell_type == "code"
                 for out in cell.get("outputs", [])]
        assert any("2.0.0" in str(out) for out in final)
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            code = demo.wait(timeout=120 * FACTOR)
        except subprocess.TimeoutExpired:
            demo.kill()
            raise
    assert code == 0, "SIGTERM ends --keep as Ctrl-C does: cluster stopped, exit 0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
            processes_mentioning(str(workdir)) or processes_mentioning(f"-port {epmd_port}")):
        time.sleep(0.2)
    assert processes_mentioning(str(workdir)) == []
    assert processes_mentioning(f"-port {epmd_port}") == []
