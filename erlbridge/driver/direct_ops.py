"""Direct-mode per-node operations: push code, lib dirs, ``check_script``, ``eval_script`` (I/O).

Each call works on one target through a :class:`~erlbridge.driver.remote_calls.Caller`
and raises :class:`~erlbridge.driver.remote_calls.StepFailed` on failure; the driver
runs them as steps (see :meth:`erlbridge.driver.driver.Driver.run_script`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from erlbridge.driver.policy import Policy
from erlbridge.driver.remote_calls import Caller, StepFailed, charlist, text_of
from erlbridge.driver.rendering import term_text
from erlbridge.driver.replies import (
    classify_check_script,
    classify_eval_script,
    is_tuple_tagged,
)
from erlbridge.driver.run_report import NodeError, Status
from erlbridge.driver.script_rewrite import Barrier
from erlbridge.exceptions import ScriptError
from erlbridge.term import Atom
from erlbridge.upgrade import Phase

__all__ = [
    "RESUME_SUSPENDED",
    "app_vsn",
    "beam_files",
    "check_barriers",
    "check_script",
    "eval_script",
    "lib_dirs",
    "push",
    "upgrade_app",
]

# Resume every supervised process of Mods (sys:resume on a running process is harmless).
RESUME_SUSPENDED = (
    "[begin catch sys:resume(P), P end || {_, _, P, Ms} <- "
    "release_handler_1:get_supervised_procs(), is_pid(P), is_list(Ms),"
    " lists:any(fun(M) -> lists:member(M, Ms) end, Mods)]."
)


def check_barriers(
    barriers: Sequence[Barrier], targets: Sequence[str], policy: Policy, *, me: str
) -> None:
    """Raise ScriptError unless every ``sync_nodes`` barrier can be reached: each lists
    only targets (or ``me``, the Python node), and the policy starts every target at once
    (no ``canary``, ``concurrency`` not below the number of targets)."""
    if barriers:
        for b in barriers:
            unknown = set(b.nodes) - set(targets) - {me}
            if unknown:
                raise ScriptError(
                    f"sync_nodes {term_text(b.id)} lists non-target nodes "
                    f"{', '.join(sorted(unknown))}",
                    index=b.index,
                    rule="barrier_node",
                )
        if policy.canary:
            raise ScriptError(
                "canary cannot run a script with sync_nodes barriers", rule="barrier_canary"
            )
        c = policy.concurrency
        if c is not None and c < len(targets):
            raise ScriptError(
                "sync_nodes barriers need concurrency >= number of targets",
                rule="barrier_concurrency",
            )


async def push(
    caller: Caller,
    n: str,
    pushed: Mapping[str, Mapping[str, bytes]],
    libs: Mapping[str, str],
    *,
    run_tag: str,
    d: dict[str, Any],
    push_root: str,
    deadline: float,
) -> Any:
    """Write each app's files to ``<push_root>/<run_tag>/<n>/<app>-<vsn>/ebin`` on ``n``;
    ``d["pushed"]`` and the value are ``{app: dir}``."""
    dirs = {}
    for app, files in pushed.items():
        # One dir per target: nodes on one host must not share (and race on) files.
        base = f"{push_root}/{run_tag}/{n}/{app}-{libs[app]}"
        r = await caller.rpc(
            n, "filelib", "ensure_dir", [charlist(f"{base}/ebin/x")], deadline=deadline
        )
        if r != "ok":
            raise StepFailed(Status.ERROR, NodeError("push", r, f"ensure_dir {base}/ebin"))
        for fname, data in files.items():
            path = f"{base}/ebin/{fname}"
            r = await caller.rpc(n, "file", "write_file", [charlist(path), data], deadline=deadline)
            if r != "ok":
                raise StepFailed(Status.ERROR, NodeError("push", r, f"write_file {path}"))
        dirs[app] = base
    d["pushed"] = dirs
    return dirs


# Remove one node's pushed copy, the run's dir when no other node's is left in it, and
# the push root when the run created it and it is empty: as the node was before.
_REMOVE_PUSHED = (
    "R = case filelib:is_dir(Dir) of true -> file:del_dir_r(Dir); false -> ok end,"
    " _ = file:del_dir(Run), _ = case Keep of true -> ok; false -> file:del_dir(Root) end,"
    " R."
)


async def remove_pushed(
    caller: Caller, n: str, *, push_root: str, run_tag: str, keep_root: bool, deadline: float
) -> Any:
    """Delete what :func:`push` wrote on ``n`` (``<push_root>/<run_tag>/<n>``) and the
    directories above it it created; the value is the directory removed."""
    run_dir = f"{push_root}/{run_tag}"
    node_dir = f"{run_dir}/{n}"
    r = await caller.expr(
        n,
        _REMOVE_PUSHED,
        {
            "Dir": charlist(node_dir),
            "Run": charlist(run_dir),
            "Root": charlist(push_root),
            "Keep": Atom("true" if keep_root else "false"),
        },
        deadline=deadline,
    )
    if r != "ok":
        raise StepFailed(Status.ERROR, NodeError("push", r, f"delete {node_dir}"))
    return {"removed": node_dir}


async def lib_dirs(
    caller: Caller,
    n: str,
    libs: Mapping[str, str],
    given: Mapping[str, str],
    *,
    d: dict[str, Any],
    deadline: float,
) -> Any:
    """The LibDirs of ``n`` for ``libs`` (given, else pushed, else ``code:lib_dir``) into
    ``d["libdirs"]``; the value is ``{app: path}``."""
    entries, shown = [], {}
    for app, vsn in libs.items():
        path = given.get(app) or d.get("pushed", {}).get(app)
        if path is None:
            r = await caller.rpc(n, "code", "lib_dir", [Atom(app)], deadline=deadline)
            if is_tuple_tagged(r, "error"):
                raise StepFailed(
                    Status.ERROR,
                    NodeError(
                        "preflight",
                        (Atom("no_lib_dir"), Atom(app)),
                        f"{app} is not on {n}'s code path; give lib_dirs or push_code",
                    ),
                )
            path = text_of(r)
        entries.append((Atom(app), charlist(vsn), charlist(path)))
        shown[app] = path
    d["libdirs"] = entries
    return shown


async def check_script(
    caller: Caller, n: str, terms: list[Any], libdirs: list[Any], deadline: float
) -> Any:
    reply = await caller.rpc(
        n, "release_handler_1", "check_script", [terms, libdirs], deadline=deadline
    )
    status, value, err = classify_check_script(reply)
    if err is not None:
        raise StepFailed(status, err)
    return value


async def eval_script(
    caller: Caller,
    outputs: dict[str, list[str]],
    n: str,
    terms: list[Any],
    libdirs: list[Any],
    *,
    opts: list[Any],
    deadline: float,
) -> Any:
    """``release_handler_1:eval_script/5`` on ``n``; its output is appended to
    ``outputs[n]``."""
    try:
        res = await caller.rpc(
            n,
            "release_handler_1",
            "eval_script",
            [terms, [], libdirs, libdirs, opts],
            deadline=deadline,
            capture_output=True,
        )
    except StepFailed as exc:
        # The script may have run partly: we cannot know how far (rpc lost).
        raise StepFailed(
            exc.status,
            NodeError.at(Phase.UNKNOWN, exc.error.kind, exc.error.reason, exc.error.message),
        ) from exc
    reply = getattr(res, "value", res)
    out = getattr(res, "output", "")
    if out:
        outputs.setdefault(n, []).append(out if isinstance(out, str) else text_of(out))
    status, value, err = classify_eval_script(reply)
    if err is not None:
        raise StepFailed(status, err)
    return value


async def upgrade_app(caller: Caller, n: str, app: str, target_dir: str, deadline: float) -> Any:
    """``release_handler:upgrade_app(App, Dir)`` on ``n``; the value is the unpurged
    modules, an error carries before/after point_of_no_return."""
    reply = await caller.rpc(
        n,
        "release_handler",
        "upgrade_app",
        [Atom(app), charlist(target_dir)],
        deadline=deadline,
    )
    status, value, err = classify_eval_script(reply)
    if err is not None:
        raise StepFailed(
            status, NodeError.at(err.phase, "release_handler", err.reason, "upgrade_app")
        )
    return value


def beam_files(src: str | os.PathLike[str] | Mapping[str, bytes]) -> dict[str, bytes]:
    if isinstance(src, Mapping):
        return dict(src)
    p = Path(src)
    files = {
        f.name: f.read_bytes()
        for f in sorted(p.iterdir())
        if f.suffix in (".beam", ".app", ".appup")
    }
    if not files:
        raise ScriptError(f"no .beam files in {p}", rule="push_empty")
    return files


def app_vsn(files: Mapping[str, bytes], app: str) -> str:
    """The ``vsn`` of ``<app>.app`` among pushed files (ScriptError if missing)."""
    from erlbridge.term import parse_term  # noqa: PLC0415

    data = files.get(f"{app}.app")
    if data is None:
        raise ScriptError(f"push_code has no {app}.app", rule="push_no_app_file")
    term = parse_term(data.decode("utf-8"))
    for key, value in term[2]:
        if key == "vsn":
            return text_of(value)
    raise ScriptError(f"{app}.app has no vsn", rule="push_no_app_vsn")
