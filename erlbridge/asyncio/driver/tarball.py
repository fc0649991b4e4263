"""A local release tarball: its bytes, digest, version and relup ``sync_nodes`` ids.

No target I/O: :mod:`erlbridge.asyncio.driver.release` uploads it and checks the copy
on the target with :func:`digest_ok`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from erlbridge.asyncio.driver.calls import text_of
from erlbridge.asyncio.driver.rewrite import name_of

__all__ = ["Tarball", "digest_ok"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Tarball:
    """A local release tarball; ``vsn`` read from its ``releases/<name>.rel`` (or None)."""

    name: str
    data: bytes
    sha256: bytes
    vsn: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    @classmethod
    def load(cls, path: Path) -> Tarball:
        data = path.read_bytes()
        name = path.name.removesuffix(".tar.gz")
        return cls(name, data, hashlib.sha256(data).digest(), _rel_vsn(data, name))

    def python_sync_ids(self, me: str) -> list[Any]:
        """Ids of ``sync_nodes`` in the tarball's relup(s) whose node list names ``me``."""
        import io  # noqa: PLC0415
        import tarfile  # noqa: PLC0415

        from erlbridge.term import parse_term  # noqa: PLC0415

        ids: list[Any] = []
        try:
            with tarfile.open(fileobj=io.BytesIO(self.data), mode="r:gz") as tf:
                for m in tf.getmembers():
                    if not m.name.endswith("/relup"):
                        continue
                    f = tf.extractfile(m)
                    if f is None:
                        continue
                    _collect_sync(parse_term(f.read().decode("utf-8")), me, ids)
        except Exception as exc:  # a relup we cannot read must not stop the upgrade
            logger.warning("could not read relup from %s: %s", self.name, exc)
        return ids


def _rel_vsn(data: bytes, name: str) -> str | None:
    """The release version from ``releases/<name>.rel`` (any ``releases/*.rel`` as fallback)."""
    import io  # noqa: PLC0415
    import tarfile  # noqa: PLC0415

    from erlbridge.term import parse_term  # noqa: PLC0415

    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
            rels = [
                m
                for m in tf.getmembers()
                if m.name.startswith("releases/")
                and m.name.endswith(".rel")
                and m.name.count("/") == 1
            ]
            rels.sort(key=lambda m: m.name != f"releases/{name}.rel")
            for m in rels:
                f = tf.extractfile(m)
                if f is None:
                    continue
                term = parse_term(f.read().decode("utf-8"))
                return text_of(term[1][1])
    except Exception as exc:  # the tarball is checked by unpack_release anyway
        logger.warning("could not read the .rel of %s: %s", name, exc)
    return None


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
