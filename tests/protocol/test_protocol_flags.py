"""Flag values against OTP's own dist.hrl (installed with the local Erlang)."""

from __future__ import annotations

import glob
import re
from pathlib import Path

import pytest

from erlbridge.protocol.flags import (
    DEFAULT_FLAGS,
    MANDATORY_25,
    MANDATORY_FLAGS,
    DistFlags,
    default_flags,
    missing_mandatory,
)


def _dist_hrl() -> dict[str, int]:
    paths = glob.glob("/usr/lib/erlang/lib/kernel-*/include/dist.hrl")
    if not paths:
        pytest.skip("dist.hrl not installed")
    text = Path(paths[0]).read_text()
    values: dict[str, int] = {}
    for name, hexval, shift in re.findall(
        r"^-define\(DFLAG_(\w+),\s*\(?16#([0-9a-fA-F]+)(?:\s+bsl\s+(\d+))?\)?\)\.", text, re.M
    ):
        values[name] = int(hexval, 16) << int(shift or 0)
    return values


def test_values_match_dist_hrl() -> None:
    hrl = _dist_hrl()
    assert len(hrl) >= 25
    for name, value in hrl.items():
        if name == "RESERVED":
            continue
        assert DistFlags[name] == value, name


def test_mandatory_and_default_sets() -> None:
    assert MANDATORY_25 == 0x1070F94
    assert MANDATORY_FLAGS == 0x403070F94
    assert DEFAULT_FLAGS == 0xD035F5FBC
    assert not DEFAULT_FLAGS & DistFlags.PUBLISHED
    assert default_flags(hidden=False) == DEFAULT_FLAGS | DistFlags.PUBLISHED
    for flag in (DistFlags.DIST_HDR_ATOM_CACHE, DistFlags.FRAGMENTS, DistFlags.ALTACT_SIG):
        assert not DEFAULT_FLAGS & flag


def test_missing_mandatory() -> None:
    assert missing_mandatory(DEFAULT_FLAGS) == DistFlags(0)
    assert missing_mandatory(MANDATORY_25) == MANDATORY_FLAGS & ~MANDATORY_25
    # MANDATORY_25_DIGEST stands for the whole OTP 25 set
    digest = DistFlags.MANDATORY_25_DIGEST | DistFlags.UNLINK_ID | DistFlags.V4_NC
    assert missing_mandatory(digest) == DistFlags(0)
    assert missing_mandatory(0) == MANDATORY_FLAGS
