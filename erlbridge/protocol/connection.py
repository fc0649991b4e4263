"""A distribution connection after the handshake, sans-I/O.

See docs/internals/otp-facts.md#ticks and docs/internals/otp-facts.md#framing.

Frames are ``Length:32 | Data``; ``Length = 0`` is a tick. Because we never advertise
``DIST_HDR_ATOM_CACHE`` or ``FRAGMENTS``, every frame is pass-through:
``'p' | 131 Control | [131 Payload]``, and messages never arrive fragmented (a 10 MB message
is one frame). Each frame is decoded exactly once, straight from the received buffer.

A message costs its frame's size plus what its compressed terms (tag 80) inflate to: that
cost is what counts against a mailbox's byte bound, and it may not exceed
``max_message_size`` either (the declared inflated sizes are checked before anything is
inflated), so a 60 KiB frame cannot turn into 60 MiB unseen.

Ticks follow the OTP rule (dist_util con_loop): a timer fires every
``net_ticktime / tick_intensity`` seconds (``now`` passed in by the caller); if nothing was
read during ``tick_intensity`` consecutive intervals the peer is declared not responding
(:class:`TickTimeout`); if nothing was written during an interval a tick is queued. Every tick
received is answered, because a hidden peer may tick with a shorter ``net_ticktime`` than ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from erlbridge.exceptions import DecodeError, FramingError, ProtocolError, bounded_text
from erlbridge.protocol.control import NO_PAYLOAD, ControlMessage, from_term
from erlbridge.protocol.flags import DistFlags
from erlbridge.term import DEFAULT_MAX_COMPRESSED_SIZE, decode_prefix, encode

__all__ = ["TICK", "DistConnection", "TickTimeout"]

TICK: Final = b"\x00\x00\x00\x00"
_PASS_THROUGH = 112  # 'p'
_HEADER = b"p"
_VERSION = 131
_COMPRESSED = 80


@dataclass(frozen=True, slots=True)
class TickTimeout:
    """Nothing was read from the peer for ``tick_intensity`` tick intervals."""

    silent_seconds: float


class DistConnection:
    """Framing, control-message (de)coding and tick bookkeeping for one peer."""

    __slots__ = (
        "_chunks",
        "_chunks_len",
        "_missed",
        "_need",
        "_out",
        "_read_since_timer",
        "_wrote_since_timer",
        "flags",
        "max_message_size",
        "message_sizes",
        "net_ticktime",
        "next_timer_at",
        "payload_exits",
        "tick_intensity",
        "ticks_received",
    )

    def __init__(
        self,
        *,
        flags: int,
        net_ticktime: float = 60.0,
        tick_intensity: int = 4,
        max_message_size: int | None = None,
        now: float = 0.0,
    ) -> None:
        self.flags = DistFlags(flags)
        if self.flags & (DistFlags.DIST_HDR_ATOM_CACHE | DistFlags.FRAGMENTS):
            # Both are rejectable by erts; we never advertise them, so they cannot be
            # negotiated. A caller that passes them gets a clear error instead of garbage.
            raise ProtocolError("atom-cache / fragment headers are not supported")
        self.payload_exits = bool(self.flags & DistFlags.EXIT_PAYLOAD)
        self.net_ticktime = net_ticktime
        self.tick_intensity = tick_intensity
        self.max_message_size = max_message_size
        #: what the messages the last receive_data returned cost (bytes): frame size plus
        #: the inflated size of compressed terms
        self.message_sizes: list[int] = []
        self._chunks: list[bytes] = []
        self._chunks_len = 0
        self._need = 4
        self._out: list[bytes] = []
        self._read_since_timer = False
        self._wrote_since_timer = False
        self._missed = 0
        self.ticks_received = 0
        self.next_timer_at = now + self.tick_interval

    @property
    def tick_interval(self) -> float:
        return self.net_ticktime / self.tick_intensity

    # -- receiving --------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[ControlMessage]:
        """Feed bytes; return every control message completed by them (what each costs,
        in the same order, is in :attr:`message_sizes` until the next call).

        Raises FramingError for an oversized or malformed frame (or one inflating beyond
        ``max_message_size``) and ProtocolError for an undecodable control message; the
        connection must then be closed.
        """
        if not data:
            return []
        self._read_since_timer = True
        sizes: list[int] = []
        self.message_sizes = sizes
        if self._chunks:
            # A partial frame is pending: only join once enough bytes are there, so a
            # 10 MB frame arriving in 64 KiB pieces is joined once, not quadratically.
            self._chunks.append(data)
            self._chunks_len += len(data)
            if self._chunks_len < self._need:
                return []
            data = b"".join(self._chunks)
            self._chunks.clear()
        events: list[ControlMessage] = []
        pos = 0
        end = len(data)
        while True:
            if end - pos < 4:
                self._need = 4
                break
            size = int.from_bytes(data[pos : pos + 4], "big")
            if size == 0:
                self.ticks_received += 1
                self._answer_tick()
                pos += 4
                continue
            if self.max_message_size is not None and size > self.max_message_size:
                raise FramingError(
                    f"frame of {size} bytes exceeds max_message_size={self.max_message_size}"
                )
            if end - pos - 4 < size:
                self._need = 4 + size
                break
            message, cost = self._parse_frame(data, pos + 4, pos + 4 + size)
            events.append(message)
            sizes.append(cost)
            pos += 4 + size
        if pos < end:
            rest = data[pos:] if pos else data
            self._chunks.append(rest)
            self._chunks_len = len(rest)
        else:
            self._chunks_len = 0
        return events

    def _parse_frame(self, data: bytes, start: int, stop: int) -> tuple[ControlMessage, int]:
        """The message in ``data[start:stop]`` and what it costs (see the module text)."""
        if data[start] != _PASS_THROUGH:
            raise FramingError(f"expected a pass-through frame, got type byte {data[start]}")
        cost = stop - start
        try:
            control, pos = self._decode(data, start + 1, cost)
            cost += _inflated_size(data, start + 1)
            payload: Any = NO_PAYLOAD
            if pos < stop:
                payload, end = self._decode(data, pos, cost)
                cost += _inflated_size(data, pos)
                pos = end
        except DecodeError as exc:
            raise ProtocolError(f"undecodable distribution message: {exc}") from exc
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            # The decoder promises DecodeError only; should a hostile term still hit a
            # decoder bug, the peer's connection is closed as a protocol error (and the
            # bug is visible in the log) instead of escaping into the transport.
            raise ProtocolError(
                "distribution message broke the decoder: " + bounded_text(repr(exc))
            ) from exc
        if pos != stop:
            raise FramingError(f"frame has {stop - pos} trailing bytes")
        return from_term(control, payload), cost

    def _decode(self, data: bytes, pos: int, cost: int) -> tuple[Any, int]:
        """One term at ``pos``; a compressed one may inflate to what is left of
        ``max_message_size`` after ``cost`` bytes (checked before inflating)."""
        limit = self.max_message_size
        if limit is None:
            return decode_prefix(data, pos)
        room = limit - cost
        inflated = _inflated_size(data, pos)
        if inflated > room:
            raise FramingError(
                f"message inflates to more than max_message_size={limit} bytes "
                f"(a compressed term of {inflated} bytes)"
            )
        return decode_prefix(data, pos, max_compressed_size=min(room, DEFAULT_MAX_COMPRESSED_SIZE))

    def _answer_tick(self) -> None:
        if not self._out:
            self._out.append(TICK)
            self._wrote_since_timer = True

    # -- sending ------------------------------------------------------------------------

    def send(self, message: ControlMessage) -> None:
        """Queue ``message`` (encoded now; EncodeError propagates)."""
        control, payload = message.to_term(payload_exits=self.payload_exits)
        ctl = encode(control)
        if payload is NO_PAYLOAD:
            body = ctl
            size = len(ctl) + 1
            self._out.append(size.to_bytes(4, "big") + _HEADER + body)
        else:
            pay = encode(payload)
            size = len(ctl) + len(pay) + 1
            self._out.append(size.to_bytes(4, "big") + _HEADER + ctl)
            self._out.append(pay)
        self._wrote_since_timer = True

    def send_encoded(self, control: bytes, payload: bytes = b"") -> None:
        """Queue a message whose control (and payload) terms are already encoded, each with
        its 131 version byte. The hot path uses this to reuse cached control terms."""
        size = len(control) + len(payload) + 1
        self._out.append(size.to_bytes(4, "big") + _HEADER + control)
        if payload:
            self._out.append(payload)
        self._wrote_since_timer = True

    def data_to_send(self) -> bytes:
        """Everything queued since the last call, as one buffer."""
        if not self._out:
            return b""
        out = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out.clear()
        return out

    def has_data_to_send(self) -> bool:
        return bool(self._out)

    def unsent(self, rest: bytes) -> None:
        """Put back the part of :meth:`data_to_send`'s buffer a write did not take: it is
        the first thing the next :meth:`data_to_send` returns."""
        if rest:
            self._out.insert(0, rest)

    # -- ticks ----------------------------------------------------------------------

    def timer(self, now: float) -> TickTimeout | None:
        """Call at (or after) :attr:`next_timer_at`. Queues a tick when we were idle.

        Returns TickTimeout when the peer has been silent for ``tick_intensity`` intervals.
        """
        if now < self.next_timer_at:
            return None
        self.next_timer_at = now + self.tick_interval
        if self._read_since_timer:
            self._missed = 0
        else:
            self._missed += 1
            if self._missed >= self.tick_intensity:
                return TickTimeout(self._missed * self.tick_interval)
        if not self._wrote_since_timer:
            self._out.append(TICK)
        self._read_since_timer = False
        self._wrote_since_timer = False
        return None


def _inflated_size(data: bytes, pos: int) -> int:
    """The size a compressed term at ``pos`` (version byte first) declares, else 0."""
    if pos + 6 <= len(data) and data[pos] == _VERSION and data[pos + 1] == _COMPRESSED:
        return int.from_bytes(data[pos + 2 : pos + 6], "big")
    return 0
