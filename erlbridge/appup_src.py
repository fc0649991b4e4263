"""Load appup files, ``.appup.src`` scripts included (runs a local ``erl``).

An ``.appup.src`` is an Erlang *script*: a sequence of expressions whose last value is
the appup, evaluated with ``file:script/2`` and variable bindings the build tool gives.
emqx writes ``{VSN, [...], [...]}`` and evaluates it with ``VSN`` bound;
rebar3_appup_plugin evaluates it with ``STATE`` bound after templating. Python cannot
evaluate Erlang expressions, so :func:`eval_appup_script` asks a local ``erl`` to run
``file:script/2`` and hands the value to :meth:`Appup.from_term`. The script is code: it
runs with the rights of this process, as it would under the build tool.

This module does the I/O; :mod:`erlbridge.upgrade` (sans-I/O) only parses terms.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from erlbridge.exceptions import DecodeError, ScriptError, Timeout
from erlbridge.term import Atom, ErlString, decode, encode
from erlbridge.upgrade.appup import Appup

__all__ = ["eval_appup_script", "load_appup_file"]

#: Largest result term read back from ``erl`` (an appup is a few KiB).
MAX_RESULT_BYTES = 16 << 20
#: How much of ``erl``'s output an error message quotes (its tail).
_LOG_TAIL = 4000
_VARIABLE = re.compile(r"[A-Z_][A-Za-z0-9_@]*\Z")

# Runs in the erl: reads the bindings (external term format), evaluates the script,
# writes {ok, Value} or {error, Text} (external term format) and halts.
_EVAL = """
[In, Script, Out] = init:get_plain_arguments(),
{ok, Bin} = file:read_file(In),
Bs = lists:foldl(fun({K, V}, Acc) -> erl_eval:add_binding(K, V, Acc) end,
                 erl_eval:new_bindings(), binary_to_term(Bin)),
Fmt = fun({L, M, T}) when is_atom(M) ->
              try io_lib:format("line ~p: ~ts", [L, M:format_error(T)])
              catch _:_ -> io_lib:format("~tp", [{L, M, T}]) end;
         (R) -> io_lib:format("~tp", [R]) end,
Res = try file:script(Script, Bs) of
          {ok, V} -> {ok, V};
          {error, R} -> {error, unicode:characters_to_binary(Fmt(R))}
      catch C:E -> {error, unicode:characters_to_binary(io_lib:format("~p:~tp", [C, E]))}
      end,
ok = file:write_file(Out, term_to_binary(Res)),
halt(0).
"""


def eval_appup_script(
    path: str | os.PathLike[str],
    bindings: Mapping[str, Any] | None = None,
    *,
    erl: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 60.0,
) -> Appup:
    """Evaluate the ``.appup.src`` script at ``path`` with ``file:script/2``.

    ``bindings`` maps variable names (``"VSN"``) to values. A plain ``str`` value binds an
    Erlang *string* (a version is one, as ``VSN`` is in emqx's files); other values are
    terms as :mod:`erlbridge.term` models them (``bytes`` a binary, ``Atom`` an atom, a
    ``str`` nested in a list or tuple a binary). ``erl`` defaults to the one on
    ``PATH``; the script runs in ``cwd`` (default: its own directory), without
    distribution, and is stopped after ``timeout`` seconds.

    Raises:
        FileNotFoundError: no such script, or no ``erl``.
        ScriptError: the script fails (rule ``appup_script``, with erl's reason) or its
            value is not an appup (rule ``bad_appup``).
        Timeout: the evaluation took longer than ``timeout``.
        ValueError: a binding name is not an Erlang variable name.
    """
    script = Path(path)
    if not script.is_file():
        raise FileNotFoundError(f"no appup script at {script}")
    names = dict(bindings or {})
    for name in names:
        if not _VARIABLE.match(name):
            raise ValueError(f"not an Erlang variable name: {name!r}")
    program = _find_erl(erl)
    with tempfile.TemporaryDirectory(prefix="erlbridge-appup-") as tmp:
        given = Path(tmp, "bindings.etf")
        given.write_bytes(encode([(Atom(k), _binding(v)) for k, v in names.items()]))
        result = Path(tmp, "result.etf")
        log = Path(tmp, "erl.log")
        command = [program, "-noshell", "-noinput", "-boot", "start_clean",
                   "-eval", _EVAL, "-extra", str(given), str(script.resolve()), str(result)]
        with log.open("wb") as out:
            try:
                proc = subprocess.run(command, cwd=cwd or script.parent, stdin=subprocess.DEVNULL,
                                      stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                                      check=False)
            except subprocess.TimeoutExpired as exc:
                raise Timeout(f"evaluating {script}", timeout) from exc
        if not result.is_file():
            raise ScriptError(f"erl could not evaluate {script} (exit {proc.returncode}): "
                              f"{_tail(log)}", rule="appup_script")
        if result.stat().st_size > MAX_RESULT_BYTES:
            raise ScriptError(f"{script} evaluates to more than {MAX_RESULT_BYTES} bytes",
                              rule="bad_appup")
        try:
            reply = decode(result.read_bytes())
        except DecodeError as exc:
            raise ScriptError(f"{script}: unreadable result: {exc}", rule="bad_appup") from exc
    if isinstance(reply, tuple) and len(reply) == 2 and reply[0] == "error":
        detail = reply[1].decode("utf-8", "replace") if isinstance(reply[1], bytes) else reply[1]
        raise ScriptError(f"{script}: {detail}", rule="appup_script")
    try:
        return Appup.from_term(reply[1])
    except ScriptError as exc:
        raise ScriptError(f"{script}: {exc}", instruction=exc.instruction, rule=exc.rule) from exc


def load_appup_file(
    path: str | os.PathLike[str],
    bindings: Mapping[str, Any] | None = None,
    *,
    erl: str | os.PathLike[str] | None = None,
    timeout: float = 60.0,
) -> Appup:
    """The appup at ``path``: an ``.appup.src`` script is evaluated (see
    :func:`eval_appup_script`), anything else is read as systools reads an ``.appup``
    (its first term, :meth:`Appup.from_text`) without running Erlang.
    """
    file = Path(path)
    if file.name.endswith(".src"):
        return eval_appup_script(file, bindings, erl=erl, timeout=timeout)
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:  # epp's fallback too: a file that is not UTF-8 is Latin-1
        text = data.decode("latin-1")
    return Appup.from_text(text)


def _binding(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, (Atom, ErlString)):
        return ErlString(value)
    return value


def _find_erl(erl: str | os.PathLike[str] | None) -> str:
    if erl is not None:
        if not Path(erl).is_file():
            raise FileNotFoundError(f"no erl at {erl}")
        return str(erl)
    found = shutil.which("erl")
    if found is None:
        raise FileNotFoundError("no erl on PATH (install Erlang/OTP or pass erl=)")
    return found


def _tail(log: Path) -> str:
    with log.open("rb") as handle:
        handle.seek(max(0, log.stat().st_size - _LOG_TAIL))
        return handle.read().decode("utf-8", "replace").strip() or "(no output)"
