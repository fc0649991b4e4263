"""Writes examples/erlbridge-demo.ipynb from the cells below (run after editing them).

Keeping the cells in a Python file makes them reviewable in diffs; the notebook is the
artifact users open. ``tests/notebook`` executes the .ipynb headlessly.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

CELLS: list[tuple[str, str]] = [
    ("markdown", """# erlbridge in a notebook

This notebook joins a running Erlang cluster as a hidden node, looks at it, builds an
upgrade `Script`, and upgrades the cluster's release — with tables and live per-node
progress rendered in the cells.

It reads the cluster's coordinates from the environment, so the same notebook works
against the local demo cluster (`scripts/demo.sh --keep` prints every variable below:
export them in the shell that starts Jupyter) or containers, from any working directory:

| variable | meaning |
|---|---|
| `ERLBRIDGE_TARGETS` | comma-separated node names (`fixture1@127.0.0.1,...`) |
| `ERLANG_COOKIE` or `ERLBRIDGE_COOKIE_FILE` | the cluster's cookie |
| `ERL_EPMD_PORT` | EPMD port, if not 4369 |
| `ERLBRIDGE_FIXTURES` | folder with `fixture-2.0.0.tar.gz` (default: the checkout's) |
| `ERLBRIDGE_CLIENT_HOST` | this machine's address as the nodes see it |
| `ERLBRIDGE_RELEASE` | what to upgrade to: a tarball path or a version (see below) |"""),
    ("code", """import os
from pathlib import Path

targets = os.environ["ERLBRIDGE_TARGETS"].split(",")
cookie = os.environ.get("ERLANG_COOKIE") or (
    Path(os.environ["ERLBRIDGE_COOKIE_FILE"]).read_text().strip()
)
epmd_port = int(os.environ["ERL_EPMD_PORT"]) if os.environ.get("ERL_EPMD_PORT") else None
if os.environ.get("ERLBRIDGE_FIXTURES"):
    fixtures = Path(os.environ["ERLBRIDGE_FIXTURES"]).resolve()
else:  # the checkout's _build/fixtures, whatever folder Jupyter started the kernel in
    from erlbridge.testing import fixture_tarballs

    fixtures = fixture_tarballs()
# the address this machine uses in node names (differs from the targets' with containers)
host = os.environ.get("ERLBRIDGE_CLIENT_HOST") or targets[0].split("@", 1)[1]
targets"""),
    ("markdown", """## Connect with the blocking API

`erlbridge.Node` is the blocking API. It runs its event loop in a background thread, so it
works inside Jupyter's own running loop. `kernel_node` keeps **one** node per name for the
kernel: re-running this cell replaces the node instead of leaking another one."""),
    ("code", """from erlbridge.display import kernel_node

node = kernel_node(f"notebook@{host}", cookie=cookie, epmd_port=epmd_port)
{t: node.ping(t) for t in targets}"""),
    ("markdown", """Arguments are Erlang terms: a Python `str` is a binary, an atom is `Atom("...")`
(see the table in docs/node.md)."""),
    ("code", """from erlbridge.term import Atom

node.rpc(targets[0], "erlang", "system_info", [Atom("otp_release")])"""),
    ("code", """result = node.rpc(
    targets[0], "io", "format", ["hello from ~s~n", [targets[0]]], capture_output=True
)
result.output"""),
    ("markdown", """## What runs where: `which_releases` on every node, as a table"""),
    ("code", """from erlbridge.display import Table, plain

outcomes = node.multicall(targets, "release_handler", "which_releases", [])
Table(
    ("node", "release", "version", "status"),
    tuple(
        (plain(n), plain(name), plain(vsn), plain(status))
        for n, o in outcomes.items()
        for name, vsn, _apps, status in o.unwrap()
    ),
    "which_releases",
    "status",
)"""),
    ("markdown", """## Build and check an upgrade script offline

`Script` objects validate by OTP's own rules (no node involved) and render as HTML."""),
    ("code", """from erlbridge.upgrade import (
    Apply,
    CodeChange,
    Load,
    LoadObjectCode,
    PointOfNoReturn,
    Resume,
    Script,
    Suspend,
)

script = Script([
    LoadObjectCode("fixture", "2.0.0", ["fixture_server"]),
    PointOfNoReturn(),
    Suspend(["fixture_server"]),
    Load("fixture_server"),
    CodeChange([("fixture_server", [])]),
    Resume(["fixture_server"]),
    Apply("erlang", "garbage_collect", []),
])
warnings = script.validate()
script"""),
    ("code", """print(script.to_text())"""),
    ("markdown", """## The driver, with top-level `await`

The driver is asynchronous: in a notebook, `await` it directly. Readiness first."""),
    ("code", """from erlbridge.asyncio import Node as AsyncNode
from erlbridge.driver import Driver

anode = AsyncNode(f"notebook-driver@{host}", cookie=cookie, epmd_port=epmd_port)
await anode.start()
readiness = await Driver(anode, targets).readiness()
readiness"""),
    ("markdown", """## Upgrade the release on every node, with live progress in the cell

`watch_run` follows the driver's journal and redraws one line per node while the upgrade
runs (upload, unpack, check_install on all nodes, then install — the relup's `sync_nodes`
barrier holds every node until all have arrived — and make_permanent)."""),
    ("markdown", """`ERLBRIDGE_RELEASE` chooses what to install: a tarball path (uploaded to
every node;
the default is the local `fixture-2.0.0.tar.gz`) or a version whose tarball the nodes
already hold (containers built from the repo's images carry theirs: the fixture's own
`fixture:unpack/1` unpacks it first).

The upgrade starts from 1.0.0: nodes already at 2.0.0 (the state `scripts/demo.sh
--keep` leaves the cluster in, or a second run of this notebook) first go back with
`driver.downgrade("1.0.0")`, the relup's down-script."""),
    ("code", """import tempfile
import time

from erlbridge.display import CellProgress, watch_run
from erlbridge.term import ErlString

running = {plain(n): plain(o.unwrap())
           for n, o in node.multicall(targets, "fixture", "vsn", []).items()}
ahead = [t for t in targets if running[t] != "1.0.0"]
if ahead:
    back = await Driver(anode, ahead, node_timeout=120).downgrade("1.0.0")
    assert back.ok, back.to_table()

release = os.environ.get("ERLBRIDGE_RELEASE") or str(fixtures / "fixture-2.0.0.tar.gz")
if release.endswith(".tar.gz"):
    source = Path(release)
else:
    known = node.multicall(targets, "release_handler", "which_releases", [])
    fresh = [plain(n) for n, o in known.items()
             if release not in [plain(vsn) for _name, vsn, _apps, _status in o.unwrap()]]
    unpacked = node.multicall(fresh, "fixture", "unpack", [ErlString(release)], timeout=120)
    assert all(o.ok and o.value[0] == "ok" for o in unpacked.values()), unpacked
    source = release

journal = Path(tempfile.mkdtemp()) / "upgrade.journal"
driver = Driver(anode, targets, journal=journal, node_timeout=120)
progress = CellProgress("upgrade to 2.0.0", clock=time.monotonic)
report = await watch_run(driver.upgrade(source), journal=journal, progress=progress)
report"""),
    ("code", """assert report.ok, report.to_table()
{plain(n): plain(o.unwrap()) for n, o in node.multicall(targets, "fixture", "vsn", []).items()}"""),
    ("markdown", """## Clean up"""),
    ("code", """from erlbridge.display import close_kernel_nodes

await anode.close()
close_kernel_nodes()"""),
]


def build() -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    for kind, source in CELLS:
        if kind == "markdown":
            notebook.cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            notebook.cells.append(nbformat.v4.new_code_cell(source))
    return notebook


if __name__ == "__main__":
    target = Path(__file__).with_name("erlbridge-demo.ipynb")
    nbformat.write(build(), target)
    print(f"wrote {target}")
