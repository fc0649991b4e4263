"""erlbridge: join Erlang/OTP clusters as a node from Python and drive hot code upgrades.

The top level holds the blocking API for scripts and notebooks (``Node``, ``Driver``,
``discover``) and the names most scripts need; the asyncio core lives in
:mod:`erlbridge.asyncio`, terms in :mod:`erlbridge.term`, upgrade instructions in
:mod:`erlbridge.upgrade`, errors in :mod:`erlbridge.exceptions`.
"""

from erlbridge.exceptions import (
    BadRpc,
    ErlbridgeError,
    NodeDown,
    RemoteException,
    ScriptError,
    Timeout,
    UpgradeFailed,
)
from erlbridge.sync import Driver, Node, discover
from erlbridge.term import Atom, ErlString, Pid, Reference
from erlbridge.upgrade import Appup, Relup, Script
from erlbridge.version import __version__

__all__ = [
    "Appup",
    "Atom",
    "BadRpc",
    "Driver",
    "ErlString",
    "ErlbridgeError",
    "Node",
    "NodeDown",
    "Pid",
    "Reference",
    "Relup",
    "RemoteException",
    "Script",
    "ScriptError",
    "Timeout",
    "UpgradeFailed",
    "__version__",
    "discover",
]
