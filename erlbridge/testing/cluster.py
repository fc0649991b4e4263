"""Clusters of release nodes for tests (L4; plain classes, no pytest).

A :class:`Cluster` starts N nodes of any relx release (see :mod:`.release`), waits until
every application of the release runs on each, and offers fault helpers: kill,
pause/unpause, restart, disconnect / reconnect (a network partition of one node).
Two backends share this API:

* :class:`LocalCluster` -- target systems extracted from a release tarball into a work
  directory, each started with its own ``bin/NAME foreground`` (its own erts, or the
  machine's OTP when the tarball has none), all registered with a private ``epmd`` on a
  free port (``ERL_EPMD_PORT``).
* :class:`erlbridge.testing.docker_cluster.DockerCluster` -- containers of an image
  holding the release, on a Docker network made for the test session.

Each node's name and cookie are set in its extracted copy (``vm.args``), so releases
need no change (see :func:`erlbridge.testing.release.configure_node_files`).

Neither backend runs ``heart``: a node that reboots (``init:reboot()``, e.g. from
``release_handler:reboot_old_release/1``) just ends. :meth:`Cluster.supervise` stands in
for heart and starts such nodes again. A (re)started node boots the release that
``releases/start_erl.data`` names, i.e. the permanent one, as heart's restart would.

Node names are long names with IP addresses (``NAME1@127.0.0.1``, ``NAME@172.18.0.10``
where NAME is the release name). ``nodes_env`` names a variable that receives every
node name (comma-separated), e.g. ``FIXTURE_CLUSTER`` for the fixture release's
``sync_nodes`` barrier. The cookie never appears on a command line (see :mod:`.erlang`).

The base and :class:`NodeSupervisor` are in :mod:`.cluster_base`, :class:`LocalCluster` in
:mod:`.local_cluster`; their public names are re-exported here.
"""

from erlbridge.testing.cluster_base import (
    Cluster,
    ClusterNode,
    NodeRef,
    NodeSupervisor,
    free_port,
)
from erlbridge.testing.local_cluster import LocalCluster

__all__ = ["Cluster", "ClusterNode", "LocalCluster", "NodeRef", "NodeSupervisor", "free_port"]
