"""The codec against live OTP nodes: regenerate the golden vectors and diff them with
the committed ones, and have binary_to_term on a real node check every re-encoded
term (``=:=``). Local ``erl`` (integration) and the OTP 27/29 images (docker)."""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from erlbridge.term import (
    Atom,
    BitString,
    ErlString,
    ImproperList,
    LocalTerm,
    decode,
    encode,
)

_spec = importlib.util.spec_from_file_location(
    "term_golden_vectors", Path(__file__).with_name("golden_vectors.py")
)
assert _spec is not None and _spec.loader is not None
golden = sys.modules.get("term_golden_vectors") or importlib.util.module_from_spec(_spec)
if "term_golden_vectors" not in sys.modules:
    sys.modules["term_golden_vectors"] = golden
    _spec.loader.exec_module(golden)

FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))
ESCRIPTS = golden.ESCRIPT_DIR
HAVE_ERL = shutil.which("escript") is not None and shutil.which("epmd") is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def epmd_env() -> Iterator[dict[str, str]]:
    """A private epmd port; the epmd the escript starts there is stopped afterwards."""
    env = dict(os.environ, ERL_EPMD_PORT=str(_free_port()))
    yield env
    subprocess.run(
        ["epmd", "-kill"], env=env, capture_output=True, timeout=10 * FACTOR, check=False
    )


def _pairs(vectors: list[Any]) -> str:
    """Lines for roundtrip.escript: NAME EXPECTED OURS (plain and compressed)."""
    lines = []
    for v in vectors:
        if not v.roundtrip:
            continue
        term = decode(v.plain)
        lines.append(f"{v.name} {v.plain.hex()} {encode(term).hex()}")
        ours = encode(decode(v.compressed), compressed=True)
        lines.append(f"{v.name}/compressed {v.compressed.hex()} {ours.hex()}")
    return "\n".join(lines) + "\n"


def _random_term(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(14 if depth < 4 else 8)
    if kind == 0:
        return rng.randrange(-(2**70), 2**70) >> rng.randrange(70)
    if kind == 1:
        return rng.choice([0.0, -0.0, 1.5, -2.25e-300, 1e300, rng.random()])
    if kind == 2:
        return Atom(rng.choice(["a", "ok", "Hello World", "λ", "", "x" * 255, "é" * 100]))
    if kind == 3:
        return rng.choice([True, False, None])
    if kind == 4:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
    if kind == 5:
        return ErlString("".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(9))))
    if kind == 6:
        return BitString(bytes([rng.randrange(256) & 0xF0]), 4)
    if kind == 7:
        return "text-λ"
    if kind in (8, 9):
        return [_random_term(rng, depth + 1) for _ in range(rng.randrange(5))]
    if kind == 10:
        return tuple(_random_term(rng, depth + 1) for _ in range(rng.randrange(5)))
    if kind == 11:
        return ImproperList((_random_term(rng, depth + 1),), Atom("tail"))
    if kind == 12:
        return {Atom(f"k{i}"): _random_term(rng, depth + 1) for i in range(rng.randrange(4))}
    return [rng.randrange(300) for _ in range(rng.randrange(20))]


def _random_pairs(count: int) -> str:
    rng = random.Random(20261125)
    lines = []
    for i in range(count):
        wire = encode(_random_term(rng))
        # Expected = ours: binary_to_term must accept it and decode it to itself.
        lines.append(f"random{i} {wire.hex()} {encode(decode(wire)).hex()}")
    return "\n".join(lines) + "\n"


def _run_roundtrip(cmd: list[str], pairs_file: Path) -> None:
    result = subprocess.run(
        [*cmd, str(pairs_file)], capture_output=True, text=True, timeout=120 * FACTOR, check=False
    )
    failures = [
        line for line in result.stdout.splitlines() if not line.startswith(("ok ", "checked"))
    ]
    assert result.returncode == 0 and not failures, result.stdout[-3000:] + result.stderr[-2000:]
    assert "failed 0" in result.stdout


def _compare_with_committed(fresh: list[Any], committed: list[Any]) -> None:
    by_name = {v.name: v for v in committed}
    assert [v.name for v in fresh] == [v.name for v in committed]
    for v in fresh:
        old = by_name[v.name]
        if v.stable:
            assert v.forms == old.forms, v.name
            assert v.text == old.text, v.name
        term = decode(v.plain)
        if isinstance(term, LocalTerm):
            assert encode(term) == v.plain
        else:
            assert encode(decode(v.minor2)) == v.minor2, v.name


@pytest.mark.integration
@pytest.mark.skipif(not HAVE_ERL, reason="needs the local escript and epmd")
def test_local_node_regenerates_the_committed_vectors(
    tmp_path: Path, epmd_env: dict[str, str]
) -> None:
    out = tmp_path / "fresh.json"
    subprocess.run(
        ["escript", str(ESCRIPTS / "golden.escript"), str(out), f"golden{os.getpid()}@127.0.0.1"],
        env=epmd_env,
        check=True,
        capture_output=True,
        timeout=120 * FACTOR,
    )
    fresh = golden.load_file(out)
    committed_path = golden.GOLDEN_DIR / f"otp{fresh[0].otp}.json"
    if not committed_path.exists():
        pytest.fail(f"no committed vectors for the local OTP {fresh[0].otp}: {committed_path}")
    _compare_with_committed(fresh, golden.load_file(committed_path))

    # binary_to_term on a live node: the fresh vectors (new pids/refs/ports), the
    # committed ones and random terms all round-trip with =:=.
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(_pairs(fresh) + _pairs(golden.load_file(committed_path)) + _random_pairs(300))
    _run_roundtrip(["escript", str(ESCRIPTS / "roundtrip.escript")], pairs)


def _docker_image(release: str) -> str | None:
    if shutil.which("docker") is None:
        return None
    image = f"erlbridge-base:otp{release}"
    found = subprocess.run(
        ["docker", "image", "inspect", image], capture_output=True, timeout=30 * FACTOR, check=False
    )
    return image if found.returncode == 0 else None


@pytest.mark.docker
@pytest.mark.parametrize("release", ["27", "29"])
def test_container_node_regenerates_and_round_trips(tmp_path: Path, release: str) -> None:
    image = _docker_image(release)
    if image is None:
        pytest.skip(f"docker or the image erlbridge-base:otp{release} is not available")
    tmp_path.chmod(0o777)
    docker = [
        "docker", "run", "--rm", "--network", "none",
        "-v", f"{ESCRIPTS}:/golden:ro", "-v", f"{tmp_path}:/out", image,
    ]  # fmt: skip
    subprocess.run(
        [*docker, "escript", "/golden/golden.escript", "/out/fresh.json"],
        check=True,
        capture_output=True,
        timeout=180 * FACTOR,
    )
    fresh = golden.load_file(tmp_path / "fresh.json")
    assert fresh[0].otp == release
    _compare_with_committed(fresh, golden.load_file(golden.GOLDEN_DIR / f"otp{release}.json"))
    committed = golden.load_file(golden.GOLDEN_DIR / f"otp{release}.json")
    (tmp_path / "pairs.txt").write_text(_pairs(fresh) + _pairs(committed) + _random_pairs(300))
    _run_roundtrip([*docker, "escript", "/golden/roundtrip.escript"], Path("/out/pairs.txt"))
