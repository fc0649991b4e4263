"""Loader for the committed golden vectors (tests/term/golden/otpNN.json), written by
erlang_fixtures/golden/golden.escript on real OTP nodes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

GOLDEN_DIR = Path(__file__).parent / "golden"
ESCRIPT_DIR = Path(__file__).resolve().parents[2] / "erlang_fixtures" / "golden"


@dataclass(frozen=True)
class Vector:
    otp: str
    name: str
    stable: bool
    roundtrip: bool
    plain: bytes
    minor0: bytes
    minor2: bytes
    compressed: bytes
    compressed2: bytes
    text: str

    @property
    def id(self) -> str:
        return f"otp{self.otp}-{self.name}"

    @property
    def forms(self) -> dict[str, bytes]:
        return {
            "plain": self.plain,
            "minor0": self.minor0,
            "minor2": self.minor2,
            "compressed": self.compressed,
            "compressed2": self.compressed2,
        }


def load_file(path: Path) -> list[Vector]:
    data = json.loads(path.read_text())
    out = []
    for raw in data["vectors"]:
        plain = bytes.fromhex(raw["plain"])

        def form(key: str, raw: dict[str, object] = raw, plain: bytes = plain) -> bytes:
            value = raw[key]
            assert isinstance(value, str)
            return bytes.fromhex(value) if value else plain

        out.append(
            Vector(
                otp=str(data["otp"]),
                name=raw["name"],
                stable=raw["stable"],
                roundtrip=raw["roundtrip"],
                plain=plain,
                minor0=form("minor0"),
                minor2=form("minor2"),
                compressed=form("compressed"),
                compressed2=form("compressed2"),
                text=bytes.fromhex(raw["text"]).decode("utf-8"),
            )
        )
    return out


def load_all() -> list[Vector]:
    vectors: list[Vector] = []
    for path in sorted(GOLDEN_DIR.glob("otp*.json")):
        vectors.extend(load_file(path))
    return vectors
