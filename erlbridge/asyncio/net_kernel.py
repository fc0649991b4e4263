"""The node's ``net_kernel`` pid: it answers ``net_adm:ping`` and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from erlbridge.asyncio.process import Endpoint
from erlbridge.term import Atom, ImproperList, Pid, Reference

__all__ = ["NetKernel", "reply_gen_call"]

GEN_CALL = Atom("$gen_call")
IS_AUTH = Atom("is_auth")
YES = Atom("yes")


class NetKernel(Endpoint):
    """Answers ``net_adm:ping`` (``{is_auth, Node}`` -> ``yes``); nothing else."""

    __slots__ = ()

    def deliver(self, message: Any, size: int = 0) -> None:
        if (
            type(message) is tuple
            and len(message) == 3
            and message[0] == GEN_CALL
            and type(message[2]) is tuple
            and message[2][:1] == (IS_AUTH,)
        ):
            reply_gen_call(self.node.route, self.pid, message[1], YES)
            return
        self.node.drop(self.pid, message, "net_kernel request not served by a Python node")


def reply_gen_call(
    route: Callable[[Pid, Any, Any], None], from_pid: Pid, frm: Any, reply: Any
) -> None:
    """``gen:reply/2`` for a ``{To, Tag}`` From (alias tags are answered by alias)."""
    if not (type(frm) is tuple and len(frm) == 2 and isinstance(frm[0], Pid)):
        return
    to, tag = frm
    alias = _alias_of(tag)
    route(from_pid, alias if alias is not None else to, (tag, reply))


def _alias_of(tag: Any) -> Reference | None:
    # [alias | Ref] or [[alias | Ref] | _] (gen:reply/2)
    if isinstance(tag, ImproperList):
        if tag.elements == (Atom("alias"),) and isinstance(tag.tail, Reference):
            return tag.tail
        if len(tag.elements) == 1 and isinstance(tag.elements[0], ImproperList):
            return _alias_of(tag.elements[0])
    return None
