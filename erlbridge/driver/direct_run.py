"""Direct mode: :meth:`Driver.run_script <erlbridge.driver.driver.Driver.run_script>`
on every target (``check_script``, then ``eval_script/5``; ``sync_nodes`` served by
barriers on the Python node). The per-target calls are in :mod:`.direct_ops`.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Mapping
from typing import Any

from erlbridge.driver import direct_ops
from erlbridge.driver.barrier_service import BarrierService
from erlbridge.driver.fleet import Fleet, ms
from erlbridge.driver.rendering import jsonable
from erlbridge.driver.run import Run, now
from erlbridge.driver.run_report import RunReport
from erlbridge.driver.script_rewrite import (
    find_barriers,
    rewrite_barriers,
    script_libs,
    script_terms,
    strip_barriers,
    suspended_modules,
)
from erlbridge.exceptions import ScriptError
from erlbridge.term import Atom
from erlbridge.upgrade import Phase

__all__ = ["run_script"]


async def run_script(
    fleet: Fleet,
    script: Any,
    *,
    push_code: Mapping[str, str | os.PathLike[str] | Mapping[str, bytes]] | None,
    lib_dirs: Mapping[str, str] | None,
    suspend_timeout: float | None,
    code_change_timeout: float | None,
    update_paths: bool,
    barrier_timeout: float | None,
    resume_on_failure: bool,
) -> RunReport:
    """:meth:`Driver.run_script <erlbridge.driver.driver.Driver.run_script>` on the
    fleet's targets (see there)."""
    if hasattr(script, "validate"):
        script.validate()
    terms = script_terms(script)
    barriers = find_barriers(terms)
    me = fleet.me
    direct_ops.check_barriers(barriers, fleet.targets, fleet.policy, me=me)
    libs = script_libs(terms)
    suspended_mods = suspended_modules(terms)
    pushed = {app: direct_ops.beam_files(src) for app, src in (push_code or {}).items()}
    for app in pushed:
        if app not in libs:
            raise ScriptError(
                f"push_code for {app}, which the script does not load", rule="push_unused"
            )
    opts: list[Any] = [(Atom("update_paths"), Atom("true" if update_paths else "false"))]
    if suspend_timeout is not None:
        opts.append((Atom("suspend_timeout"), ms(suspend_timeout)))
    if code_change_timeout is not None:
        opts.append((Atom("code_change_timeout"), ms(code_change_timeout)))
    check_terms = strip_barriers(terms)
    b_timeout = barrier_timeout or fleet.barrier_timeout
    # The Python side fails a waiter at b_timeout (with a clear reason); the target-side
    # call timeout is a little later, the backstop if the Python node is gone.
    target_timeout = b_timeout + max(1.0, 0.1 * b_timeout)
    service: BarrierService | None = None
    run_tag = uuid.uuid4().hex[:8]

    # A dry run must leave the targets as found: the pushed copy (check_script reads
    # it from disk) is removed after the preflight, and the push root too where this
    # run created it (looked at before any node's push: nodes may share a host).
    clean_up = bool(pushed) and fleet.dry_run
    had_root = await fleet.dirs_present(fleet.push_root) if clean_up else {}

    async def prepare(run: Run, n: str, deadline: float) -> None:
        try:
            await prepare_node(run, n, deadline)
        finally:
            if clean_up:
                await run.step(
                    n,
                    "remove_pushed",
                    lambda: direct_ops.remove_pushed(
                        fleet.caller,
                        n,
                        push_root=fleet.push_root,
                        run_tag=run_tag,
                        keep_root=had_root.get(n, True),
                        deadline=deadline,
                    ),
                )

    async def prepare_node(run: Run, n: str, deadline: float) -> None:
        await fleet.connect(n, deadline)
        d = run.data.setdefault(n, {})
        if pushed:
            ok = await run.step(
                n,
                "push",
                lambda: direct_ops.push(
                    fleet.caller,
                    n,
                    pushed,
                    libs,
                    run_tag=run_tag,
                    d=d,
                    push_root=fleet.push_root,
                    deadline=deadline,
                ),
            )
            if not ok:
                return
        ok = await run.step(
            n,
            "lib_dirs",
            lambda: direct_ops.lib_dirs(
                fleet.caller, n, libs, lib_dirs or {}, d=d, deadline=deadline
            ),
        )
        if ok:
            await run.step(
                n,
                "preflight",
                lambda: direct_ops.check_script(
                    fleet.caller, n, check_terms, d["libdirs"], deadline
                ),
            )

    async def execute(run: Run, n: str, deadline: float) -> None:
        d = run.data.setdefault(n, {})
        script_n = terms
        if service is not None:
            script_n = rewrite_barriers(
                terms,
                barrier_name=service.name_for(n),
                py_node=me,
                target=n,
                timeout_ms=ms(target_timeout),
            )
        try:
            await run.step(
                n,
                "eval",
                lambda: direct_ops.eval_script(
                    fleet.caller,
                    run.outputs,
                    n,
                    script_n,
                    d["libdirs"],
                    opts=opts,
                    deadline=deadline,
                ),
            )
        finally:
            if service is not None:
                service.node_gone(n, "finished")
        last = run.steps[n][-1]
        if (
            resume_on_failure
            and suspended_mods
            and last.step == "eval"
            and last.error is not None
            and last.error.phase is not Phase.BEFORE_POINT_OF_NO_RETURN
        ):
            # release_handler would restart the node here; in direct mode the processes
            # the script suspended would stay suspended: resume them.
            await run.step(
                n,
                "resume_suspended",
                lambda: fleet.caller.expr(
                    n,
                    direct_ops.RESUME_SUSPENDED,
                    {"Mods": [Atom(m) for m in suspended_mods]},
                    deadline=now() + fleet.policy.node_timeout,
                ),
            )

    @contextlib.asynccontextmanager
    async def around(run: Run) -> Any:
        nonlocal service
        if not barriers:
            yield None
            return
        async with BarrierService(
            fleet.node, fleet.targets, run.journal.run, timeout=b_timeout
        ) as service:
            yield service

    prep = (["push"] if pushed else []) + ["lib_dirs", "preflight"]
    prep += ["remove_pushed"] if clean_up else []
    return await fleet.two_phase(
        "run_script",
        prep,
        prepare,
        ["eval"],
        execute,
        extra={"barriers": [jsonable(b.id) for b in barriers], "libs": libs},
        around_exec=around,
    )
