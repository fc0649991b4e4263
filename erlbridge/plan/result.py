"""``UpgradePlan``: what :func:`erlbridge.plan.plan_upgrade` made, for review and install.

Renderings: :meth:`UpgradePlan.to_text`, :meth:`UpgradePlan.to_dict` (JSON-able) and
``_repr_html_`` (notebooks). :meth:`UpgradePlan.write_tarball` writes the NEW release
as an upgrade tarball; :meth:`UpgradePlan.write` writes the appups and relup into a
release directory.
"""

from __future__ import annotations

import html
import io
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erlbridge.exceptions import PlanError
from erlbridge.plan.build import ReleaseBuild
from erlbridge.plan.diff import ReleaseDiff
from erlbridge.plan.warnings import PlanWarning
from erlbridge.term import format_term
from erlbridge.upgrade import Appup, Relup

__all__ = ["UpgradePlan"]

_TOP = ("bin", "lib", "releases")


@dataclass
class UpgradePlan:
    """An upgrade of release ``name`` from ``old_vsn`` to ``new_vsn`` and back.

    ``appups``: one per changed application (``generated`` says which were generated;
    the others are shipped, kept as written). ``relup``: made by ``systools:make_relup``.
    ``warnings``: findings to review; the plan is valid.
    """

    old_build: ReleaseBuild = field(repr=False)
    new_build: ReleaseBuild = field(repr=False)
    diff: ReleaseDiff
    appups: dict[str, Appup]
    appup_texts: dict[str, str] = field(repr=False)
    generated: frozenset[str]
    relup: Relup
    warnings: list[PlanWarning]
    runner: str = ""

    @property
    def name(self) -> str:
        return self.new_build.name

    @property
    def old_vsn(self) -> str:
        return self.old_build.vsn

    @property
    def new_vsn(self) -> str:
        return self.new_build.vsn

    @property
    def shipped(self) -> frozenset[str]:
        return frozenset(self.appups) - self.generated

    def old_app_versions(self) -> dict[str, str]:
        """Application -> version in the OLD release (what the nodes should run)."""
        return {a: b.vsn for a, b in self.old_build.apps.items()}

    def old_module_md5s(self) -> dict[str, bytes]:
        """``beam_lib:md5`` of the OLD build's changed and removed modules: a node whose
        loaded module differs (``module_info(md5)``) was patched by hand."""
        out: dict[str, bytes] = {}
        for a in self.diff.changed:
            old = self.old_build.apps[a.app]
            for m in a.modules:
                if m.change != "added" and old.dir is not None:
                    out[m.module] = old.beam(m.module).md5
        return out

    def needed_bytes(self) -> int:
        """About what an upgrade needs on a node's disk: the lib dirs of added and
        changed applications plus ``releases/VSN``, twice (the tarball, then extracted)."""
        names = {a for a, _v in self.diff.added} | {a.app for a in self.diff.changed}
        dirs = [self.new_build.apps[a].dir for a in names] + [self.new_build.rel_file.parent]
        total = 0
        for d in dirs:
            if d is not None:
                total += sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
        return 2 * total

    # ---------------------------------------------------------------- files

    def write(self, release_dir: str | Path | None = None) -> Path:
        """Write each appup to ``lib/APP-VSN/ebin/APP.appup`` and the relup to
        ``releases/VSN/relup`` of ``release_dir`` (default: the NEW build, if it is a
        directory). Returns the relup's path."""
        root = Path(release_dir) if release_dir is not None else self.new_build.source
        if not root.is_dir():
            raise PlanError(f"{root}: not a release directory (write_tarball for tarballs)")
        for app, text in self.appup_texts.items():
            b = self.new_build.apps[app]
            ebin = root / "lib" / f"{app}-{b.vsn}" / "ebin"
            if not ebin.is_dir():
                raise PlanError(f"{ebin}: missing in {root}")
            (ebin / f"{app}.appup").write_text(text, encoding="utf-8")
        rel_dir = root / "releases" / self.new_vsn
        rel_dir.mkdir(parents=True, exist_ok=True)
        relup = rel_dir / "relup"
        relup.write_text(self.relup.to_text(), encoding="utf-8")
        return relup

    def write_tarball(self, path: str | Path) -> Path:
        """Write the NEW release as an upgrade tarball at ``path`` (``*.tar.gz``).

        It holds ``bin/``, ``erts-*/``, every bundled ``lib/APP-VSN`` (with the plan's
        appups in its ebin), ``releases/VSN/`` (with the relup) and the ``.rel`` as
        ``releases/<stem>.rel`` and ``releases/<name>.rel``: ``unpack_release`` opens
        ``releases/<Name>.rel`` for the ``Name`` it is given (the file's name without
        ``.tar.gz``), so the tarball installs whatever it is called.
        """
        out = Path(path)
        if not out.name.endswith(".tar.gz"):
            raise PlanError(f"{out}: a release tarball's name ends in .tar.gz")
        stem = out.name.removesuffix(".tar.gz")
        root = self.new_build.root
        vsn = self.new_vsn
        replaced = {
            f"lib/{app}-{self.new_build.apps[app].vsn}/ebin/{app}.appup": text.encode()
            for app, text in self.appup_texts.items()
        }
        replaced[f"releases/{vsn}/relup"] = self.relup.to_text().encode()
        rel_bytes = self.new_build.rel_file.read_bytes()
        for name in {stem, self.name}:
            replaced[f"releases/{name}.rel"] = rel_bytes
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        try:
            with tarfile.open(tmp, "w:gz", dereference=True) as tar:
                for top in sorted(p for p in root.iterdir() if p.name.startswith("erts-")):
                    tar.add(top, top.name)
                if (root / "bin").is_dir():
                    tar.add(root / "bin", "bin")
                for app in self.new_build.apps.values():
                    if app.dir is None or not app.dir.is_relative_to(root):
                        continue
                    arc = f"lib/{app.name}-{app.vsn}"
                    tar.add(app.dir, arc, filter=lambda ti: None if ti.name in replaced else ti)
                rel_dir = self.new_build.rel_file.parent
                tar.add(rel_dir, f"releases/{vsn}",
                        filter=lambda ti: None if ti.name in replaced else ti)
                for extra in ("RELEASES", "start_erl.data"):
                    if (root / "releases" / extra).is_file():
                        tar.add(root / "releases" / extra, f"releases/{extra}")
                for arc, data in sorted(replaced.items()):
                    info = tarfile.TarInfo(arc)
                    info.size = len(data)
                    info.mode = 0o644
                    tar.addfile(info, io.BytesIO(data))
            tmp.replace(out)
        finally:
            tmp.unlink(missing_ok=True)
        return out

    # ---------------------------------------------------------------- review

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the release, every changed app (from/to, generated/shipped, module
        diff, appup text), the relup scripts and the warnings."""
        changed = []
        for a in self.diff.changed:
            d = a.to_dict()
            d["appup"] = "generated" if a.app in self.generated else "shipped"
            d["appup_text"] = self.appup_texts.get(a.app, "")
            changed.append(d)
        return {
            "valid": True,
            "name": self.name,
            "from": self.old_vsn,
            "to": self.new_vsn,
            "erts": {"from": self.old_build.erts_vsn, "to": self.new_build.erts_vsn},
            "runner": self.runner,
            "apps": {"added": dict(self.diff.added), "removed": dict(self.diff.removed),
                     "unchanged": dict(self.diff.unchanged)},
            "changed": changed,
            "relup": {
                "up": [format_term(t, width=10_000) for t in self.relup.up_from(self.old_vsn)
                       .to_term()],
                "down": [format_term(t, width=10_000)
                         for t in self.relup.down_to(self.old_vsn).to_term()],
            },
            "warnings": [w.to_dict() for w in self.warnings],
        }

    def to_text(self) -> str:
        """A plain-text review of the plan."""
        lines = [f"upgrade plan {self.name} {self.old_vsn} -> {self.new_vsn} "
                 f"(relup by systools, {self.runner})"]
        for label, apps in (("added", self.diff.added), ("removed", self.diff.removed)):
            if apps:
                lines.append(f"  {label}: " + ", ".join(f"{a}-{v}" for a, v in apps))
        if self.diff.unchanged:
            lines.append("  unchanged: " + ", ".join(f"{a}-{v}" for a, v in self.diff.unchanged))
        for a in self.diff.changed:
            how = "generated" if a.app in self.generated else "shipped"
            lines.append(f"  changed: {a.app} {a.old_vsn} -> {a.new_vsn} (appup {how})")
            for m in a.modules:
                cc = ", code_change" if m.code_change else ""
                lines.append(f"      {m.change:<8} {m.module} ({m.kind}{cc})")
            for line in self.appup_texts[a.app].splitlines():
                lines.append("      | " + line)
        up = self.relup.up_from(self.old_vsn)
        down = self.relup.down_to(self.old_vsn)
        lines.append(f"  relup: {len(up)} instructions up, {len(down)} down")
        if self.warnings:
            lines.append(f"  {len(self.warnings)} warning(s):")
            lines += [f"    {w}" for w in self.warnings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        e = html.escape
        rows = []
        for a in self.diff.changed:
            mods = "<br>".join(
                f"{e(m.change)} <code>{e(m.module)}</code> ({e(str(m.kind))}"
                f"{', code_change' if m.code_change else ''})" for m in a.modules)
            how = "generated" if a.app in self.generated else "shipped"
            rows.append(f"<tr><td>{e(a.app)}</td><td>{e(a.old_vsn)} → {e(a.new_vsn)}</td>"
                        f"<td>{how}</td><td>{mods}</td>"
                        f"<td><pre>{e(self.appup_texts[a.app])}</pre></td></tr>")
        warn = "".join(
            f"<tr><td>{e(w.code)}</td><td>{e(w.app or '')}</td><td>{e(w.module or '')}</td>"
            f"<td>{e(w.message)}</td></tr>" for w in self.warnings)
        added = ", ".join(f"{a}-{v}" for a, v in self.diff.added) or "none"
        removed = ", ".join(f"{a}-{v}" for a, v in self.diff.removed) or "none"
        return (
            f"<h4>upgrade plan {e(self.name)} {e(self.old_vsn)} → {e(self.new_vsn)}</h4>"
            f"<p>added: {e(added)}; removed: {e(removed)}</p>"
            '<table class="erlbridge-plan"><thead><tr><th>app</th><th>version</th>'
            "<th>appup</th><th>modules</th><th>appup text</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
            + (f'<table class="erlbridge-plan-warnings"><thead><tr><th>warning</th><th>app'
               f"</th><th>module</th><th>message</th></tr></thead><tbody>{warn}</tbody>"
               "</table>" if warn else "<p>no warnings</p>")
            + self.relup._repr_html_()
        )
