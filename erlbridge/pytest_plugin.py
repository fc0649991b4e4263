"""erlbridge's pytest plugin: clusters of real Erlang/OTP nodes as fixtures (L5).

Registered through the ``pytest11`` entry point ``erlbridge`` (``pip install
'erlbridge[testing]'``); importing it costs nothing when no test asks for a cluster (the
Docker SDK is imported on use).

Command-line options (each also an ini option: ``erl_backend``, ``erl_otp``,
``erl_release``, ``erl_fixtures_dir``)
------------------------------------------------------------------------------------
``--erl-backend=local,docker``
    Backends cluster tests run on (comma-separated; default ``$ERLBRIDGE_ERL_BACKEND``,
    else the ini option, else ``local``). ``local`` runs target systems with the
    machine's Erlang; ``docker`` runs containers. A plain ``pytest`` touches no Docker
    engine unless asked: by this option or by ``@pytest.mark.erl_backend("docker")``.
``--otp=25,27,29``
    OTP releases for the docker backend (default ``$ERLBRIDGE_OTP``, the ini option, else
    all three when ``CI=true``, else ``27``); ``@pytest.mark.erl_cluster(otp="27")``
    picks them for one test.
``--erl-release=PATH``
    The default release tarball of ``erl_cluster`` (``NAME-VSN.tar.gz`` made by
    ``rebar3 tar``; relative paths are relative to pytest's rootdir). Without one,
    clusters run erlbridge's own ``fixture`` release.
``--erl-fixtures-dir=DIR``
    Where the fixture tarballs are (default ``$ERLBRIDGE_FIXTURES_DIR``, the checkout's
    ``_build/fixtures``, else ``~/.cache/erlbridge/fixtures``; built on first use).

Fixtures (stable public names)
------------------------------
``erl_target``
    (function, parametrized) an :class:`ErlTarget` ``(backend, otp)``. Every test that
    uses ``erl_target``, ``erl_cluster`` or ``erl_cluster_factory`` runs once per selected
    backend x OTP release (ids ``local-otp25``, ``docker-otp27``, ...). A target that
    cannot run here (no ``erl``, no Docker engine, image not built) is skipped with its
    reason. Restrict with ``@pytest.mark.erl_backend("docker")``.
``erl_cluster``
    (function) a started :class:`erlbridge.testing.Cluster` of the current target, every
    application of its release running. Configure with
    ``@pytest.mark.erl_cluster(release="path/NAME-VSN.tar.gz", size=3, otp="27",
    net_ticktime=4, erl_flags="", env={...})``. ``erl_cluster.upgrade(path)`` /
    ``.downgrade(vsn)`` run the driver on every node and return its report.
``erl_cluster_factory``
    (function) ``make(size=3, *, release=None, target=None, **options) -> Cluster`` for
    tests needing several clusters; every cluster made is closed at teardown.
``erl_fixture_tarballs``
    (session) the directory holding erlbridge's ``fixture-1.0.0.tar.gz``, ``-2.0.0``,
    ``-2.1.0`` built with the machine's OTP (the docker images carry their own).
``erl_docker_network``
    (session) the :class:`erlbridge.testing.docker_cluster.DockerNetwork` of this session
    (unique name, created on first use, removed with all its containers at the end).
``erl_timeout_factor``
    (session) ``float($ERLBRIDGE_TIMEOUT_FACTOR)`` (default 1); multiply waits by it.
``erlbridge_node``
    (function) a hidden :class:`erlbridge.sync.Node` connected to every node of
    ``erl_cluster``; closed at teardown.

Reports and CI
--------------
When a test using clusters fails, the last lines of each node's log and the journals of
its upgrades are attached to its report (sections ``erlang node NAME``, ``erlbridge
journal``), nodes that are down marked ``NOT ANSWERING``. Tests using a target are marked
``integration`` (and ``docker`` on that backend). With ``CI=true`` a skipped
``integration``/``docker`` test fails the session: CI must not pass because Erlang or
Docker was missing.

Connected erlbridge node
------------------------
Fixtures that yield a *connected erlbridge node* (the Python node joined to
``erl_cluster``) belong in the section marked "connected erlbridge node" at the end of
this module; they should build on ``erl_cluster`` (node names: ``cluster.node_names``,
cookie: ``cluster.cookie``, EPMD port: ``cluster.epmd_port`` -- None means 4369).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from erlbridge.exceptions import ErlbridgeError, InvalidState
from erlbridge.testing.cluster import Cluster, LocalCluster
from erlbridge.testing.erlang import find_erl, find_erl_call, local_otp_release
from erlbridge.testing.fixture_release import fixture_cluster_options, fixture_tarballs

__all__ = ["ErlTarget"]

_CLUSTERS = pytest.StashKey[list[Cluster]]()
_SKIPPED_INTEGRATION = pytest.StashKey[list[str]]()
_BACKENDS = ("local", "docker")


@dataclass(frozen=True, slots=True)
class ErlTarget:
    """Where cluster nodes run: ``backend`` ``local`` or ``docker``, and the OTP release."""

    backend: str
    otp: str

    @property
    def id(self) -> str:
        return f"{self.backend}-otp{self.otp}"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("erlbridge", "erlbridge Erlang clusters")
    group.addoption(
        "--erl-backend",
        default=None,
        help="comma-separated cluster backends: local, docker (default: "
        "$ERLBRIDGE_ERL_BACKEND, ini erl_backend, else local)",
    )
    group.addoption(
        "--otp",
        default=None,
        help="comma-separated OTP releases for the docker backend, e.g. 25,27,29 "
        "(default: $ERLBRIDGE_OTP, ini erl_otp, else 27; 25,27,29 with CI=true)",
    )
    group.addoption(
        "--erl-release",
        default=None,
        help="default release tarball of erl_cluster (NAME-VSN.tar.gz from rebar3 tar; "
        "relative to the rootdir); default: ini erl_release, else erlbridge's fixture",
    )
    group.addoption(
        "--erl-fixtures-dir",
        default=None,
        help="directory of erlbridge's fixture release tarballs (default: build them)",
    )
    parser.addini("erl_backend", "cluster backends (comma-separated): local, docker",
                  default="")
    parser.addini("erl_otp", "OTP releases of the docker backend (comma-separated)",
                  default="")
    parser.addini("erl_release", "default release tarball of erl_cluster", default="")
    parser.addini("erl_fixtures_dir", "directory of erlbridge's fixture tarballs",
                  default="")


def _setting(config: pytest.Config, option: str, env: str, ini: str) -> str | None:
    """An option's value: command line, then environment, then ini; None when unset."""
    value = config.getoption(option)
    if value:
        return str(value)
    if os.environ.get(env):
        return os.environ[env]
    from_ini = config.getini(ini)
    return str(from_ini) if from_ini else None


def _backends(config: pytest.Config) -> tuple[list[str], bool]:
    """The selected backends and whether they were chosen explicitly."""
    chosen = _setting(config, "--erl-backend", "ERLBRIDGE_ERL_BACKEND", "erl_backend")
    return (_split(chosen), True) if chosen else (["local"], False)


def _otps(config: pytest.Config) -> list[str]:
    chosen = _setting(config, "--otp", "ERLBRIDGE_OTP", "erl_otp")
    return _split(chosen or ("25,27,29" if _in_ci() else "27"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "erl_cluster(release=None, size=3, otp=None, net_ticktime=None, erl_flags='', "
        "env=None, sync_barrier=True): options of the erl_cluster fixture",
    )
    config.addinivalue_line(
        "markers", "erl_backend(*names): run this cluster test on these backends")
    for name in ("integration", "docker"):
        config.addinivalue_line("markers", f"{name}: (erlbridge plugin)")
    config.stash[_SKIPPED_INTEGRATION] = []
    backends, _explicit = _backends(config)
    unknown = [b for b in backends if b not in _BACKENDS]
    if unknown:
        raise pytest.UsageError(f"--erl-backend: unknown backend(s) {unknown}")


def _split(value: str | list[str] | tuple[str, ...] | int) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _targets(config: pytest.Config, backends: list[str],
             otps: list[str] | None = None) -> list[ErlTarget]:
    targets = []
    for backend in backends:
        if backend == "local":
            targets.append(ErlTarget("local", local_otp_release() or "none"))
        else:
            targets.extend(ErlTarget("docker", otp) for otp in (otps or _otps(config)))
    return targets


_TARGET_FIXTURES = ("erl_target", "erl_cluster", "erl_cluster_factory")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not any(name in metafunc.fixturenames for name in _TARGET_FIXTURES):
        return
    if "erl_target" not in metafunc.fixturenames:
        metafunc.fixturenames.append("erl_target")
    backends, explicit = _backends(metafunc.config)
    marker = metafunc.definition.get_closest_marker("erl_backend")
    if marker is not None:
        wanted = [str(b) for b in marker.args]
        unknown = [b for b in wanted if b not in _BACKENDS]
        if unknown:
            raise pytest.UsageError(f"erl_backend marker: unknown backend(s) {unknown}")
        # An explicit selection restricts; without one, the marker asks for its backends.
        backends = [b for b in backends if b in wanted] if explicit else wanted
    cluster_marker = metafunc.definition.get_closest_marker("erl_cluster")
    otp = cluster_marker.kwargs.get("otp") if cluster_marker is not None else None
    targets = _targets(metafunc.config, backends, _split(otp) if otp else None)
    params = []
    for t in targets:
        marks = [pytest.mark.integration]
        if t.backend == "docker":
            marks.append(pytest.mark.docker)
        params.append(pytest.param(t, id=t.id, marks=marks))
    if not params:
        params = [pytest.param(None, id="no-backend",
                               marks=pytest.mark.skip(reason="no selected backend"))]
    metafunc.parametrize("erl_target", params, indirect=True)


# -- availability (cached per session) --------------------------------------------------

_availability: dict[str, str | None] = {}


def _unavailable(target: ErlTarget) -> str | None:
    """Why ``target`` cannot run here (images aside: see the factory), or None."""
    key = target.id
    if key in _availability:
        return _availability[key]
    reason: str | None = None
    if target.backend == "local":
        if find_erl() is None:
            reason = "no erl on this machine (apt-get install erlang-nox)"
        elif find_erl_call() is None:
            reason = "no erl_call on this machine (erl_interface)"
    elif find_erl_call() is None:
        reason = "no erl_call on this machine (needed to reach containers)"
    else:
        from erlbridge.testing.docker_cluster import docker_client  # noqa: PLC0415

        try:
            docker_client()
        except InvalidState as exc:
            reason = str(exc)
    _availability[key] = reason
    return reason


def _image_missing(network: Any, target: ErlTarget, release: Path | None) -> str | None:
    """Why the image a docker cluster needs is missing (cannot be built here), or None."""
    from erlbridge.testing.docker_cluster import node_image  # noqa: PLC0415
    from erlbridge.testing.images import base_image  # noqa: PLC0415

    image = base_image(target.otp) if release is not None else node_image(target.otp)
    try:
        network.client.images.get(image)
    except Exception:  # ImageNotFound or API trouble
        how = (f"erlbridge images build --otp {target.otp}" if release is not None
               else f"erlbridge images build --otp {target.otp} --node-images")
        return f"image {image} missing ({how})"
    return None


@pytest.fixture
def erl_target(request: pytest.FixtureRequest) -> ErlTarget:
    target: ErlTarget | None = getattr(request, "param", None)
    if target is None:
        pytest.skip("no erl_target parameter")
    reason = _unavailable(target)
    if reason is not None:
        pytest.skip(f"{target.id}: {reason}")
    return target


@pytest.fixture(scope="session")
def erl_timeout_factor() -> float:
    return float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))


@pytest.fixture(scope="session")
def erl_fixture_tarballs(pytestconfig: pytest.Config) -> Path:
    if find_erl() is None:
        pytest.skip("no erl on this machine: cannot build the fixture releases")
    given = _setting(pytestconfig, "--erl-fixtures-dir", "ERLBRIDGE_FIXTURES_DIR",
                     "erl_fixtures_dir")
    try:
        return fixture_tarballs(_rooted(pytestconfig, given) if given else None)
    except InvalidState as exc:
        pytest.fail(str(exc))


def _rooted(config: pytest.Config, path: str | os.PathLike[str]) -> Path:
    """``path`` relative to pytest's rootdir (absolute paths unchanged)."""
    return Path(config.rootpath) / Path(path)


@pytest.fixture(scope="session")
def erl_docker_network() -> Iterator[Any]:
    from erlbridge.testing.docker_cluster import DockerNetwork, docker_client  # noqa: PLC0415

    try:
        client = docker_client()
    except InvalidState as exc:
        pytest.skip(str(exc))
    network = DockerNetwork(client).create()
    try:
        yield network
    finally:
        network.remove()


ClusterFactory = Callable[..., Cluster]


@pytest.fixture
def erl_cluster_factory(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    erl_timeout_factor: float,
) -> Iterator[ClusterFactory]:
    made: list[Cluster] = []
    request.node.stash[_CLUSTERS] = made
    config = request.config

    def make(size: int = 3, *, release: str | os.PathLike[str] | None = None,
             target: ErlTarget | None = None, **options: Any) -> Cluster:
        """A started cluster of ``size`` nodes of ``release`` (default: ``--erl-release``,
        else erlbridge's fixture) on ``target`` (default: the test's)."""
        chosen: ErlTarget = target or request.getfixturevalue("erl_target")
        if target is not None and (reason := _unavailable(target)) is not None:
            pytest.skip(f"{target.id}: {reason}")
        options.pop("otp", None)  # chose the targets already (pytest_generate_tests)
        given = release or config.getoption("--erl-release") or config.getini("erl_release")
        tarball = _rooted(config, given) if given else None
        if tarball is not None and not tarball.is_file():
            pytest.fail(f"release tarball {tarball} not found", pytrace=False)
        workdir = tmp_path_factory.mktemp(f"cluster-{chosen.id}")
        options.setdefault("timeout_factor", erl_timeout_factor)
        cluster: Cluster
        if chosen.backend == "local":
            if tarball is None:
                tarballs: Path = request.getfixturevalue("erl_fixture_tarballs")
                tarball = tarballs / "fixture-1.0.0.tar.gz"
                _fixture_defaults(options, tarballs)
            cluster = LocalCluster(release_tarball=tarball, size=size, workdir=workdir,
                                   **options)
        else:
            from erlbridge.testing.docker_cluster import DockerCluster  # noqa: PLC0415

            network = request.getfixturevalue("erl_docker_network")
            if (reason := _image_missing(network, chosen, tarball)) is not None:
                pytest.skip(f"{chosen.id}: {reason}")
            if tarball is None:
                _fixture_defaults(options, None)
            cluster = DockerCluster(network=network, otp=chosen.otp, release_tarball=tarball,
                                    size=size, workdir=workdir, **options)
        made.append(cluster)
        cluster.start()
        return cluster

    try:
        yield make
    finally:
        for cluster in made:
            cluster.close()


def _fixture_defaults(options: dict[str, Any], tarballs: Path | None) -> None:
    for key, value in fixture_cluster_options(tarballs).items():
        if key == "env":
            options["env"] = {**value, **(options.get("env") or {})}
        else:
            options.setdefault(key, value)


@pytest.fixture
def erl_cluster(request: pytest.FixtureRequest, erl_cluster_factory: ClusterFactory) -> Cluster:
    marker = request.node.get_closest_marker("erl_cluster")
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    size = int(options.pop("size", 3))
    return erl_cluster_factory(size, **options)


# -- reports ---------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    outcome: Any = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and (item.get_closest_marker("integration") is not None
                           or item.get_closest_marker("docker") is not None):
        item.config.stash[_SKIPPED_INTEGRATION].append(item.nodeid)
    if report.failed and report.when in ("call", "setup"):
        for cluster in item.stash.get(_CLUSTERS, []):
            _attach_logs(report, cluster)
            _attach_journals(report, cluster)


def _attach_logs(report: pytest.TestReport, cluster: Cluster) -> None:
    for node in cluster.nodes:
        try:
            answering = cluster.erl_call.ping(node.name, timeout=2.0)
        except ErlbridgeError:
            answering = False
        status = "answering" if answering else "NOT ANSWERING"
        report.sections.append(
            (f"erlang node {node.name} ({cluster.backend}, {status})",
             cluster.logs(node, tail_lines=80 if answering else 300)))


def _attach_journals(report: pytest.TestReport, cluster: Cluster) -> None:
    for journal in cluster.journals:
        try:
            lines = journal.read_text(errors="replace").splitlines()
        except OSError as exc:
            lines = [f"(no journal: {exc})"]
        report.sections.append((f"erlbridge journal {journal.name}", "\n".join(lines[-200:])))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    skipped = session.config.stash.get(_SKIPPED_INTEGRATION, [])
    if _in_ci() and skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    skipped = config.stash.get(_SKIPPED_INTEGRATION, [])
    if skipped and _in_ci():
        terminalreporter.section("erlbridge: integration tests skipped in CI", red=True)
        for nodeid in skipped:
            terminalreporter.write_line(f"SKIPPED (fails CI): {nodeid}")
    elif skipped:
        terminalreporter.write_line(
            f"erlbridge: {len(skipped)} integration test(s) skipped (would fail with CI=true)")


# -- connected erlbridge node ------------------------------------------------------------
# Fixtures yielding a connected erlbridge node (e.g. ``erlbridge_node``) go here, built on
# ``erl_cluster``; keep their names stable and list them in the module docstring.

_NODE_IDS = iter(range(1, 1 << 30))


@pytest.fixture
def erlbridge_node(erl_cluster: Cluster, erl_timeout_factor: float) -> Iterator[Any]:
    """(function) a started, hidden :class:`erlbridge.sync.Node` joined to ``erl_cluster``.

    It is connected to every node of the cluster before the test starts and closed at
    teardown. Its name is ``pytest-<pid>-<n>@<cluster.client_host()>``. For the async
    API, use ``node.asyncio_node`` only from the node's own loop, or start an
    :class:`erlbridge.asyncio.Node` in the test with the same cluster coordinates.
    """
    from erlbridge.sync import Node  # noqa: PLC0415 (keep plugin import cheap)

    name = f"pytest-{os.getpid()}-{next(_NODE_IDS)}@{erl_cluster.client_host()}"
    node = Node(name, cookie=erl_cluster.cookie, epmd_port=erl_cluster.epmd_port, hidden=True)
    node.start()
    try:
        for target in erl_cluster.node_names:
            node.connect(target, timeout=30.0 * erl_timeout_factor)
        yield node
    finally:
        node.close()
