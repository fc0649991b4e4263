"""Release tarballs checked on the host (no node), the dry run's pure helpers, and the
wording of node errors."""

from __future__ import annotations

import gzip
import io
import re
import tarfile
from pathlib import Path

import pytest

from erlbridge.driver import NodeError, Tarball
from erlbridge.driver.dry_run import df_available, soft_purged_modules
from erlbridge.driver.rendering import term_text
from erlbridge.exceptions import BadReleaseTarball
from erlbridge.term import Atom, ErlString, parse_term

REL = '%% rel\n{release,{"demo","2"},{erts,"13.1"},[{kernel,"8.5"},{demo,"2"}]}.\n'
RELUP = (
    '%% coding: utf-8\n{"2",[{"1",[],[{load_object_code,{demo,"2",[demo]}},point_of_no_return,'
    "{sync_nodes,s1,['py@127.0.0.1',a@h]},{load,{demo,soft_purge,soft_purge}}]}],"
    '[{"1",[],[]}]}.\n'
)


def tar_gz(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_systools_layout_reads_rel_relup_and_sizes(tmp_path: Path) -> None:
    path = tmp_path / "demo-2.tar.gz"
    path.write_bytes(tar_gz({"releases/demo-2.rel": REL, "releases/2/relup": RELUP,
                             "lib/demo-2/ebin/demo.beam": "x" * 10}))
    tar = Tarball.load(path)
    assert (tar.name, tar.vsn, tar.rel_name, tar.erts_vsn) == ("demo-2", "2", "demo", "13.1")
    assert tar.unpacked_size == len(REL) + len(RELUP) + 10
    assert tar.relup is not None and [str(v) for v in tar.relup.up_versions] == ['"1"']
    assert tar.python_sync_ids("py@127.0.0.1") == ["s1"]
    assert tar.python_sync_ids("other@127.0.0.1") == []


def test_relx_layout_unpacks_under_the_rel_name(tmp_path: Path) -> None:
    path = tmp_path / "demo-2.tgz"
    path.write_bytes(tar_gz({"releases/demo.rel": REL, "releases/2/demo.rel": REL}))
    tar = Tarball.load(path)
    assert (tar.name, tar.vsn, tar.relup, tar.stem) == ("demo", "2", None, "demo-2")
    assert "no releases/2/relup" in tar.relup_error


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "not gzip"),
        (b"PK\x03\x04 a zip file", "not gzip"),
        (gzip.compress(b"gzip, but no tar inside" * 50), "not a readable tar.gz"),
        (b"\x1f\x8b\x08\x00 truncated", "not a readable tar.gz"),
        (tar_gz({"lib/demo-2/ebin/demo.beam": "x"}), "no releases/demo-2.rel"),
        (tar_gz({"releases/2/demo.rel": REL}), "no releases/demo-2.rel"),
        (tar_gz({"releases/a.rel": REL, "releases/b.rel": REL}), "several others"),
        (tar_gz({"releases/demo-2.rel": "{release, oops"}), "not Erlang text"),
        (tar_gz({"releases/demo-2.rel": "{application, demo, []}."}), "is not {release"),
    ],
)
def test_not_a_release_tarball_is_refused(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "demo-2.tar.gz"
    path.write_bytes(content)
    with pytest.raises(BadReleaseTarball, match=re.escape(problem)) as info:
        Tarball.load(path)
    assert info.value.path == str(path) and isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_unreadable_relup_does_not_refuse_the_tarball() -> None:
    tar = Tarball.from_bytes(
        tar_gz({"releases/demo-2.rel": REL, "releases/2/relup": "{not, a relup"}), "demo-2")
    assert tar.relup is None and "could not be read" in tar.relup_error


def test_soft_purged_modules_and_df_parsing() -> None:
    script = parse_term(
        "[{load_object_code,{demo,\"2\",[a,b,c]}}, point_of_no_return,"
        " {load,{a,soft_purge,soft_purge}}, {load,{b,brutal_purge,brutal_purge}},"
        " {remove,{c,soft_purge,brutal_purge}}, {apply,{m,f,[]}}]"
    )
    assert soft_purged_modules(script) == ["a", "c"]
    out = (
        "Filesystem     1024-blocks    Used Available Capacity Mounted on\n"
        "/dev/sda1        102400000 5000000  97400000       5% /\n"
        "tmpfs                 1024       0      1024       0% /mnt/my dir\n"
    )
    assert df_available(out) == [("/", 97400000 * 1024), ("/mnt/my dir", 1024 * 1024)]
    assert df_available("sh: 1: df: not found\n") == []


def test_node_error_says_its_reason_once_in_erlang_text() -> None:
    closed = NodeError("nodedown", Atom("connection_closed"),
                       "node a@h is down: connection_closed")
    assert str(closed) == "nodedown: node a@h is down: connection_closed"
    deadline = NodeError("timeout", "deadline", "install exceeded its deadline")
    assert str(deadline) == "timeout: install exceeded its deadline"
    term = NodeError("release_handler", (Atom("no_such_release"), ErlString("9")),
                     "install_release", True)
    assert str(term) == 'release_handler: install_release: {no_such_release,"9"} (before PONR)'
    # a reason that only shares a part of a word with the message is still shown
    part = NodeError("upload", Atom("close"), "write closed file")
    assert str(part) == "upload: write closed file: close"
    assert term_text((Atom("barrier_timeout"), Atom("b1"), [Atom("a@h")])) == \
        "{barrier_timeout,b1,[a@h]}"
