"""The README's main command, `scripts/demo.sh`, works as written and cleans up after itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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
