"""Where the CLI takes the cookie from (never from argv unless explicitly asked).

Order: ``--cookie`` (explicit and unsafe: other users see argv in ``ps``), then
``--cookie-file FILE``, then the ``ERLANG_COOKIE`` environment variable, then
``~/.erlang.cookie``. The value itself is never printed, logged or put in an error message;
only its *source* is reported (``erlbridge ping -v`` says where the cookie came from).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Cookie", "CookieNotFound", "resolve_cookie"]


class CookieNotFound(Exception):
    """No cookie source yielded a cookie; the message lists what was tried."""


@dataclass(frozen=True, slots=True)
class Cookie:
    """A cookie and where it came from; ``repr`` hides the value."""

    value: str
    source: str

    def __repr__(self) -> str:
        return f"Cookie(source={self.source!r})"


def _read_file(path: Path) -> str:
    text = path.read_text(encoding="latin-1").strip()
    if not text:
        raise CookieNotFound(f"the cookie file {path} is empty")
    return text


def resolve_cookie(
    *,
    cookie: str | None,
    cookie_file: Path | None,
    env: Mapping[str, str],
    home: Path,
) -> Cookie:
    """Pick the cookie by the documented order; raise :class:`CookieNotFound` if none."""
    if cookie:
        return Cookie(cookie, "--cookie (visible in the process list)")
    if cookie_file is not None:
        try:
            return Cookie(_read_file(cookie_file), f"--cookie-file {cookie_file}")
        except OSError as exc:
            raise CookieNotFound(f"cannot read the cookie file {cookie_file}: {exc}") from exc
    from_env = env.get("ERLANG_COOKIE", "").strip()
    if from_env:
        return Cookie(from_env, "the ERLANG_COOKIE environment variable")
    default = home / ".erlang.cookie"
    try:
        return Cookie(_read_file(default), str(default))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise CookieNotFound(f"cannot read {default}: {exc}") from exc
    raise CookieNotFound(
        "no cookie: pass --cookie-file FILE, set ERLANG_COOKIE, or create ~/.erlang.cookie"
    )
