"""Release mode: the :class:`~erlbridge.driver.driver.Driver` operations that go
through ``release_handler`` on every target (upgrade / downgrade, unpack,
make_permanent, remove_release, reboot_old_release, which_releases, upgrade_app).
The per-target calls are in :mod:`.release_ops`; the contracts in :mod:`.driver`.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from erlbridge.driver import direct_ops
from erlbridge.driver.dry_run import check_release
from erlbridge.driver.fleet import Fleet, ms
from erlbridge.driver.release_ops import PySync
from erlbridge.driver.remote_calls import charlist, text_of
from erlbridge.driver.run import Run
from erlbridge.driver.run_report import RunReport
from erlbridge.driver.tarball import Tarball
from erlbridge.term import Atom

__all__ = [
    "CHUNK_BYTES",
    "install",
    "make_permanent",
    "reboot_old_release",
    "release_handler_call",
    "tarball_of",
    "unpack",
    "upgrade_app",
    "which_releases",
]

CHUNK_BYTES = 1 << 20


async def install(
    fleet: Fleet,
    kind: str,
    release: str | os.PathLike[str] | Tarball,
    *,
    permanent: bool = True,
    purge: bool = False,
    suspend_timeout: float | None = None,
    code_change_timeout: float | None = None,
    update_paths: bool = False,
    error_action: str = "restart",
    chunk_bytes: int = CHUNK_BYTES,
    python_sync: Iterable[Any] | None = None,
) -> RunReport:
    """:meth:`Driver.upgrade <erlbridge.driver.driver.Driver.upgrade>` and
    :meth:`~erlbridge.driver.driver.Driver.downgrade`; ``kind`` names the operation."""
    tar = tarball_of(release)
    opts: list[Any] = [
        (Atom("error_action"), Atom(error_action)),
        (Atom("update_paths"), Atom("true" if update_paths else "false")),
    ]
    if suspend_timeout is not None:
        opts.append((Atom("suspend_timeout"), ms(suspend_timeout)))
    if code_change_timeout is not None:
        opts.append((Atom("code_change_timeout"), ms(code_change_timeout)))
    rel = fleet.release_ops()
    label = (tar.stem or tar.name) if tar is not None else str(release)
    c = fleet.policy.concurrency
    partial = fleet.policy.canary or (c is not None and c < len(fleet.targets))

    async def prepare(run: Run, n: str, deadline: float) -> None:
        await fleet.connect(n, deadline)
        d = run.data.setdefault(n, {})
        if tar is not None:
            if not await run.step(n, "upload", lambda: rel.upload(n, tar, chunk_bytes, deadline)):
                return
            if not await run.step(n, "unpack", lambda: rel.unpack(n, tar, d, deadline)):
                return
            if run.steps[n][-1].resumed:
                d["vsn"] = text_of(run.steps[n][-1].value)
        else:
            d["vsn"] = str(release)
        await run.step(
            n,
            "check_install",
            lambda: rel.check_install(n, d["vsn"], purge=purge, partial=partial, deadline=deadline),
        )

    async def dry_prepare(run: Run, n: str, deadline: float) -> None:
        # Read-only on the target: nothing uploaded, unpacked or purged.
        await fleet.connect(n, deadline)
        if tar is not None:
            await run.step(
                n,
                "check_release",
                lambda: check_release(rel, n, tar, partial=partial, deadline=deadline),
            )
        else:
            await run.step(
                n,
                "check_install",
                lambda: rel.check_install(
                    n, str(release), purge=False, partial=partial, deadline=deadline
                ),
            )

    async def execute(run: Run, n: str, deadline: float) -> None:
        d = run.data[n]
        d["installing"] = True  # seen by PySync on every exit path
        try:
            ok = await run.step(n, "install", lambda: rel.install(n, d["vsn"], opts, deadline))
        finally:
            d["installing"] = False
        if ok and permanent:
            await run.step(n, "make_permanent", lambda: rel.make_permanent(n, d["vsn"], deadline))

    if fleet.dry_run:
        prep = ["check_release" if tar is not None else "check_install"]
    else:
        prep = (["upload", "unpack"] if tar is not None else []) + ["check_install"]
    exe = ["install"] + (["make_permanent"] if permanent else [])
    sync_ids = list(python_sync or [])
    if tar is not None:
        sync_ids += [i for i in tar.python_sync_ids(fleet.me) if i not in sync_ids]

    def around(run: Run) -> contextlib.AbstractAsyncContextManager[Any]:
        if not sync_ids:
            return contextlib.nullcontext()
        return PySync(fleet.node, sync_ids, run, me=fleet.me)

    return await fleet.two_phase(
        f"{kind}:{label}",
        prep,
        dry_prepare if fleet.dry_run else prepare,
        exe,
        execute,
        around_exec=around,
    )


async def unpack(
    fleet: Fleet, tarball: str | os.PathLike[str] | Tarball, chunk_bytes: int
) -> RunReport:
    """Upload and unpack a release tarball on every target (no install)."""
    tar = tarball_of(tarball)
    if tar is None:
        raise ValueError(f"{tarball}: not a release tarball path (.tar.gz / .tgz)")
    rel = fleet.release_ops()

    async def unit(run: Run, n: str, deadline: float) -> None:
        await fleet.connect(n, deadline)
        if await run.step(n, "upload", lambda: rel.upload(n, tar, chunk_bytes, deadline)):
            await run.step(
                n, "unpack", lambda: rel.unpack(n, tar, run.data.setdefault(n, {}), deadline)
            )

    return await fleet.two_phase(
        f"unpack:{tar.stem or tar.name}", [], None, ["upload", "unpack"], unit
    )


async def make_permanent(fleet: Fleet, vsn: str) -> RunReport:
    """``release_handler:make_permanent(Vsn)`` on every target."""
    rel = fleet.release_ops()

    async def unit(run: Run, n: str, deadline: float) -> None:
        await fleet.connect(n, deadline)
        await run.step(n, "make_permanent", lambda: rel.make_permanent(n, vsn, deadline))

    return await fleet.two_phase(f"make_permanent:{vsn}", [], None, ["make_permanent"], unit)


async def reboot_old_release(fleet: Fleet, vsn: str) -> RunReport:
    """``release_handler:reboot_old_release(Vsn)`` on every target, each restart awaited."""
    rel = fleet.release_ops()

    async def unit(run: Run, n: str, deadline: float) -> None:
        await fleet.connect(n, deadline)
        await run.step(
            n,
            "reboot_old_release",
            lambda: rel.reboot_old_release(
                n, vsn, deadline, node_timeout=fleet.policy.node_timeout
            ),
        )

    return await fleet.two_phase(
        f"reboot_old_release:{vsn}", [], None, ["reboot_old_release"], unit
    )


async def which_releases(fleet: Fleet) -> RunReport:
    """``which_releases`` of every target as a report."""
    rel = fleet.release_ops()

    async def unit(run: Run, n: str, deadline: float) -> None:
        await fleet.connect(n, deadline)
        await run.step(n, "which_releases", lambda: rel.which_releases(n, deadline))

    return await fleet.two_phase("which_releases", [], None, ["which_releases"], unit)


async def upgrade_app(
    fleet: Fleet,
    app: str,
    new_dir: str | None,
    push_code: str | os.PathLike[str] | Mapping[str, bytes] | None,
) -> RunReport:
    """``release_handler:upgrade_app(App, Dir)`` on every target, the code pushed first
    when ``push_code`` is given."""
    if (new_dir is None) == (push_code is None):
        raise ValueError("give exactly one of new_dir and push_code")
    files = direct_ops.beam_files(push_code) if push_code is not None else {}
    vsn = direct_ops.app_vsn(files, app) if files else ""
    run_tag = uuid.uuid4().hex[:8]

    async def unit(run: Run, n: str, deadline: float) -> None:
        await fleet.connect(n, deadline)
        d = run.data.setdefault(n, {})
        target_dir = new_dir
        if files:
            if not await run.step(
                n,
                "push",
                lambda: direct_ops.push(
                    fleet.caller,
                    n,
                    {app: files},
                    {app: vsn},
                    run_tag=run_tag,
                    d=d,
                    push_root=fleet.push_root,
                    deadline=deadline,
                ),
            ):
                return
            target_dir = d["pushed"][app]
        assert target_dir is not None
        await run.step(
            n,
            "upgrade_app",
            lambda: direct_ops.upgrade_app(fleet.caller, n, app, target_dir, deadline),
        )

    steps = (["push"] if files else []) + ["upgrade_app"]
    return await fleet.two_phase(f"upgrade_app:{app}", [], None, steps, unit)


async def release_handler_call(fleet: Fleet, function: str, vsn: str) -> RunReport:
    """``release_handler:Function(Vsn)`` on every target, one step."""
    rel = fleet.release_ops()

    async def unit(run: Run, n: str, deadline: float) -> None:
        await fleet.connect(n, deadline)
        await run.step(n, function, lambda: rel.rh(n, function, [charlist(vsn)], deadline))

    return await fleet.two_phase(f"{function}:{vsn}", [], None, [function], unit)


def tarball_of(release: str | os.PathLike[str] | Tarball) -> Tarball | None:
    """The checked tarball ``release`` names, or None for a version (a plain string not
    ending in ``.tar.gz`` / ``.tgz``). Raises FileNotFoundError, BadReleaseTarball."""
    if isinstance(release, Tarball):
        return release
    if isinstance(release, str) and not release.endswith((".tar.gz", ".tgz")):
        return None
    path = Path(release)
    if not path.is_file():
        raise FileNotFoundError(path)
    return Tarball.load(path)
