"""The asyncio API (L3): the Python distribution node and its processes."""

from erlbridge.asyncio.node import Node, NodeEvent
from erlbridge.asyncio.process import DownMessage, ExitMessage, Process
from erlbridge.asyncio.rpc import RpcOutcome, RpcResult

__all__ = ["DownMessage", "ExitMessage", "Node", "NodeEvent", "Process", "RpcOutcome", "RpcResult"]
