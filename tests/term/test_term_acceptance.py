"""The decoder accepts what ``binary_to_term`` accepts and refuses what it refuses, at
the edges: the crafted terms of ``acceptance_cases.py`` (atom lengths and encodings
in every place an atom sits, reference words, creations, float text, empty
bitstrings...) against the answers of real OTP 25/27/29 nodes committed in
``golden/acceptance_otpNN.json`` (real bytes in, real bytes out).

A term some release accepts must decode, re-encode without error and give the bytes
(some release's) ``term_to_binary(T, [{minor_version, 2}])`` gives; a term every
release refuses must be a ``DecodeError``. The live tests ask the local ``erl`` and
the OTP 27/29 images again and compare with the committed answers.

Regenerate the committed answers (local erl, plus the images when docker has them):
``.venv/bin/python tests/term/test_term_acceptance.py --write``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from erlbridge.exceptions import DecodeError
from erlbridge.term import Fun, Port, decode, encode

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
ESCRIPT = GOLDEN / "acceptance.escript"
FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))

_spec = importlib.util.spec_from_file_location(
    "term_acceptance_cases", HERE / "acceptance_cases.py"
)
assert _spec is not None and _spec.loader is not None
acceptance_cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(acceptance_cases)

CASES: dict[str, bytes] = acceptance_cases.cases()

# Accepted terms whose re-encoding differs from every release's, on purpose (name
# prefix -> why): funs must come back byte for byte, ports decode to the same term as
# one release's output.
DIFFERENT_ENCODING = {
    # A local fun is kept as the raw bytes it arrived in (echoed exactly).
    "fun_": "fun echoed raw",
    # Ports up to 32 bits go out as NEW_PORT_EXT, which every release reads; OTP
    # switches to V4_PORT_EXT above 28 bits.
    "port_id_10000000": "NEW_PORT_EXT up to 32 bits",
    "new_port_id_10000000": "NEW_PORT_EXT up to 32 bits",
}


# Accepted by some release, refused here on purpose (name -> why).
REFUSED_ON_PURPOSE = {
    # A reference with no id words: no node makes one, the model has 1..5 words, and
    # OTP 29 reads the NEW_REFERENCE_EXT form of it differently from run to run.
    "newer_ref_words_0": "reference without id words",
    # OTP 25 takes a port as a fun's creator and re-encodes it as a pid; 27 and 29
    # refuse it.
    "fun_pid_port": "fun creator that is not a pid",
}


def _encoded_differently(name: str) -> bool:
    return any(name.startswith(prefix) for prefix in DIFFERENT_ENCODING)


def load_answers() -> dict[str, dict[str, Any]]:
    """Release -> {name: {"wire": hex, "otp": "ok"|"refused", "out": hex|reason}}."""
    out = {}
    for path in sorted(GOLDEN.glob("acceptance_otp*.json")):
        data = json.loads(path.read_text())
        out[data["otp"]] = data["cases"]
    return out


ANSWERS = load_answers()


def test_committed_answers_match_the_cases() -> None:
    assert {"25", "27", "29"} <= set(ANSWERS)
    for release, answers in ANSWERS.items():
        assert list(answers) == list(CASES), release
        for name, wire in CASES.items():
            assert bytes.fromhex(answers[name]["wire"]) == wire, (release, name)


def _accepted(name: str) -> list[bytes]:
    return [
        bytes.fromhex(answers[name]["out"])
        for answers in ANSWERS.values()
        if answers[name]["otp"] == "ok"
    ]


@pytest.mark.parametrize("name", list(CASES))
def test_decoder_agrees_with_binary_to_term(name: str) -> None:
    wire = CASES[name]
    accepted = _accepted(name)
    if name in REFUSED_ON_PURPOSE:
        assert accepted  # else the entry is stale
        accepted = []
    if not accepted:
        with pytest.raises(DecodeError):
            decode(wire)
        return
    term = decode(wire)
    ours = encode(term)  # never fails for what decode accepted
    if isinstance(term, Fun):  # opaque: echoed byte for byte
        assert _encoded_differently(name)
        assert ours == wire
    elif _encoded_differently(name):
        assert isinstance(term, Port)
        assert any(decode(ours) == decode(out) for out in accepted)
    else:
        assert ours in accepted, [out.hex() for out in accepted]
    assert decode(ours) == term


def test_the_atom_limit_is_the_same_in_every_release() -> None:
    """Sanity check of the corpus: 255 characters pass, 256 fail, in every tag."""
    for answers in ANSWERS.values():
        for tag in ("atom", "small_atom", "atom_utf8", "small_atom_utf8"):
            assert answers[f"{tag}_a255"]["otp"] == "ok"
            assert answers[f"new_pid_{tag}_a255"]["otp"] == "ok"
        for tag in ("atom", "atom_utf8"):
            assert answers[f"{tag}_a256"]["otp"] == "refused"
            assert answers[f"fun_module_{tag}_a256"]["otp"] == "refused"
        assert answers["atom_utf8_emoji_x255"]["otp"] == "ok"
        assert answers["atom_utf8_emoji_x256"]["otp"] == "refused"


# -- asking real nodes ----------------------------------------------------------------


def _cases_text() -> str:
    return "".join(f"{name} {wire.hex()}\n" for name, wire in CASES.items())


def ask_otp(command: list[str], cases_file: str) -> dict[str, Any]:
    """Run acceptance.escript (``command`` ends where the escript's argument goes)."""
    result = subprocess.run(
        [*command, cases_file], capture_output=True, text=True, timeout=120 * FACTOR, check=True
    )
    lines = result.stdout.splitlines()
    assert lines and lines[0].startswith("otp "), result.stdout[-2000:] + result.stderr[-2000:]
    answers = {}
    for line in lines[1:]:
        name, verdict, detail = line.split(" ", 2)
        answers[name] = {"wire": CASES[name].hex(), "otp": verdict, "out": detail}
    return {"otp": lines[0].split()[1], "cases": answers}


def _local_command() -> list[str]:
    return ["escript", str(ESCRIPT)]


def _docker_command(release: str, folder: str) -> list[str]:
    return [
        "docker", "run", "--rm", "--network", "none",
        "-v", f"{GOLDEN}:/golden:ro", "-v", f"{folder}:/cases:ro",
        f"erlbridge-base:otp{release}", "escript", "/golden/acceptance.escript",
    ]  # fmt: skip


def _docker_image(release: str) -> bool:
    if shutil.which("docker") is None:
        return False
    found = subprocess.run(
        ["docker", "image", "inspect", f"erlbridge-base:otp{release}"],
        capture_output=True,
        timeout=30 * FACTOR,
        check=False,
    )
    return found.returncode == 0


def _assert_same_as_committed(fresh: dict[str, Any]) -> None:
    committed = ANSWERS.get(fresh["otp"])
    assert committed is not None, f"no committed answers for OTP {fresh['otp']}"
    for name in CASES:
        got, want = fresh["cases"][name], committed[name]
        assert got["otp"] == want["otp"], name
        if got["otp"] == "ok":
            assert got["out"] == want["out"], name


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("escript") is None, reason="needs the local escript")
def test_local_node_gives_the_committed_answers(tmp_path: Path) -> None:
    cases_file = tmp_path / "cases.txt"
    cases_file.write_text(_cases_text())
    _assert_same_as_committed(ask_otp(_local_command(), str(cases_file)))


@pytest.mark.docker
@pytest.mark.parametrize("release", ["27", "29"])
def test_container_node_gives_the_committed_answers(tmp_path: Path, release: str) -> None:
    if not _docker_image(release):
        pytest.skip(f"docker or the image erlbridge-base:otp{release} is not available")
    tmp_path.chmod(0o755)
    (tmp_path / "cases.txt").write_text(_cases_text())
    (tmp_path / "cases.txt").chmod(0o644)
    fresh = ask_otp(_docker_command(release, str(tmp_path)), "/cases/cases.txt")
    assert fresh["otp"] == release
    _assert_same_as_committed(fresh)


def _write() -> None:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder).chmod(0o755)
        cases_file = Path(folder) / "cases.txt"
        cases_file.write_text(_cases_text())
        cases_file.chmod(0o644)
        runs = [ask_otp(_local_command(), str(cases_file))]
        for release in ("25", "27", "29"):
            if release != runs[0]["otp"] and _docker_image(release):
                runs.append(ask_otp(_docker_command(release, folder), "/cases/cases.txt"))
    for run in runs:
        path = GOLDEN / f"acceptance_otp{run['otp']}.json"
        path.write_text(json.dumps(run, indent=0) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: test_term_acceptance.py --write")
    _write()
