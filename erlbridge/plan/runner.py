"""Run Erlang for the planner: a local ``erl``, or ``erl`` in a container of another OTP.

This is the only part of :mod:`erlbridge.plan` that starts processes. An expression
file is evaluated by ``erl -noshell`` (no user code is loaded: only OTP's own
modules such as ``systools``); its value comes back as ``term_to_binary`` in base64
on stdout, so any term survives. Every run has a timeout; a container is removed when
it times out. Files the expression reads must lie under the ``workdir`` given to
:meth:`ErlRunner.eval`, which a container gets mounted at the same path.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erlbridge.exceptions import DecodeError, PlanError
from erlbridge.term import decode

__all__ = ["ErlRunner", "RunnerError", "pick_runner"]

logger = logging.getLogger(__name__)

_MARK = "ERLBRIDGE-RESULT:"
_LOADER = (
    "{{ok, B}} = file:read_file(\"{path}\"),"
    " {{ok, T, _}} = erl_scan:string(unicode:characters_to_list(B)),"
    " {{ok, E}} = erl_parse:parse_exprs(T),"
    " R = try erl_eval:exprs(E, []) of {{value, V, _}} -> {{ok, V}}"
    " catch C:X:S -> {{crash, C, X, S}} end,"
    " io:put_chars([\"{mark}\", base64:encode(term_to_binary(R)), \"\\n\"]),"
    " halt(0)."
)


class RunnerError(PlanError):
    """Erlang could not be run, timed out or crashed (the message says which)."""


@dataclass
class ErlRunner:
    """How to run ``erl``: ``ErlRunner.local()`` or ``ErlRunner.docker(image)``."""

    erl: str = "erl"
    image: str | None = None
    docker_cmd: str = "docker"
    timeout: float = 300.0
    _otp: str | None = field(default=None, repr=False)

    @classmethod
    def local(cls, erl: str = "erl", *, timeout: float = 300.0) -> ErlRunner:
        """The machine's ``erl`` (a path or a name on ``$PATH``)."""
        return cls(erl=erl, timeout=timeout)

    @classmethod
    def docker(cls, image: str, *, docker: str = "docker", timeout: float = 300.0) -> ErlRunner:
        """``erl`` inside ``image`` (e.g. ``erlbridge-base:otp27``), no network."""
        return cls(image=image, docker_cmd=docker, timeout=timeout)

    @property
    def label(self) -> str:
        return f"docker {self.image}" if self.image else f"local {self.erl}"

    def available(self) -> bool:
        """True if this runner's program exists here (the image is checked for docker)."""
        if self.image is None:
            return shutil.which(self.erl) is not None
        if shutil.which(self.docker_cmd) is None:
            return False
        try:
            r = subprocess.run([self.docker_cmd, "image", "inspect", self.image],
                               check=False, capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return r.returncode == 0

    def otp_release(self) -> str:
        """The OTP major release this runner's ``erl`` is (``"25"``), asked once."""
        if self._otp is None:
            import tempfile  # noqa: PLC0415

            with tempfile.TemporaryDirectory(prefix="erlbridge-erl-") as tmp:
                value = self.eval("erlang:system_info(otp_release).", workdir=Path(tmp))
            self._otp = value.text if hasattr(value, "text") else str(value)
        return self._otp

    def eval(self, expr: str, *, workdir: Path, timeout: float | None = None) -> Any:
        """Evaluate Erlang expressions ``expr`` (ending in ``.``); return the value.

        RunnerError if erl cannot start, times out, crashes or prints no result.
        """
        workdir = workdir.resolve()
        script = workdir / f"expr-{uuid.uuid4().hex[:8]}.erl"
        script.write_text(expr, encoding="utf-8")
        loader = _LOADER.format(path=_erl_path(script), mark=_MARK)
        erl_args = ["-noshell", "-noinput", "-boot", "start_clean", "-eval", loader]
        name = None
        if self.image is None:
            argv = [self.erl, *erl_args]
        else:
            name = f"erlbridge-plan-{uuid.uuid4().hex[:10]}"
            user = f"{os.getuid()}:{os.getgid()}" if hasattr(os, "getuid") else "0:0"
            argv = [self.docker_cmd, "run", "--rm", "--name", name, "--network", "none",
                    "--user", user, "-e", "HOME=/tmp", "-v", f"{workdir}:{workdir}",
                    "-w", str(workdir), self.image, "erl", *erl_args]
        limit = self.timeout if timeout is None else timeout
        try:
            proc = subprocess.run(argv, check=False, capture_output=True, timeout=limit,
                                  cwd=workdir, stdin=subprocess.DEVNULL)
        except FileNotFoundError as exc:
            raise RunnerError(f"{self.label}: not found ({exc})") from exc
        except subprocess.TimeoutExpired as exc:
            if name is not None:
                subprocess.run([self.docker_cmd, "rm", "-f", name], check=False,
                               capture_output=True, timeout=60)
            raise RunnerError(f"{self.label}: no answer within {limit:g} s") from exc
        finally:
            script.unlink(missing_ok=True)
        out = proc.stdout.decode("utf-8", "replace")
        for line in out.splitlines():
            if line.startswith(_MARK):
                try:
                    result = decode(base64.b64decode(line[len(_MARK):]))
                except (DecodeError, ValueError) as exc:
                    raise RunnerError(f"{self.label}: unreadable result: {exc}") from exc
                if isinstance(result, tuple) and result[0] == "ok":
                    return result[1]
                raise RunnerError(f"{self.label}: the expression crashed: {result[1]}:{result[2]}")
        err = (proc.stderr.decode("utf-8", "replace") or out).strip()[-2000:]
        raise RunnerError(f"{self.label}: exit {proc.returncode} without a result: {err}")


def _erl_path(path: Path) -> str:
    return str(path).replace("\\", "\\\\").replace('"', '\\"')


def pick_runner(
    otp: str | None, *, local: ErlRunner | None = None
) -> tuple[ErlRunner, str | None]:
    """The runner for a release of OTP ``otp``: the local erl if it is that OTP, else the
    ``erlbridge-base:otp<N>`` image if present, else the local erl with a note saying so.
    RunnerError when there is no erl at all."""
    here = local or ErlRunner.local()
    have_local = here.available()
    if have_local and (otp is None or here.otp_release() == otp):
        return here, None
    if otp is not None:
        image = ErlRunner.docker(f"erlbridge-base:otp{otp}")
        if image.available():
            return image, None
    if have_local:
        return here, (f"the release is OTP {otp} and no erlbridge-base:otp{otp} image exists: "
                      f"systools of the local OTP {here.otp_release()} made the relup")
    raise RunnerError("no erl: install Erlang/OTP or pass erl=ErlRunner.docker(IMAGE)")
