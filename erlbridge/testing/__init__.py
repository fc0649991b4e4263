"""Test support: clusters of real Erlang nodes and plain-Erlang clients (L4).

No pytest here; :mod:`erlbridge.pytest_plugin` wraps these in fixtures.

Public API::

    ClusterNode(index, name, address)        one node of a cluster
    Cluster                                  base: start/close, eval, ping, wait_ready,
                                             kill/pause/unpause/restart/disconnect/reconnect,
                                             logs, observer(), node_names, cookie, epmd_port,
                                             supervise() (restart nodes that end, as heart),
                                             upgrade(tarball) / downgrade(vsn) (the driver)
    LocalCluster(release_tarball=..., workdir=..., size=3, ...)   any relx release tarball
    DockerCluster(network=..., release_tarball=..., otp="27", workdir=..., size=3, ...)
                                             (in .docker_cluster; images in .images)
    ReleaseInfo.read(tarball)                name, vsn, applications of a release tarball
    DockerNetwork(client).create() / .remove()
    CookieHome(path, cookie)                 private HOME with a 0400 .erlang.cookie
    ErlCall(home=..., epmd_port=...)         erl_call: eval(node, expr) -> ~p text, ping(node)
    ObserverNode(home=..., epmd_port=...)    plain erl node reporting nodeup/nodedown
    run_escript(script, args, home=..., epmd_port=...)
    fixture_tarballs(...)                    find (or build) the fixture release tarballs
    fixture_cluster_options(tarball_dir)     the fixture's cluster options (env variables)
"""

from erlbridge.testing.cluster import (
    Cluster,
    ClusterNode,
    LocalCluster,
    NodeRef,
    NodeSupervisor,
    free_port,
)
from erlbridge.testing.erlang import (
    CookieHome,
    ErlCall,
    NodeEvent,
    ObserverNode,
    find_erl,
    find_erl_call,
    local_otp_release,
    new_cookie,
    run_escript,
)
from erlbridge.testing.fixture_release import (
    FIXTURE_VERSIONS,
    fixture_cluster_options,
    fixture_tarballs,
    repo_root,
)
from erlbridge.testing.release import ReleaseInfo

__all__ = [
    "FIXTURE_VERSIONS",
    "Cluster",
    "ClusterNode",
    "CookieHome",
    "ErlCall",
    "LocalCluster",
    "NodeEvent",
    "NodeRef",
    "NodeSupervisor",
    "ObserverNode",
    "ReleaseInfo",
    "find_erl",
    "find_erl_call",
    "fixture_cluster_options",
    "fixture_tarballs",
    "free_port",
    "local_otp_release",
    "new_cookie",
    "repo_root",
    "run_escript",
]
