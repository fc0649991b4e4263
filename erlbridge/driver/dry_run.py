"""Read-only preflight of a release tarball on one target, for dry runs (I/O).

A real upgrade uploads and unpacks the tarball before ``check_install_release`` can run
(it reads the unpacked release from the node's disk). A dry run must leave every node as
it found it, so instead it checks what can be checked without writing:

* ``tarball`` — on the host: gzip, tar, ``releases/<Name>.rel`` (see
  :class:`~erlbridge.driver.tarball.Tarball`);
* ``not_unpacked`` — ``which_releases()`` does not list the version (if it does, as
  unpacked or old, the real run would skip upload and unpack: ``check_install_release``
  runs then, without ``purge``, and is read-only);
* ``relup`` — the tarball's relup has an up-entry from the version the node runs, or
  the running release's relup on the node a down-entry to it (what ``install_release``
  looks for);
* ``sync_nodes`` — with a canary or a concurrency below the number of targets, that
  script has no ``sync_nodes`` (release_handler would wait forever);
* ``readiness`` — the releases dir is writable and no process runs old code of a module
  the script loads or removes with ``soft_purge`` (``check_script``'s ``old_processes``);
* ``lib_dir`` — ``<root>/lib`` is writable (unpack extracts into the root dir);
* ``disk_room`` — ``df -Pk`` on the root and releases dirs shows room for the unpacked
  release and the tarball copy (``disksup`` needs ``os_mon``, which a release may not run).

What stays unchecked is listed with the reason (``check_install_release`` itself, which
needs the release unpacked). The step value: ``{"checked": {check: what was seen},
"not_checked": {check: why}, "version", "running"}``; a failed check raises
:class:`StepFailed` carrying the checks made so far as its value.
"""

from __future__ import annotations

import shlex
from typing import Any

from erlbridge.driver.readiness import gather_readiness
from erlbridge.driver.release_ops import ReleaseOps
from erlbridge.driver.remote_calls import StepFailed, charlist, text_of
from erlbridge.driver.run_report import NodeError, Status
from erlbridge.driver.script_rewrite import name_of
from erlbridge.driver.tarball import Tarball
from erlbridge.term import Atom, ErlString
from erlbridge.upgrade import Phase

__all__ = ["check_release", "df_available", "soft_purged_modules"]

# Does the running release's relup (on the node) have a down-entry to V?
_DOWN_ENTRY = (
    'case file:consult(filename:join([D, Cur, "relup"])) of'
    " {ok, [{_, _, Downs}]} -> lists:keymember(V, 1, Downs); _ -> false end."
)
_ROOT_LIB = (
    'Root = code:root_dir(), Lib = filename:join(Root, "lib"),'
    " case file:read_file_info(Lib) of {ok, I} -> {Root, Lib, element(4, I)};"
    " {error, E} -> {Root, Lib, E} end."
)
NOT_CHECKED_INSTALL = (
    "needs the release unpacked, which writes lib/ and releases/ on the node; the real "
    "upgrade runs it on every node before any node installs"
)


def _fail(reason: Any, message: str, value: dict[str, Any]) -> StepFailed:
    return StepFailed(
        Status.ERROR,
        NodeError.at(Phase.BEFORE_POINT_OF_NO_RETURN, "preflight", reason, message),
        value=value,
    )


def soft_purged_modules(script: list[Any]) -> list[str]:
    """Modules ``{load | remove, {Mod, soft_purge, _}}`` in a script: those
    ``check_script`` refuses when a process still runs their old code."""
    mods = {
        name_of(t[1][0])
        for t in script
        if isinstance(t, tuple)
        and len(t) == 2
        and t[0] in ("load", "remove")
        and isinstance(t[1], tuple)
        and len(t[1]) == 3
        and t[1][1] == "soft_purge"
    }
    return sorted(mods)


def df_available(output: str) -> list[tuple[str, int]]:
    """``df -Pk`` output -> ``[(mount point, available bytes)]`` per data line; lines it
    cannot read are left out."""
    out = []
    for line in output.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 6 and fields[3].isdigit():
            out.append((" ".join(fields[5:]), int(fields[3]) * 1024))
    return out


def _up_script(tar: Tarball, running: str) -> list[Any] | None:
    """The tarball relup's up-script from ``running`` (raw terms), or None."""
    term = tar.relup_term
    if not (isinstance(term, tuple) and len(term) == 3 and isinstance(term[1], list)):
        return None
    for entry in term[1]:
        if isinstance(entry, tuple) and len(entry) == 3 and text_of(entry[0]) == running:
            return list(entry[2]) if isinstance(entry[2], list) else None
    return None


async def check_release(
    rel: ReleaseOps, n: str, tar: Tarball, *, partial: bool, deadline: float
) -> dict[str, Any]:
    """Read-only checks that installing ``tar`` on ``n`` could work (see module doc)."""
    caller = rel.caller
    vsn = tar.vsn
    checked: dict[str, Any] = {
        "tarball": f"{tar.name}.tar.gz: release {tar.rel_name} {vsn}, {tar.size} bytes "
        f"({tar.unpacked_size} unpacked)"
    }
    not_checked: dict[str, str] = {}
    value: dict[str, Any] = {
        "checked": checked,
        "not_checked": not_checked,
        "version": vsn,
        "running": None,
    }

    rels = await rel.which_releases(n, deadline)
    status = {v: st for _name, v, st in rels}
    running = next((v for _n, v, st in rels if st == "current"), None) or next(
        (v for _n, v, st in rels if st == "permanent"), None
    )
    value["running"] = running
    if running is None:
        raise _fail(
            Atom("no_running_release"),
            "which_releases shows no current or permanent release",
            value,
        )
    if vsn == running:
        raise _fail((Atom("already_installed"), ErlString(vsn)), f"{n} already runs {vsn}", value)
    if vsn in status:
        # The real run skips upload and unpack here: its check_install is what remains,
        # and without purge it changes nothing.
        checked["not_unpacked"] = f"{vsn} is already {status[vsn]}: upload and unpack skipped"
        checked["check_install_release"] = await rel.check_install(
            n, vsn, purge=False, partial=partial, deadline=deadline
        )
        return value
    checked["not_unpacked"] = f"which_releases has no {vsn}"

    reldir = await rel.reldir(n, deadline)
    script = _up_script(tar, running)
    if script is not None:
        checked["relup"] = f"{vsn}'s relup: up from {running}, {len(script)} instructions"
    else:
        down = await caller.expr(
            n,
            _DOWN_ENTRY,
            {"D": charlist(reldir), "Cur": charlist(running), "V": charlist(vsn)},
            deadline=deadline,
        )
        if down is not True and down != "true":
            why = tar.relup_error or f"{vsn}'s relup has no up-entry from {running}"
            raise _fail(
                (Atom("no_matching_relup"), ErlString(vsn), ErlString(running)),
                f"{why}, nor has {running}'s relup a down-entry to {vsn}",
                value,
            )
        checked["relup"] = f"{running}'s relup on the node: down to {vsn}"

    if partial:
        syncs = (
            any(isinstance(t, tuple) and t and t[0] == "sync_nodes" for t in script)
            if script is not None
            else await rel.relup_syncs(n, vsn, deadline)
        )
        if syncs:
            raise _fail(
                Atom("sync_nodes_needs_all_nodes"),
                "the relup has sync_nodes: canary / concurrency below the number "
                "of targets would leave release_handler waiting forever",
                value,
            )
        checked["sync_nodes"] = "none in the script (canary / partial concurrency)"

    if script is None:
        not_checked["old_processes"] = (
            "the down-script is on the node; check_install_release checks it"
        )
        mods: list[str] = []
    else:
        mods = soft_purged_modules(script)
    ready = await gather_readiness(caller, n, mods, deadline=deadline)
    if ready.error:
        raise _fail(Atom("readiness"), f"readiness: {ready.error}", value)
    if ready.old_code_processes:
        mod, pid = ready.old_code_processes[0]
        raise _fail(
            (Atom("old_processes"), Atom(mod)), f"process {pid} still runs old code of {mod}", value
        )
    if ready.releases_dir_writable is False:
        raise _fail(
            (Atom("not_writable"), ErlString(ready.releases_dir)),
            f"{ready.releases_dir} is not writable",
            value,
        )
    if ready.releases_dir_writable is None:
        not_checked["releases_dir"] = "; ".join(ready.notes) or "access unknown"
    procs = f"no process runs old code of {len(mods)} soft-purged module(s)"
    writable = "writable" if ready.releases_dir_writable else "access unknown"
    checked["readiness"] = f"{ready.releases_dir} {writable}; {procs}"

    root, lib, access = await caller.expr(n, _ROOT_LIB, {}, deadline=deadline)
    root, lib = text_of(root), text_of(lib)
    if access not in ("read_write", "write"):
        raise _fail(
            (Atom("not_writable"), ErlString(lib), access),
            f"{lib} is not writable ({name_of(access)})",
            value,
        )
    checked["lib_dir"] = f"{lib} writable"

    room = await _disk_room(rel, n, tar, (root, reldir), deadline=deadline)
    if isinstance(room, str):
        checked["disk_room"] = room
    else:
        not_checked["disk_room"] = room[0]
    not_checked["check_install_release"] = NOT_CHECKED_INSTALL
    return value


async def _disk_room(
    rel: ReleaseOps, n: str, tar: Tarball, dirs: tuple[str, str], *, deadline: float
) -> str | tuple[str]:
    """Room for the unpacked files (under ``root``) and the tarball copy (in ``reldir``):
    what was seen, or ``(why not checked,)``; StepFailed when there is too little."""
    root, reldir = dirs
    cmd = f"df -Pk -- {shlex.quote(root)} {shlex.quote(reldir)} 2>&1"
    out = text_of(await rel.caller.rpc(n, "os", "cmd", [charlist(cmd)], deadline=deadline))
    found = df_available(out)
    if len(found) != 2:
        first = out.strip().splitlines()[:1]
        return (f"df -Pk gave no answer ({first[0] if first else 'no output'})",)
    (root_mount, root_free), (rel_mount, rel_free) = found
    needs = [(root_mount, root_free, tar.unpacked_size)]
    if rel_mount == root_mount:
        needs = [(root_mount, root_free, tar.unpacked_size + tar.size)]
    else:
        needs.append((rel_mount, rel_free, tar.size))
    for mount, free, need in needs:
        if free < need:
            raise _fail(
                (Atom("no_disk_room"), ErlString(mount), need, free),
                f"{mount} has {free} bytes free, the release needs {need}",
                {},
            )
    return "; ".join(f"{mount}: {need} bytes needed, {free} free" for mount, free, need in needs)
