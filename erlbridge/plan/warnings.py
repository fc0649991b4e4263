"""``PlanWarning``: one lint of an upgrade plan, with the application and module."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["PlanWarning"]


@dataclass(frozen=True, slots=True)
class PlanWarning:
    """A finding the user should read before installing (the plan is still valid).

    ``code`` is a short stable name (e.g. ``no_code_change``), ``app``/``module`` what it
    concerns (None when it concerns the release).
    """

    code: str
    message: str
    app: str | None = None
    module: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "app": self.app, "module": self.module,
                "message": self.message}

    def __str__(self) -> str:
        where = "/".join(x for x in (self.app, self.module) if x)
        return f"[{self.code}] {where + ': ' if where else ''}{self.message}"
