"""Release-mode per-node operations through ``release_handler`` (I/O).

:class:`ReleaseOps` holds what every call needs (the :class:`Caller`, the driver's
logger, the restart timeouts); each call works on one target and raises
:class:`~erlbridge.driver.remote_calls.StepFailed` on failure. :class:`PySync` makes the
Python node a ``sync_nodes`` participant for the execute phase of an upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from erlbridge.driver.node_api import DriverNode
from erlbridge.driver.remote_calls import Caller, StepFailed, charlist, text_of
from erlbridge.driver.rendering import jsonable, term_text
from erlbridge.driver.replies import install_error_phase, is_tuple_tagged
from erlbridge.driver.run import Run, now
from erlbridge.driver.run_report import NodeError, Status
from erlbridge.driver.script_rewrite import name_of
from erlbridge.driver.tarball import Tarball, digest_ok
from erlbridge.term import Atom
from erlbridge.upgrade import Phase

__all__ = ["PySync", "ReleaseOps"]

# sha256 via crypto when the target has it; a release without crypto gets erlang:md5.
_HASH_FILE = (
    "{ok, F} = file:open(P, [read, binary, raw]),"
    " R = file:pread(F, 0, N), ok = file:close(F),"
    " B = case R of {ok, Bin} -> Bin; eof -> <<>> end,"
    " H = try crypto:hash(sha256, B) of D -> {sha256, D}"
    " catch error:_ -> {md5, erlang:md5(B)} end,"
    " {byte_size(B), H}."
)
# Does the script release_handler would run to go from the current release to V contain
# sync_nodes? (Up: V's relup, entry from Cur; down: Cur's relup, entry to V.)
_RELUP_SYNC = (
    "Cur = hd([Vc || {_, Vc, _, current} <- release_handler:which_releases()]"
    " ++ [Vp || {_, Vp, _, permanent} <- release_handler:which_releases()]),"
    ' Up = case file:consult(filename:join([D, V, "relup"])) of'
    " {ok, [{_, Ups, _}]} -> case lists:keyfind(Cur, 1, Ups) of"
    " {_, _, S1} -> S1; false -> none end; _ -> none end,"
    " Script = case Up of none ->"
    ' case file:consult(filename:join([D, Cur, "relup"])) of'
    " {ok, [{_, _, Downs}]} -> case lists:keyfind(V, 1, Downs) of"
    " {_, _, S2} -> S2; false -> [] end; _ -> [] end; _ -> Up end,"
    " lists:any(fun(I) -> is_tuple(I) andalso element(1, I) =:= sync_nodes end, Script)."
)
_RELDIR = (
    "case application:get_env(sasl, releases_dir) of {ok, X} -> X;"
    ' _ -> case os:getenv("RELDIR") of false -> filename:join(code:root_dir(), "releases");'
    " Y -> Y end end."
)

# relx's start script for release V: copy bin/<Rel>-V over bin/<Rel> (what relx's own
# install_upgrade escript does on permanent); none for a release without such a script.
_POINT_START_SCRIPT = (
    "case [N || {N, Vr, _, _} <- release_handler:which_releases(), Vr =:= V] of"
    " [] -> none;"
    ' [Name | _] -> Bin = filename:join(code:root_dir(), "bin"),'
    ' Src = filename:join(Bin, Name ++ "-" ++ V), Dst = filename:join(Bin, Name),'
    " case filelib:is_regular(Src) of false -> none;"
    " true -> case file:copy(Src, Dst) of {ok, _} -> {ok, Src, Dst};"
    " Error -> {Error, Src, Dst} end end end."
)


class ReleaseOps:
    """release_handler calls on one target at a time, through ``caller``.

    ``restart_timeout``: how long to wait for a node that restarts (after a failed
    install); ``restart_grace``: how long to watch for such a restart after an
    ``{error, _}`` from install_release. ``log`` gets the start-script messages.
    """

    def __init__(
        self,
        caller: Caller,
        log: logging.Logger,
        *,
        restart_timeout: float,
        restart_grace: float,
    ) -> None:
        self.caller = caller
        self.node = caller.node
        self.log = log
        self.restart_timeout = restart_timeout
        self.restart_grace = restart_grace

    async def rh(self, n: str, function: str, args: list[Any], deadline: float) -> Any:
        """A release_handler call; ``{error, R}`` raises StepFailed (before PONR)."""
        reply = await self.caller.rpc(n, "release_handler", function, args, deadline=deadline)
        if is_tuple_tagged(reply, "error", 2):
            raise StepFailed(
                Status.ERROR,
                NodeError.at(
                    Phase.BEFORE_POINT_OF_NO_RETURN, "release_handler", reply[1], function
                ),
            )
        if reply == "ok":
            return "ok"
        if isinstance(reply, tuple) and reply and reply[0] == "ok":
            return jsonable(reply[1:]) if len(reply) > 2 else jsonable(reply[1])
        return jsonable(reply)

    async def check_install(
        self, n: str, vsn: str, *, purge: bool, partial: bool, deadline: float
    ) -> Any:
        """``check_install_release(Vsn)`` (``[purge]`` with ``purge``). With ``partial``
        (canary, or concurrency below the number of targets) a relup with ``sync_nodes``
        is refused: release_handler would wait forever for the nodes not started."""
        v = await self.rh(
            n,
            "check_install_release",
            [charlist(vsn)] + ([[Atom("purge")]] if purge else []),
            deadline,
        )
        if partial and await self.relup_syncs(n, vsn, deadline):
            raise StepFailed(
                Status.ERROR,
                NodeError.at(
                    Phase.BEFORE_POINT_OF_NO_RETURN,
                    "preflight",
                    Atom("sync_nodes_needs_all_nodes"),
                    "the relup has sync_nodes: canary / concurrency below the number of "
                    "targets would leave release_handler waiting forever",
                ),
            )
        return v

    async def reboot_old_release(
        self, n: str, vsn: str, deadline: float, *, node_timeout: float
    ) -> Any:
        """``reboot_old_release(Vsn)`` and the wait for the node to come back (see
        :meth:`erlbridge.driver.driver.Driver.reboot_old_release`); the value is
        its which_releases, asked with ``node_timeout``."""
        # heart restarts the node with a relx release's bin/<Rel>: point it at vsn
        # first, and back at the permanent release if the call is refused
        pointed = await self.point_start_script(n, vsn, deadline)
        try:
            await self.rh(n, "reboot_old_release", [charlist(vsn)], deadline)
        except StepFailed as exc:
            if pointed is not None and exc.status is Status.ERROR:
                rels = await self.which_releases(n, deadline)
                for _name, v, status in rels:
                    if status == "permanent":
                        await self.point_start_script(n, v, deadline)
            raise
        # the node is going down now: too late to point a relx start script at vsn
        # (done before the call, above)
        wait = self.restart_timeout
        state = await self.wait_restart(n, now() + wait, seen_down=False)
        if state == "up":
            raise StepFailed(
                Status.TIMEOUT,
                NodeError(
                    "timeout",
                    Atom("no_reboot"),
                    f"reboot_old_release answered ok but {n} did not go down in {wait:g} s",
                ),
            )
        if state == "down":
            raise StepFailed(
                Status.NODEDOWN,
                NodeError(
                    "nodedown",
                    Atom("not_restarted"),
                    f"{n} rebooted but did not answer again in {wait:g} s "
                    "(no heart or service manager restarted it?)",
                ),
            )
        return await self.which_releases(n, now() + node_timeout)

    async def which_releases(self, n: str, deadline: float) -> Any:
        rels = await self.caller.rpc(n, "release_handler", "which_releases", [], deadline=deadline)
        return [(text_of(r[0]), text_of(r[1]), text_of(r[3])) for r in rels]

    async def install(self, n: str, vsn: str, opts: list[Any], deadline: float) -> Any:
        try:
            reply = await self.caller.rpc(
                n, "release_handler", "install_release", [charlist(vsn), opts], deadline=deadline
            )
        except StepFailed as exc:
            if exc.status is not Status.NODEDOWN:
                raise
            # Lost the connection during install: the node is restarting
            # (docs/internals/otp-facts.md#install_release-outcomes).
            rels = await self.after_restart(n, seen_down=True)
            raise StepFailed(
                Status.NODEDOWN,
                NodeError.at(
                    Phase.UNKNOWN,
                    "nodedown",
                    exc.error.reason,
                    "connection lost during install_release",
                ),
                value=rels,
            ) from exc
        if is_tuple_tagged(reply, "ok", 3):
            return {"from": text_of(reply[1]), "descr": jsonable(reply[2])}
        if is_tuple_tagged(reply, "continue_after_restart", 3):
            rels = await self.after_restart(n, seen_down=False)
            return {"from": text_of(reply[1]), "restarted": True, "releases": rels}
        if is_tuple_tagged(reply, "error", 2):
            restarted = await self.went_down(n, self.restart_grace)
            if not restarted:
                raise StepFailed(
                    Status.ERROR,
                    NodeError.at(
                        Phase.BEFORE_POINT_OF_NO_RETURN,
                        "release_handler",
                        reply[1],
                        "install_release",
                    ),
                )
            rels = await self.after_restart(n, seen_down=True)
            # It restarted: the reason tells before/after PONR where it can (change_appl_data
            # restarts although no code was loaded); else unknown.
            raise StepFailed(
                Status.ERROR,
                NodeError.at(
                    install_error_phase(reply[1]),
                    "release_handler",
                    reply[1],
                    "install_release failed; the node restarted",
                ),
                value=rels,
            )
        raise StepFailed(Status.ERROR, NodeError("internal", reply, "unexpected reply"))

    async def went_down(self, n: str, grace: float) -> bool:
        """True if the connection to ``n`` drops within ``grace`` seconds."""
        end = now() + grace
        while now() < end:
            if n not in {name_of(x) for x in self.node.connected_nodes()}:
                return True
            await asyncio.sleep(0.1)
        return False

    async def after_restart(self, n: str, *, seen_down: bool) -> Any:
        deadline = now() + self.restart_timeout
        await self.wait_restart(n, deadline, seen_down=seen_down)
        try:
            return await self.which_releases(n, deadline)
        except StepFailed:
            return None

    async def wait_restart(self, n: str, deadline: float, *, seen_down: bool) -> str:
        """Wait for ``n`` to go down (unless ``seen_down``) and come back, or the deadline.

        Returns ``"back"`` (it answers again and runs release_handler), ``"down"`` (it went
        down and is not back by the deadline) or ``"up"`` (it never went down).
        """
        if not seen_down and not await self.went_down(n, max(0.0, deadline - now())):
            return "up"
        while now() < deadline:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(min(2.0, max(0.05, deadline - now()))):
                    if await self.node.ping(n):
                        # Answering ping is not enough: wait for release_handler.
                        r = await self.node.rpc(
                            n, "erlang", "whereis", [Atom("release_handler")], timeout=1.0
                        )
                        if r != "undefined":
                            return "back"
            await asyncio.sleep(0.3)
        return "down"

    async def relup_syncs(self, n: str, vsn: str, deadline: float) -> bool:
        """True if the relup script that would take the node from its current release to
        ``vsn`` (``vsn``'s relup up-entry, or the current release's down-entry) has
        ``sync_nodes``."""
        reldir = await self.reldir(n, deadline)
        found = await self.caller.expr(
            n, _RELUP_SYNC, {"D": charlist(reldir), "V": charlist(vsn)}, deadline=deadline
        )
        return found is True or found == "true"

    async def reldir(self, n: str, deadline: float) -> str:
        return text_of(await self.caller.expr(n, _RELDIR, {}, deadline=deadline))

    async def known_vsns(self, n: str, deadline: float) -> set[str]:
        return {v for _name, v, _st in await self.which_releases(n, deadline)}

    async def upload(self, n: str, tar: Tarball, chunk: int, deadline: float) -> Any:
        """Chunked, checksummed, resumable upload to ``<releases dir>/<name>.tar.gz``.

        Skipped when the tarball's release is already known to release_handler (an earlier
        or interrupted run unpacked it). Resumes a partial file whose prefix digest matches.
        """
        if tar.vsn is not None and tar.vsn in await self.known_vsns(n, deadline):
            return {"skipped": f"release {tar.vsn} already unpacked"}
        reldir = await self.reldir(n, deadline)
        path = f"{reldir}/{tar.name}.tar.gz"
        p = charlist(path)
        have = await self.caller.rpc(n, "filelib", "file_size", [p], deadline=deadline)
        have = int(have) if isinstance(have, int) else 0
        offset = 0
        if 0 < have <= tar.size:
            size, digest = await self.caller.expr(
                n, _HASH_FILE, {"P": p, "N": have}, deadline=deadline
            )
            if size == have and digest_ok(digest, tar.data[:have]):
                offset = have
        if offset == 0 and have:
            await self.caller.rpc(n, "file", "delete", [p], deadline=deadline)
        for start in range(offset, tar.size, chunk):
            r = await self.caller.rpc(
                n,
                "file",
                "write_file",
                [p, tar.data[start : start + chunk], [Atom("append")]],
                deadline=deadline,
            )
            if r != "ok":
                raise StepFailed(Status.ERROR, NodeError("upload", r, f"write {path}"))
        size, digest = await self.caller.expr(
            n, _HASH_FILE, {"P": p, "N": tar.size + 1}, deadline=deadline
        )
        if size != tar.size or not digest_ok(digest, tar.data):
            await self.caller.rpc(n, "file", "delete", [p], deadline=deadline)
            raise StepFailed(
                Status.ERROR,
                NodeError(
                    "upload", Atom("checksum_mismatch"), f"{path}: {size} bytes, digest differs"
                ),
            )
        return {
            "path": path,
            "bytes": tar.size,
            "resumed_from": offset,
            "sha256": tar.sha256.hex(),
            "checked_with": text_of(digest[0]),
        }

    async def unpack(self, n: str, tar: Tarball, d: dict[str, Any], deadline: float) -> Any:
        if tar.vsn is not None and tar.vsn in await self.known_vsns(n, deadline):
            d["vsn"] = tar.vsn  # already unpacked (e.g. a run killed after unpack_release)
            await self.cleanup_tar(n, tar, deadline)
            return tar.vsn
        reply = await self.caller.rpc(
            n, "release_handler", "unpack_release", [charlist(tar.name)], deadline=deadline
        )
        if is_tuple_tagged(reply, "ok", 2):
            d["vsn"] = text_of(reply[1])
            return d["vsn"]
        reason = reply[1] if is_tuple_tagged(reply, "error", 2) else reply
        if is_tuple_tagged(reason, "existing_release", 2):
            d["vsn"] = text_of(reason[1])  # already unpacked: fine, drop the uploaded copy
            await self.cleanup_tar(n, tar, deadline)
            return d["vsn"]
        await self.cleanup_tar(n, tar, deadline)  # clean up a failed unpack
        raise StepFailed(
            Status.ERROR,
            NodeError.at(
                Phase.BEFORE_POINT_OF_NO_RETURN, "release_handler", reason, "unpack_release"
            ),
        )

    async def cleanup_tar(self, n: str, tar: Tarball, deadline: float) -> None:
        with contextlib.suppress(StepFailed):
            reldir = await self.reldir(n, deadline)
            await self.caller.rpc(
                n, "file", "delete", [charlist(f"{reldir}/{tar.name}.tar.gz")], deadline=deadline
            )

    async def make_permanent(self, n: str, vsn: str, deadline: float) -> Any:
        value = await self.rh(n, "make_permanent", [charlist(vsn)], deadline)
        await self.point_start_script(n, vsn, deadline)
        return value

    async def point_start_script(self, n: str, vsn: str, deadline: float) -> str | None:
        """A relx release starts from ``bin/<Rel>``, which has its version written in; relx's
        own upgrade command copies ``bin/<Rel>-<Vsn>`` over it when ``Vsn`` becomes
        permanent, so that a restart (heart's ``HEART_COMMAND``, a service manager) boots
        ``Vsn``. Do the same. A release without such a script (not relx) is left alone.
        Returns the path written, or None; a failed copy is logged, not raised: the
        release itself is permanent either way."""
        res = await self.caller.expr(
            n, _POINT_START_SCRIPT, {"V": charlist(vsn)}, deadline=deadline
        )
        if res == "none":
            return None
        outcome, src, dst = res[0], text_of(res[1]), text_of(res[2])
        if outcome != "ok":
            self.log.warning("%s: could not copy %s to %s: %s", n, src, dst, term_text(outcome))
            return None
        self.log.info("%s: %s now starts %s (copied from %s)", n, dst, vsn, src)
        return dst


class PySync:
    """The Python node as a ``sync_nodes`` participant in release mode
    (docs/internals/otp-facts.md#sync_nodes).

    Registers ``release_handler`` on the Python node and answers every
    ``{sync_nodes, Id, Node}`` with ``{sync_nodes, Id, PyNode}`` to ``{release_handler,
    Node}`` at once. On exit (any path, cancellation included) it sends the answer for
    every id in ``ids`` to every target whose install has started but not finished, so no
    target can wait forever for the hidden Python node. ``me`` is the Python node's name.
    """

    def __init__(self, node: DriverNode, ids: Sequence[Any], run: Run, *, me: str) -> None:
        self.node, self.ids, self.run = node, list(ids), run
        self.me = Atom(me)
        self.answered: set[tuple[str, Any]] = set()
        self.proc: Any = None
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PySync:
        self.proc = self.node.process("release_handler")
        self.task = asyncio.create_task(self._serve())
        return self

    def _answer(self, target: str, sync_id: Any) -> None:
        if (target, sync_id) in self.answered:
            return
        self.answered.add((target, sync_id))
        self.proc.send(
            (Atom("release_handler"), Atom(target)), (Atom("sync_nodes"), sync_id, self.me)
        )

    async def _serve(self) -> None:
        while True:
            msg = await self.proc.receive()
            if isinstance(msg, tuple) and len(msg) == 3 and msg[0] == "sync_nodes":
                self._answer(name_of(msg[2]), msg[1])

    async def __aexit__(self, *exc: object) -> None:
        try:
            for n, d in self.run.data.items():
                if d.get("installing"):
                    for i in self.ids:
                        self._answer(n, i)
        finally:
            if self.task is not None:
                self.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self.task
            with contextlib.suppress(Exception):
                self.proc.close(Atom("normal"))
