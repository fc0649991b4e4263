"""erlbridge: join Erlang/OTP clusters as a node from Python and drive hot code upgrades."""

from erlbridge.sync import Node
from erlbridge.version import __version__

__all__ = ["Node", "__version__"]
