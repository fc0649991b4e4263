"""Helpers for the hostile-peer tests: a raw socket talking to the listening node."""

from __future__ import annotations

import asyncio
import os

FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))


async def read_until_closed(reader: asyncio.StreamReader, timeout: float = 10.0) -> bytes:
    """Everything the node sends until it closes the connection (fails on a hang)."""
    data = b""
    async with asyncio.timeout(timeout * FACTOR):
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk
