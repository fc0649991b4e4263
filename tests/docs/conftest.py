"""The environment docs examples run in: a real cluster's coordinates (see the runner)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from erlbridge.testing.cluster import Cluster


@pytest.fixture
def docs_env(erl_cluster: Cluster, erl_fixture_tarballs: Path) -> dict[str, str]:
    names = erl_cluster.node_names
    # A real cluster is meshed: let the seed connect to the others (for `nodes`/--seed).
    others = ",".join(f"'{n}'" for n in names[1:])
    erl_cluster.eval(0, f"[net_adm:ping(N) || N <- [{others}]].")
    env = dict(os.environ)
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "ERLANG_COOKIE": erl_cluster.cookie,
            "ERLBRIDGE_TARGETS": ",".join(names),
            "ERLBRIDGE_SEED": names[0],
            "ERLBRIDGE_FIXTURES": str(erl_fixture_tarballs),
            "ERLBRIDGE_CLIENT_HOST": erl_cluster.client_host(),
        }
    )
    if erl_cluster.epmd_port is not None:
        env["ERL_EPMD_PORT"] = str(erl_cluster.epmd_port)
    else:
        env.pop("ERL_EPMD_PORT", None)
    return env
