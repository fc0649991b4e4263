"""What a test cluster needs to know about a relx release tarball (L4 test support).

:class:`ReleaseInfo` reads a tarball made by ``rebar3 tar`` / relx (3 or 4, with or without
erts): the release name and version, its applications (from ``releases/VSN/NAME.rel``)
and the erts version it was built with. :func:`configure_node_files` makes an extracted
copy of it start as a given node of a test cluster without the user changing the release:

* in every ``releases/*/vm.args`` and ``vm.args.src`` the ``-name``/``-sname`` line becomes
  ``-name <node name>`` (test clusters use long names with IP addresses), and any
  ``-setcookie`` line is removed: the node then reads the cluster's cookie from
  ``$HOME/.erlang.cookie``, so the cookie never reaches a command line (erlexec expands
  ``-args_file`` into the emulator's argv). relx 3 start scripts refuse to run without a
  ``-setcookie`` line; for those the line is kept with the cluster's cookie instead.
* the variables a ``vm.args.src`` reads in its name line (the common ``${NODE_NAME}``)
  are returned for the node's environment, with ``RELX_REPLACE_OS_VARS=true`` (relx 3
  substitutes only then; relx 4 always does for ``.src`` files).

It runs again before every (re)start, because ``release_handler`` unpacks each new
release with its own, untouched ``vm.args``.

:data:`READY_EXPR` is the readiness check: every application the running release's
``.rel`` starts is running (``application:which_applications/0``) and the boot finished.
"""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from erlbridge.exceptions import InvalidState

__all__ = ["READY_EXPR", "ReleaseInfo", "configure_node_files", "rewrite_vm_args"]

# Evaluated on a node (erl_call): true when the boot script has finished and every
# application of the booted release's .rel that is started (not `load`/`none`) runs.
# The .rel sits next to the boot file relx passes with -boot (releases/VSN/).
READY_EXPR = """
case init:get_status() of
  {started, _} ->
    Want = case init:get_argument(boot) of
      {ok, [[Boot | _] | _]} ->
        case filelib:wildcard(filename:join(filename:dirname(Boot), "*.rel")) of
          [Rel | _] ->
            case file:consult(Rel) of
              {ok, [{release, _, _, Apps}]} ->
                [element(1, A) || A <- Apps,
                    not (tuple_size(A) >= 3
                         andalso lists:member(element(3, A), [load, none]))];
              _ -> []
            end;
          [] -> []
        end;
      _ -> []
    end,
    Running = [A || {A, _, _} <- application:which_applications()],
    case Want -- Running of [] -> true; Missing -> {missing, Missing} end;
  Status -> {booting, Status}
end
"""

_NAME_LINE = re.compile(r"^\s*-s?name\s+(\S+)\s*$")
_COOKIE_LINE = re.compile(r"^\s*-setcookie(\s|$)")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")
_RELX3_COOKIE_CHECK = b"needs to have a -setcookie"


@dataclass(frozen=True, slots=True)
class ReleaseInfo:
    """A relx release tarball: ``name``, ``vsn``, ``applications`` (name, vsn) in boot
    order, ``erts_vsn`` it was built with, ``includes_erts``."""

    tarball: Path
    name: str
    vsn: str
    applications: tuple[tuple[str, str], ...]
    erts_vsn: str
    includes_erts: bool
    cookie_line_required: bool = False
    """relx 3 start scripts exit unless ``vm.args`` has a ``-setcookie`` line."""
    name_variables: tuple[str, ...] = ()
    """Variables the name lines of its ``vm.args[.src]`` read (e.g. ``NODE_NAME``)."""

    @property
    def otp_release(self) -> str | None:
        """The OTP release of ``erts_vsn`` (erts 13 = OTP 25, ... 17 = OTP 29), or None."""
        try:
            return str(int(self.erts_vsn.split(".")[0]) + 12)
        except ValueError:
            return None

    @classmethod
    def read(cls, tarball: Path) -> ReleaseInfo:
        """Read ``tarball``; raises :class:`InvalidState` when it is not a relx release."""
        if not tarball.is_file():
            raise InvalidState(f"release tarball {tarball} not found")
        try:
            with tarfile.open(tarball) as tar:
                names = tar.getnames()
                rel_files = [n for n in names if re.fullmatch(r"releases/[^/]+/[^/]+\.rel", n)]
                start_erl = _member_text(tar, "releases/start_erl.data")
                words = start_erl.split() if start_erl else []
                chosen = _pick_rel(rel_files, words[1] if len(words) == 2 else None)
                rel_text = _member_text(tar, chosen) if chosen else None
                vm_args = [_member_text(tar, n) or "" for n in names
                           if re.fullmatch(r"releases/[^/]+/vm\.args(\.src)?", n)]
                scripts = [_member_text(tar, n) or "" for n in names
                           if re.fullmatch(r"bin/[^/]+", n) and not n.endswith(".escript")]
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise InvalidState(f"{tarball} is not a readable release tarball: {exc}") from exc
        if rel_text is None or chosen is None:
            raise InvalidState(f"{tarball} holds no releases/VSN/NAME.rel: not a relx release "
                               "tarball (build it with `rebar3 tar`)")
        name, vsn, erts, apps = _parse_rel(rel_text, chosen)
        includes_erts = any(re.fullmatch(r"erts-[^/]+/bin/beam\.smp", n) for n in names)
        relx3 = any(_RELX3_COOKIE_CHECK.decode() in text for text in scripts)
        variables = {var: None for text in vm_args
                     for _text, found in [rewrite_vm_args(text, "")] for var in found}
        return cls(tarball, name, vsn, apps, words[0] if words else erts, includes_erts,
                   relx3, tuple(variables))


def _member_text(tar: tarfile.TarFile, name: str) -> str | None:
    try:
        member = tar.getmember(name)
    except KeyError:
        return None
    if not member.isfile() or member.size > 1 << 20:
        return None
    f = tar.extractfile(member)
    return None if f is None else f.read().decode("utf-8", errors="replace")


def _pick_rel(rel_files: list[str], vsn: str | None) -> str | None:
    if vsn is not None:
        in_vsn = [n for n in rel_files if n.startswith(f"releases/{vsn}/")]
        if in_vsn:
            return sorted(in_vsn)[0]
    return sorted(rel_files)[0] if rel_files else None


def _parse_rel(text: str, where: str) -> tuple[str, str, str, tuple[tuple[str, str], ...]]:
    # {release, {"NAME", "VSN"}, {erts, "EVSN"}, [{App, "Vsn"} | {App, "Vsn", Type}, ...]}.
    head = re.search(r'\{\s*release\s*,\s*\{\s*"([^"]+)"\s*,\s*"([^"]+)"\s*\}\s*,'
                     r'\s*\{\s*erts\s*,\s*"([^"]+)"\s*\}', text)
    if head is None:
        raise InvalidState(f"{where}: not a release specification")
    apps = tuple((m.group(1), m.group(2)) for m in re.finditer(
        r"\{\s*'?([a-z][A-Za-z0-9_@]*)'?\s*,\s*\"([^\"]+)\"", text[head.end():]))
    return head.group(1), head.group(2), head.group(3), apps


def rewrite_vm_args(text: str, node_name: str, *,
                    cookie: str | None = None) -> tuple[str, dict[str, str]]:
    """``text`` of a ``vm.args``/``vm.args.src`` set up for ``node_name``.

    Returns the new text and the variables the original name line read (each set to
    ``node_name``). ``-setcookie`` lines are removed, or set to ``cookie`` when given (for
    relx 3 scripts, which require one). A file without a name line gets one.
    """
    out: list[str] = []
    variables: dict[str, str] = {}
    named = False
    for line in text.splitlines():
        m = _NAME_LINE.match(line)
        if m is not None:
            for var in _VAR.findall(m.group(1)):
                variables[var] = node_name
            if not named:
                out.append(f"-name {node_name}")
                named = True
            continue
        if _COOKIE_LINE.match(line):
            if cookie is not None:
                out.append(f"-setcookie {cookie}")
            continue
        out.append(line)
    if not named:
        out.insert(0, f"-name {node_name}")
    return "\n".join(out) + "\n", variables


def needs_cookie_line(root: Path, name: str) -> bool:
    """True for relx 3 start scripts, which exit unless vm.args has ``-setcookie``."""
    for script in (root / "bin").glob(f"{name}*"):
        try:
            if _RELX3_COOKIE_CHECK in script.read_bytes()[: 1 << 20]:
                return True
        except OSError:
            continue
    return False


def configure_node_files(root: Path, name: str, node_name: str,
                         cookie: str) -> dict[str, str]:
    """Rewrite every ``releases/*/vm.args[.src]`` under ``root`` (an extracted release
    ``name``) for ``node_name``; returns the environment the node needs."""
    keep_cookie = cookie if needs_cookie_line(root, name) else None
    env: dict[str, str] = {}
    found = False
    for path in sorted(root.glob("releases/*/vm.args*")):
        if path.name not in ("vm.args", "vm.args.src") or not path.is_file():
            continue
        found = True
        text, variables = rewrite_vm_args(path.read_text(errors="replace"), node_name,
                                          cookie=keep_cookie)
        path.write_text(text)
        if keep_cookie is not None:
            path.chmod(0o600)
        env.update(variables)
    if not found:
        raise InvalidState(f"{root}/releases holds no vm.args or vm.args.src: the start "
                           "script needs one for the node name")
    env["RELX_REPLACE_OS_VARS"] = "true"
    return env
