"""A local release tarball, checked on the host before anything is sent (no target I/O).

:meth:`Tarball.load` refuses (:class:`~erlbridge.exceptions.BadReleaseTarball`) what
``release_handler:unpack_release`` could not use, before any byte is uploaded: a file
that is not gzip, not a tar, or has no ``releases/<Name>.rel`` (``Name`` is what the
targets unpack). It reads the ``.rel`` (release name, version, erts version), the
relup of that version (when there is one and it parses) and the unpacked size.
:mod:`erlbridge.driver.release_ops` uploads it and checks the copy with
:func:`digest_ok`.

``Name``: the tarball's file name without ``.tar.gz`` / ``.tgz`` when the tarball has
``releases/<that>.rel`` (what systools and erlbridge's fixtures write), else the one
top-level ``releases/<rel>.rel`` relx writes (the tarball is then uploaded as
``<rel>.tar.gz``, since unpack_release looks up ``releases/<Name>.rel`` by that name).
"""

from __future__ import annotations

import hashlib
import io
import logging
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from erlbridge.driver.remote_calls import text_of
from erlbridge.driver.script_rewrite import name_of
from erlbridge.exceptions import BadReleaseTarball, ErlbridgeError
from erlbridge.term import ErlString, parse_term
from erlbridge.upgrade import Relup

__all__ = ["Tarball", "digest_ok"]

# The logger keeps the name it had under erlbridge.asyncio: logging configs name it.
logger = logging.getLogger("erlbridge.asyncio.driver.tarball")

GZIP_MAGIC = b"\x1f\x8b"
# A .rel or relup larger than this is not one systools or relx wrote: refuse to read it
# into memory (the tarball itself is already in memory, its members decompress on read).
MAX_TEXT_MEMBER = 16 << 20


@dataclass(frozen=True, slots=True)
class Tarball:
    """A checked local release tarball.

    ``name``: what the targets unpack (``unpack_release(name)`` of ``<name>.tar.gz``);
    ``vsn``, ``rel_name``, ``erts_vsn``: from ``releases/<name>.rel``; ``relup``: the
    parsed ``releases/<vsn>/relup`` (None when absent or unreadable: ``relup_error``
    says which); ``unpacked_size``: bytes of every regular file in the tarball.
    """

    name: str
    data: bytes
    sha256: bytes
    vsn: str
    rel_name: str = ""
    erts_vsn: str = ""
    unpacked_size: int = 0
    relup: Relup | None = None
    relup_error: str = ""
    relup_term: Any = None  # the relup as read, for sync_nodes ids even when not typed
    stem: str = ""  # the file name without suffix: names the operation (``upgrade:<stem>``)

    @property
    def size(self) -> int:
        return len(self.data)

    @classmethod
    def load(cls, path: Path) -> Tarball:
        """Read and check ``path``; BadReleaseTarball when it is no release tarball
        (FileNotFoundError / OSError when it cannot be read)."""
        data = path.read_bytes()
        return cls.from_bytes(data, _stem(path.name), source=str(path))

    @classmethod
    def from_bytes(cls, data: bytes, stem: str, *, source: str = "") -> Tarball:
        """Check ``data`` (a tarball whose file name without suffix is ``stem``)."""
        where = source or f"{stem}.tar.gz"
        if not data.startswith(GZIP_MAGIC):
            raise BadReleaseTarball(where, "not gzip-compressed (a release tarball is .tar.gz)")
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
                members = tf.getmembers()
                top = {
                    m.name.removeprefix("./")[len("releases/") : -len(".rel")]: m
                    for m in members
                    if _top_rel(m.name.removeprefix("./")) and m.isfile()
                }
                name = _pick_name(top, stem, where)
                rel = _parse_rel(_read(tf, top[name], where), f"releases/{name}.rel", where)
                relup_term, relup, relup_error = _relup(tf, members, rel[1])
                unpacked = sum(m.size for m in members if m.isfile())
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise BadReleaseTarball(where, f"not a readable tar.gz: {exc}") from exc
        return cls(
            name,
            data,
            hashlib.sha256(data).digest(),
            rel[1],
            rel_name=rel[0],
            erts_vsn=rel[2],
            unpacked_size=unpacked,
            relup=relup,
            relup_error=relup_error,
            relup_term=relup_term,
            stem=stem,
        )

    def python_sync_ids(self, me: str) -> list[Any]:
        """Ids of ``sync_nodes`` in the tarball's relup whose node list names ``me``."""
        ids: list[Any] = []
        _collect_sync(self.relup_term, me, ids)
        return ids


def _stem(filename: str) -> str:
    for suffix in (".tar.gz", ".tgz"):
        if filename.endswith(suffix):
            return filename[: -len(suffix)]
    return filename


def _top_rel(member: str) -> bool:
    return member.startswith("releases/") and member.endswith(".rel") and member.count("/") == 1


def _pick_name(top: dict[str, tarfile.TarInfo], stem: str, where: str) -> str:
    if stem in top:
        return stem
    if len(top) == 1:
        return next(iter(top))
    if not top:
        raise BadReleaseTarball(
            where,
            f"no releases/{stem}.rel (release_handler:unpack_release reads the release "
            "from releases/<Name>.rel)",
        )
    listed = ", ".join(f"releases/{n}.rel" for n in sorted(top))
    raise BadReleaseTarball(
        where, f"no releases/{stem}.rel and several others ({listed}): which one to unpack?"
    )


def _read(tf: tarfile.TarFile, member: tarfile.TarInfo, where: str) -> str:
    if member.size > MAX_TEXT_MEMBER:
        raise BadReleaseTarball(where, f"{member.name} is {member.size} bytes: not a release file")
    f = tf.extractfile(member)
    if f is None:  # pragma: no cover - members are checked to be regular files
        raise BadReleaseTarball(where, f"{member.name} cannot be read")
    try:
        return f.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadReleaseTarball(where, f"{member.name} is not UTF-8 text") from exc


def _parse_rel(text: str, member: str, where: str) -> tuple[str, str, str]:
    """``{release, {Name, Vsn}, {erts, EVsn}, Apps}`` -> (Name, Vsn, EVsn)."""
    try:
        term = parse_term(text)
    except ErlbridgeError as exc:
        raise BadReleaseTarball(where, f"{member} is not Erlang text: {exc}") from exc
    ok = (
        isinstance(term, tuple)
        and len(term) == 4
        and term[0] == "release"
        and isinstance(term[1], tuple)
        and len(term[1]) == 2
        and all(isinstance(x, ErlString) for x in term[1])
        and isinstance(term[2], tuple)
        and len(term[2]) == 2
        and term[2][0] == "erts"
        and isinstance(term[3], list)
    )
    if not ok:
        raise BadReleaseTarball(
            where, f"{member} is not {{release, {{Name, Vsn}}, {{erts, Vsn}}, Apps}}"
        )
    return text_of(term[1][0]), text_of(term[1][1]), text_of(term[2][1])


def _relup(
    tf: tarfile.TarFile, members: list[tarfile.TarInfo], vsn: str
) -> tuple[Any, Relup | None, str]:
    """``releases/<vsn>/relup`` as a raw term and as a :class:`Relup` (None and why when
    absent or unreadable: release_handler reads it on the target, so a relup this side
    cannot read does not stop an upgrade)."""
    wanted = f"releases/{vsn}/relup"
    member = next((m for m in members if m.name.removeprefix("./") == wanted), None)
    if member is None or not member.isfile():
        return None, None, f"no {wanted} in the tarball"
    raw: Any = None
    try:
        raw = parse_term(_read(tf, member, wanted))
        return raw, Relup.from_term(raw), ""
    except ErlbridgeError as exc:
        logger.warning("could not read %s: %s", wanted, exc)
        return raw, None, f"{wanted} could not be read here: {exc}"


def _collect_sync(term: Any, me: str, ids: list[Any]) -> None:
    if isinstance(term, tuple):
        if len(term) == 3 and term[0] == "sync_nodes" and isinstance(term[2], list):
            if me in [name_of(x) for x in term[2]] and term[1] not in ids:
                ids.append(term[1])
            return
        for x in term:
            _collect_sync(x, me, ids)
    elif isinstance(term, list):
        for x in term:
            _collect_sync(x, me, ids)


def digest_ok(digest: Any, data: bytes) -> bool:
    """Compare a target-side ``{sha256 | md5, Digest}`` with the local data."""
    algo, value = text_of(digest[0]), digest[1]
    local = hashlib.sha256(data) if algo == "sha256" else hashlib.md5(data)
    return bytes(value) == local.digest()
