"""Remote calls the driver makes, with errors mapped to step failures (I/O via the Node).

Every call takes an absolute ``deadline`` (loop time); the rpc timeout is what is left of
it, so no await in the driver is unbounded. Failures raise :class:`StepFailed` carrying a
:class:`Status` and a :class:`NodeError` (never a bare exception): ``NodeDown`` ->
``nodedown``, ``Timeout`` -> ``timeout``, ``BadRpc``/``RemoteException`` -> ``error``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from erlbridge.driver.node_api import DriverNode
from erlbridge.driver.run_report import NodeError, Status
from erlbridge.exceptions import BadRpc, NodeDown, RemoteException, Timeout
from erlbridge.term import Atom, ErlString

__all__ = ["Caller", "StepFailed", "charlist", "text_of"]

# The logger keeps the name it had under erlbridge.asyncio: logging configs name it.
logger = logging.getLogger("erlbridge.asyncio.driver.calls")

MIN_TIMEOUT = 0.05  # seconds: an rpc with less than this left is a timeout right away


class StepFailed(Exception):
    """A step failed on one node; ``value`` may carry what is known after the failure."""

    def __init__(self, status: Status, error: NodeError, value: Any = None) -> None:
        self.status = status
        self.error = error
        self.value = value
        super().__init__(f"{status}: {error}")


def charlist(text: str) -> ErlString:
    """An Erlang string (list of code points): what release_handler wants for versions/paths."""
    return ErlString(text)


def text_of(term: Any) -> str:
    """Python text of an Erlang string / binary / atom reply."""
    if isinstance(term, ErlString):
        return term.text
    if isinstance(term, Atom):
        return term.name
    if isinstance(term, bytes):
        return term.decode("utf-8", "replace")
    if isinstance(term, list):
        return "".join(map(chr, term))
    return str(term)


class Caller:
    """rpc helper bound to a Node: deadlines, error mapping, cached Erlang expressions."""

    def __init__(self, node: DriverNode) -> None:
        self.node = node
        self._parsed: dict[str, Any] = {}

    @staticmethod
    def left(deadline: float) -> float:
        return deadline - asyncio.get_running_loop().time()

    async def rpc(
        self,
        target: str,
        module: str,
        function: str,
        args: list[Any],
        *,
        deadline: float,
        kind: str = "badrpc",
        capture_output: bool = False,
    ) -> Any:
        """``module:function(args)`` on ``target``; raises StepFailed on any failure."""
        left = self.left(deadline)
        op = f"{module}:{function}/{len(args)} on {target}"
        if left < MIN_TIMEOUT:
            raise StepFailed(
                Status.TIMEOUT, NodeError("timeout", "deadline", f"{op}: no time left")
            )
        try:
            return await self.node.rpc(
                target, module, function, args, timeout=left, capture_output=capture_output
            )
        except NodeDown as exc:
            raise StepFailed(Status.NODEDOWN, NodeError("nodedown", exc.reason, str(exc))) from exc
        except (Timeout, TimeoutError) as exc:
            raise StepFailed(
                Status.TIMEOUT, NodeError("timeout", "timeout", f"{op}: {exc}")
            ) from exc
        except RemoteException as exc:
            raise StepFailed(
                Status.ERROR,
                NodeError("exception", (Atom(exc.kind), exc.reason), f"{op} raised {exc.kind}"),
            ) from exc
        except BadRpc as exc:
            raise StepFailed(Status.ERROR, NodeError(kind, exc.reason, f"{op}: badrpc")) from exc

    async def expr(
        self, target: str, text: str, bindings: dict[str, Any], *, deadline: float
    ) -> Any:
        """Evaluate Erlang expressions ``text`` on ``target`` with ``bindings``.

        Used where one rpc cannot express the work (hash a file on the target, list
        modules with old code) without shipping data back and forth. The text is
        scanned and parsed once (on the first target) and the abstract form reused.
        """
        exprs = self._parsed.get(text)
        if exprs is None:
            scanned = await self.rpc(
                target, "erl_scan", "string", [charlist(text)], deadline=deadline
            )
            if not (isinstance(scanned, tuple) and scanned[0] == "ok"):
                raise StepFailed(Status.ERROR, NodeError("internal", scanned, "erl_scan failed"))
            parsed = await self.rpc(
                target, "erl_parse", "parse_exprs", [scanned[1]], deadline=deadline
            )
            if not (isinstance(parsed, tuple) and parsed[0] == "ok"):
                raise StepFailed(Status.ERROR, NodeError("internal", parsed, "erl_parse failed"))
            exprs = self._parsed[text] = parsed[1]
        binds = [(Atom(k), v) for k, v in sorted(bindings.items())]  # an orddict
        res = await self.rpc(target, "erl_eval", "exprs", [exprs, binds], deadline=deadline)
        if not (isinstance(res, tuple) and len(res) == 3 and res[0] == "value"):
            raise StepFailed(Status.ERROR, NodeError("internal", res, "erl_eval: unexpected"))
        return res[1]
