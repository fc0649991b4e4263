"""Distribution capability flags (``kernel/include/dist.hrl``), OTP names without ``DFLAG_``.

Values are from OTP 25.2.3's ``dist.hrl`` (identical in 27 and 29 for bits they share) plus
the OTP 28+/29 second-word flags. The mandatory sets are what erts enforces
(``erts_internal:get_dflags()``, docs/internals/otp-facts.md#flags), checked on live nodes.
"""

from __future__ import annotations

from enum import IntFlag

__all__ = [
    "DEFAULT_FLAGS",
    "DistFlags",
    "MANDATORY_25",
    "MANDATORY_26",
    "MANDATORY_FLAGS",
    "default_flags",
    "missing_mandatory",
]


class DistFlags(IntFlag):
    """One bit per capability, named as in ``dist.hrl`` (``DFLAG_`` dropped)."""

    PUBLISHED = 0x01
    ATOM_CACHE = 0x02
    EXTENDED_REFERENCES = 0x04
    DIST_MONITOR = 0x08
    FUN_TAGS = 0x10
    DIST_MONITOR_NAME = 0x20
    HIDDEN_ATOM_CACHE = 0x40
    NEW_FUN_TAGS = 0x80
    EXTENDED_PIDS_PORTS = 0x100
    EXPORT_PTR_TAG = 0x200
    BIT_BINARIES = 0x400
    NEW_FLOATS = 0x800
    UNICODE_IO = 0x1000
    DIST_HDR_ATOM_CACHE = 0x2000
    SMALL_ATOM_TAGS = 0x4000
    UTF8_ATOMS = 0x10000
    MAP_TAG = 0x20000
    BIG_CREATION = 0x40000
    SEND_SENDER = 0x80000
    BIG_SEQTRACE_LABELS = 0x100000
    EXIT_PAYLOAD = 0x400000
    FRAGMENTS = 0x800000
    HANDSHAKE_23 = 0x1000000
    UNLINK_ID = 0x2000000
    MANDATORY_25_DIGEST = 0x4000000
    SPAWN = 0x01 << 32
    NAME_ME = 0x02 << 32
    V4_NC = 0x04 << 32
    ALIAS = 0x08 << 32
    LOCAL_EXT = 0x10 << 32  # OTP 29, "only used internally"
    ALTACT_SIG = 0x20 << 32  # OTP 28+
    NATIVE_RECORDS = 0x40 << 32  # OTP 29


#: ``MANDATORY_DFLAGS_25`` (dist.hrl:62-73) = 0x1070f94.
MANDATORY_25 = (
    DistFlags.EXTENDED_REFERENCES
    | DistFlags.FUN_TAGS
    | DistFlags.EXTENDED_PIDS_PORTS
    | DistFlags.NEW_FUN_TAGS
    | DistFlags.EXPORT_PTR_TAG
    | DistFlags.BIT_BINARIES
    | DistFlags.NEW_FLOATS
    | DistFlags.UTF8_ATOMS
    | DistFlags.MAP_TAG
    | DistFlags.BIG_CREATION
    | DistFlags.HANDSHAKE_23
)
#: ``MANDATORY_DFLAGS_26`` (OTP 27/29 dist.hrl): required by OTP 26+ peers.
MANDATORY_26 = DistFlags.V4_NC | DistFlags.UNLINK_ID
#: What we require from any peer (and always advertise): 0x403070f94.
MANDATORY_FLAGS = MANDATORY_25 | MANDATORY_26

#: The set for a hidden node verified on OTP 25/27/29 (docs/internals/otp-facts.md#flags):
#: 0xd035f5fbc. Deliberately
#: without ATOM_CACHE/DIST_HDR_ATOM_CACHE/FRAGMENTS (keeps plain 'p' framing), ALTACT_SIG (op 37
#: not implemented), NATIVE_RECORDS, NAME_ME and PUBLISHED.
DEFAULT_FLAGS = (
    MANDATORY_FLAGS
    | DistFlags.DIST_MONITOR
    | DistFlags.DIST_MONITOR_NAME
    | DistFlags.SEND_SENDER
    | DistFlags.EXIT_PAYLOAD
    | DistFlags.SPAWN
    | DistFlags.ALIAS
    | DistFlags.UNICODE_IO
    | DistFlags.SMALL_ATOM_TAGS
    | DistFlags.BIG_SEQTRACE_LABELS
)


def default_flags(*, hidden: bool = True) -> DistFlags:
    """Flags we advertise: :data:`DEFAULT_FLAGS`, plus ``PUBLISHED`` for a visible node."""
    return DEFAULT_FLAGS if hidden else DEFAULT_FLAGS | DistFlags.PUBLISHED


def missing_mandatory(peer_flags: int) -> DistFlags:
    """Mandatory flags the peer did not advertise (empty when acceptable).

    ``MANDATORY_25_DIGEST`` stands for the whole OTP 25 set (dist_util:expand_mandatory_25_flag).
    """
    flags = peer_flags
    if flags & DistFlags.MANDATORY_25_DIGEST:
        flags |= MANDATORY_25
    return DistFlags(MANDATORY_FLAGS & ~flags)
