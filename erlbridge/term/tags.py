"""External Term Format tag numbers (names as in OTP's ``erl_ext_dist``) and the limits
``binary_to_term`` enforces that the codec shares."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["MAX_ATOM_CHARACTERS", "MAX_BIG_BYTES", "VERSION", "Tag"]

#: The version byte in front of every external term (``term_to_binary``).
VERSION = 131
#: The longest atom, in characters, whatever its encoding (``MAX_ATOM_CHARACTERS`` in
#: erts).
MAX_ATOM_CHARACTERS = 255
#: The longest integer ``binary_to_term`` takes, in bytes of LARGE_BIG_EXT digits:
#: (2**19 - 1) 64-bit words in OTP 25 (OTP 26+ stop at 65535 words), checked on the
#: declared length whatever the value.
MAX_BIG_BYTES = (2**19 - 1) * 8


class Tag(IntEnum):
    """One-byte tags of the External Term Format."""

    NEW_FLOAT_EXT = 70
    BIT_BINARY_EXT = 77
    COMPRESSED = 80
    ATOM_CACHE_REF = 82
    RECORD_EXT = 67
    NEW_PID_EXT = 88
    NEW_PORT_EXT = 89
    NEWER_REFERENCE_EXT = 90
    SMALL_INTEGER_EXT = 97
    INTEGER_EXT = 98
    FLOAT_EXT = 99
    ATOM_EXT = 100
    REFERENCE_EXT = 101
    PORT_EXT = 102
    PID_EXT = 103
    SMALL_TUPLE_EXT = 104
    LARGE_TUPLE_EXT = 105
    NIL_EXT = 106
    STRING_EXT = 107
    LIST_EXT = 108
    BINARY_EXT = 109
    SMALL_BIG_EXT = 110
    LARGE_BIG_EXT = 111
    NEW_FUN_EXT = 112
    EXPORT_EXT = 113
    NEW_REFERENCE_EXT = 114
    SMALL_ATOM_EXT = 115
    MAP_EXT = 116
    FUN_EXT = 117
    ATOM_UTF8_EXT = 118
    SMALL_ATOM_UTF8_EXT = 119
    V4_PORT_EXT = 120
    LOCAL_EXT = 121
