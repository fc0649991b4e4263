"""The example notebook runs headlessly (nbclient) against a real cluster, and re-running
its connect cell inside one kernel never leaves more than one erlbridge node behind."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from erlbridge.testing.cluster import Cluster

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "erlbridge-demo.ipynb"
FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))


def cluster_env(cluster: Cluster, tarballs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel is a child process: it inherits these variables.
    monkeypatch.setenv("ERLBRIDGE_TARGETS", ",".join(cluster.node_names))
    monkeypatch.setenv("ERLANG_COOKIE", cluster.cookie)
    monkeypatch.setenv("ERLBRIDGE_FIXTURES", str(tarballs))
    monkeypatch.setenv("ERLBRIDGE_CLIENT_HOST", cluster.client_host())
    if cluster.epmd_port is not None:
        monkeypatch.setenv("ERL_EPMD_PORT", str(cluster.epmd_port))
    else:
        monkeypatch.delenv("ERL_EPMD_PORT", raising=False)
    if cluster.backend == "docker":
        # The images carry tarballs built with their own OTP; upgrade to the version.
        monkeypatch.setenv("ERLBRIDGE_RELEASE", "2.0.0")
    else:
        monkeypatch.delenv("ERLBRIDGE_RELEASE", raising=False)


def test_notebook_is_valid_and_has_outputs_cleared() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code, "the notebook has no code"
    assert all(not c.get("outputs") for c in code), "commit the notebook without outputs"


@pytest.mark.integration
def test_notebook_executes_without_errors(
    erl_cluster: Cluster,
    erl_fixture_tarballs: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    cluster_env(erl_cluster, erl_fixture_tarballs, monkeypatch)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=int(300 * FACTOR),
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError naming the cell if any cell errors
    html = [
        out["data"]["text/html"]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if "text/html" in out.get("data", {})
    ]
    # which_releases, the Script, readiness and the upgrade report render as HTML tables
    assert len(html) >= 4, html
    assert any("make_permanent" in h for h in html)  # the run report
    # the live progress table, updated in place: its last state shows every node ok
    progress = [h for h in html if "upgrade to 2.0.0" in h]
    assert len(progress) == 1, progress
    assert progress[0].count(">ok<") == len(erl_cluster.node_names)


RERUN_CHECK = """
import time
from erlbridge import display
from erlbridge.term import Atom
deadline = time.monotonic() + 10
while True:
    hidden = [display.plain(n) for n in node.rpc(targets[0], "erlang", "nodes", [Atom("hidden")])]
    ours = [n for n in hidden if n.startswith("notebook@")]
    if len(ours) == 1 or time.monotonic() > deadline:
        break
    time.sleep(0.2)
assert len(ours) == 1, hidden
assert list(display._KERNEL_NODES) == [f"notebook@{host}"]
assert node.ping(targets[0])
"""


@pytest.mark.integration
def test_rerunning_the_connect_cell_does_not_leak_nodes(
    erl_cluster: Cluster,
    erl_fixture_tarballs: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    cluster_env(erl_cluster, erl_fixture_tarballs, monkeypatch)
    source = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in source.cells if c.cell_type == "code"]
    setup, connect = code[0], next(c for c in code if "kernel_node(" in c.source)
    sources = [setup.source] + [connect.source] * 4 + [RERUN_CHECK]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    notebook.metadata = source.metadata
    client = NotebookClient(
        notebook,
        timeout=int(120 * FACTOR),
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
