"""The docs pages exist, their examples are well-formed, and they run against real nodes.

Conventions of ``docs/*.md`` (also in docs/README.md):

* ```` ```python ```` blocks of one page run in order as one program, in a fresh
  interpreter, with the demo cluster's coordinates in the environment
  (``ERLANG_COOKIE``, ``ERL_EPMD_PORT``, ``ERLBRIDGE_TARGETS``, ``ERLBRIDGE_SEED``,
  ``ERLBRIDGE_FIXTURES``); the program must exit 0.
* ```` ```console ```` blocks: every line starting with ``$ `` is run with bash in the same
  environment and must exit 0 (unless it ends with ``# exits N``); output lines are
  illustrations and are not compared.
* Any other language (``text``, ``erlang``, ``pycon``, ``toml``) is not executed.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = ("node", "instructions", "driver", "cli", "notebooks", "testing", "plan")
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)
EXITS = re.compile(r"#\s*exits\s+(\d+)\b")
TIMEOUT_FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start(2)) + 1
        found.append(Block(match.group(1), match.group(2), line))
    return found


def page_paths() -> list[Path]:
    return [DOCS / f"{name}.md" for name in PAGES]


@pytest.mark.parametrize("name", PAGES)
def test_page_exists_and_has_runnable_examples(name: str) -> None:
    page = DOCS / f"{name}.md"
    assert page.is_file(), f"docs/{name}.md is missing"
    runnable = [b for b in blocks(page) if b.lang in ("python", "console")]
    assert runnable, f"docs/{name}.md has no runnable example"


@pytest.mark.parametrize("page", page_paths(), ids=lambda p: p.name)
def test_python_blocks_compile(page: Path) -> None:
    for block in blocks(page):
        if block.lang == "python":
            ast.parse(block.code, filename=f"{page.name}:{block.line}")


def python_program(page: Path) -> str:
    parts = []
    for block in blocks(page):
        if block.lang == "python":
            parts.append(f"# ---- {page.name} line {block.line} ----\n{block.code}")
    return "\n".join(parts)


def console_commands(page: Path) -> list[tuple[int, str, int]]:
    commands = []
    for block in blocks(page):
        if block.lang != "console":
            continue
        for offset, raw in enumerate(block.code.splitlines()):
            if raw.startswith("$ "):
                command = raw[2:]
                match = EXITS.search(command)
                commands.append((block.line + offset, command, int(match.group(1)) if match else 0))
    return commands


@pytest.mark.integration
@pytest.mark.erl_backend("local")  # the pages use the local demo cluster and its tarballs
@pytest.mark.parametrize("page", page_paths(), ids=lambda p: p.name)
def test_page_examples_run(page: Path, docs_env: dict[str, str], tmp_path: Path) -> None:
    program = python_program(page)
    if program:
        script = tmp_path / f"{page.stem}_examples.py"
        script.write_text(program, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, str(script)],
            check=False,
            env=docs_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300 * TIMEOUT_FACTOR,
        )
        assert done.returncode == 0, (
            f"python examples of {page.name} failed:\n{done.stdout}\n{done.stderr}"
        )
    for line, command, expected in console_commands(page):
        done = subprocess.run(
            ["bash", "-c", command],
            check=False,
            env=docs_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300 * TIMEOUT_FACTOR,
        )
        assert done.returncode == expected, (
            f"{page.name}:{line}: `{command}` exited {done.returncode} (expected {expected})\n"
            f"{done.stdout}\n{done.stderr}"
        )


@pytest.mark.integration
def test_readme_examples_run_against_the_kept_demo_cluster(
    erl_fixture_tarballs: Path, tmp_path: Path
) -> None:
    """As a new user: `scripts/demo.sh --keep`, paste the printed exports, run the README's
    30-second example (Python, then the shell lines), press Ctrl-C; nothing is left over."""
    readme = ROOT / "README.md"
    workdir = tmp_path / "kept"
    env = dict(os.environ)
    for name in ("ERLANG_COOKIE", "ERL_EPMD_PORT", "ERLBRIDGE_TARGETS", "ERLBRIDGE_SEED"):
        env.pop(name, None)
    env["ERLBRIDGE_VENV"] = str(Path(sys.executable).parent.parent)
    env["ERLBRIDGE_FIXTURES"] = str(erl_fixture_tarballs)
    user = tmp_path / "user"
    (user / "_build").mkdir(parents=True)
    (user / "_build" / "fixtures").symlink_to(erl_fixture_tarballs)
    (user / "readme_example.py").write_text(python_program(readme), encoding="utf-8")
    demo = subprocess.Popen(
        [str(ROOT / "scripts" / "demo.sh"), "--keep", "--workdir", str(workdir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    exports: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            if line.strip().startswith("export "):
                exports.append(line.strip())
            if "Press Ctrl-C" in line:
                break
        shell = " ".join(exports)
        for name in ("ERLANG_COOKIE", "ERL_EPMD_PORT", "ERLBRIDGE_TARGETS", "ERLBRIDGE_SEED"):
            assert f"{name}=" in shell, exports
        shell = "; ".join(exports)
        path = f'PATH="{Path(sys.executable).parent}:$PATH"'
        done = subprocess.run(
            ["bash", "-c", f"{shell}; {path}; python readme_example.py"],
            check=False,
            env=env,
            cwd=user,
            capture_output=True,
            text=True,
            timeout=300 * TIMEOUT_FACTOR,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "downgrade:1.0.0: 3 ok" in done.stdout
        for line, command, expected in console_commands(readme):
            ran = subprocess.run(
                ["bash", "-c", f"{shell}; {path}; {command}"],
                check=False,
                env=env,
                cwd=user,
                capture_output=True,
                text=True,
                timeout=300 * TIMEOUT_FACTOR,
            )
            assert ran.returncode == expected, (
                f"README.md:{line}: {command}\n{ran.stdout}{ran.stderr}"
            )
            if "releases" in command:
                assert len(re.findall(r"1\.0\.0\s+permanent", ran.stdout)) == 3, ran.stdout
    finally:
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=120 * TIMEOUT_FACTOR)
    assert demo.returncode == 0, rest
    assert "cluster stopped" in rest
    leftovers = [
        p
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and str(workdir).encode() in _cmdline(p)
    ]
    assert leftovers == []


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""
