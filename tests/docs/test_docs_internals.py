"""Every reference to a design document can be followed from the repository alone.

Fails when a file of the repository
* names one of the team's former notes files, which are not in the repository (their
  content lives in docs/internals/);
* cites a ``docs/...md`` page that does not exist, or a ``#anchor`` that no heading of
  that page produces (as GitHub renders anchors);
* (Markdown files) links to a relative path that does not exist, or to a missing anchor.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INTERNALS = ROOT / "docs" / "internals"
THIS = Path(__file__).resolve()

# the notes that lived outside the repository (spelled in pieces so this file passes)
GONE = re.compile(
    "|".join(["OTP" + "-NOTES", "PLAN" + "-NOTES", "DESIGN" + r"\.md", "DESIGN" + " §"])
)
# docs/<page>.md[#anchor] anywhere (code comments, docstrings, scripts, Markdown)
DOC_REF = re.compile(r"(?<![\w/.-])(docs/[\w./-]*?\.md)(#[\w-]+)?")
# [text](target) in Markdown; external targets are not checked
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
MAX_BYTES = 1 << 20


def repo_files(root: Path = ROOT) -> list[Path]:
    """Tracked files plus untracked ones git does not ignore (the tree CI would test)."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        check=True,
        capture_output=True,
    ).stdout
    return sorted({root / p for p in out.decode().split("\0") if p})


def _text(path: Path) -> str | None:
    try:
        if not path.is_file() or path.stat().st_size > MAX_BYTES:
            return None
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: markup dropped, lower case, punctuation removed,
    spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # [text](link) -> text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))  # no headings inside code
    seen: dict[str, int] = {}
    found = set()
    for match in HEADING.finditer(text):
        base = github_anchor(match.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def _check_target(page: Path, anchor: str | None, where: str, problems: list[str]) -> None:
    if not page.is_file():
        problems.append(f"{where}: {page} does not exist")
    elif anchor and anchor not in anchors(page):
        problems.append(f"{where}: {page.name} has no section #{anchor}")


def broken_references(files: list[Path], root: Path = ROOT) -> list[str]:
    """One line per broken reference in ``files`` (paths resolved against ``root``)."""
    problems: list[str] = []
    for path in files:
        if path.resolve() == THIS:
            continue
        text = _text(path)
        if text is None:
            continue
        rel = path.relative_to(root) if path.is_relative_to(root) else path
        for n, line in enumerate(text.splitlines(), 1):
            where = f"{rel}:{n}"
            if GONE.search(line):
                problems.append(f"{where}: cites notes that are not in the repository")
            for match in DOC_REF.finditer(line):
                anchor = match.group(2)
                page = (root / match.group(1)).resolve()
                _check_target(page, anchor[1:] if anchor else None, where, problems)
        if path.suffix == ".md":
            for n, line in enumerate(FENCE.sub(lambda m: "\n" * m.group().count("\n"),
                                               text).splitlines(), 1):
                for match in MD_LINK.finditer(line):
                    target = match.group(1)
                    if re.match(r"^[a-z][a-z+.-]*:", target):  # http:, mailto: ...
                        continue
                    file_part, _, anchor = target.partition("#")
                    page = (path.parent / file_part).resolve() if file_part else path
                    if file_part and page.suffix != ".md":
                        if not page.exists():
                            problems.append(f"{rel}:{n}: {target} does not exist")
                        continue
                    _check_target(page, anchor or None, f"{rel}:{n}", problems)
    return list(dict.fromkeys(problems))  # a Markdown link is also a docs/ reference


def test_every_reference_in_the_repository_resolves() -> None:
    assert broken_references(repo_files()) == []


def test_internals_pages_exist_and_have_sections() -> None:
    for name in ("README.md", "architecture.md", "otp-facts.md"):
        page = INTERNALS / name
        assert page.is_file(), f"docs/internals/{name} is missing"
        assert anchors(page), f"docs/internals/{name} has no headings"


def test_every_layer_of_the_contract_is_described() -> None:
    """architecture.md describes the layers pyproject's import-linter contract enforces."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["name"] == "Layers")["layers"]
    page = (INTERNALS / "architecture.md").read_text(encoding="utf-8")
    modules = [m.strip() for layer in layers for m in layer.split("|")]
    assert modules
    missing = [m for m in modules if f"`{m}`" not in page]
    assert missing == [], f"architecture.md does not describe the layer(s) {missing}"


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Creation", "creation"),
        ("install_release outcomes", "install_release-outcomes"),
        ("After the point of no return", "after-the-point-of-no-return"),
        ("`sync_nodes` (who evaluates it)", "sync_nodes-who-evaluates-it"),
        ("Appups: systools_rc", "appups-systools_rc"),
        ("[Layers](x.md) and rules", "layers-and-rules"),
    ],
)
def test_anchors_are_computed_as_github_does(heading: str, anchor: str) -> None:
    assert github_anchor(heading) == anchor


def test_the_check_catches_each_kind_of_broken_reference(tmp_path: Path) -> None:
    (tmp_path / "docs" / "internals").mkdir(parents=True)
    page = tmp_path / "docs" / "internals" / "facts.md"
    page.write_text("# Facts\n\n## Creation\n\n```text\n## not a heading\n```\n")
    code = tmp_path / "mod.py"
    code.write_text(
        "# fine (docs/internals/facts.md#creation)\n"
        "# missing anchor (docs/internals/facts.md#not-a-heading)\n"
        "# missing page (docs/internals/gone.md)\n"
        "# old notes (" + "OTP" + "-NOTES §6.6)\n"
    )
    readme = tmp_path / "README.md"
    readme.write_text(
        "[ok](docs/internals/facts.md#facts) [bad](docs/internals/facts.md#nope) "
        "[gone](docs/missing.md) [file](nothing.txt) [web](https://example.org/x.md)\n"
    )
    found = broken_references([code, readme, page], root=tmp_path)
    assert [p.split(":", 2)[:2] for p in found] == [
        ["mod.py", "2"],
        ["mod.py", "3"],
        ["mod.py", "4"],
        ["README.md", "1"],  # #nope
        ["README.md", "1"],  # docs/missing.md
        ["README.md", "1"],  # nothing.txt
    ]
    assert "no section #not-a-heading" in found[0]
    assert "does not exist" in found[1]
    assert "not in the repository" in found[2]
