"""The erl runner: the local erl, and a container of another OTP making the same relup."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from erlbridge.exceptions import PlanError
from erlbridge.plan import ErlRunner, plan_upgrade
from erlbridge.plan.runner import RunnerError, pick_runner
from erlbridge.term import Atom, format_term


@pytest.mark.integration
def test_local_runner_evaluates_and_reports_crashes(tmp_path: Path) -> None:
    if shutil.which("erl") is None:
        pytest.skip("needs erl")
    r = ErlRunner.local()
    assert r.eval("lists:seq(1, 3).", workdir=tmp_path) == [1, 2, 3]
    with pytest.raises(RunnerError, match="crashed"):
        r.eval("erlang:error(boom).", workdir=tmp_path)
    with pytest.raises(RunnerError, match="no answer within"):
        r.eval("timer:sleep(20000).", workdir=tmp_path, timeout=3)
    assert pick_runner(r.otp_release(), local=r) == (r, None)
    with pytest.raises(RunnerError, match="not found"):
        ErlRunner.local("/nonexistent/erl").eval("1.", workdir=tmp_path)
    assert issubclass(RunnerError, PlanError)


@pytest.mark.docker
def test_container_of_another_otp_makes_the_same_relup(erl_fixture_tarballs: Path) -> None:
    image = ErlRunner.docker("erlbridge-base:otp27")
    if not image.available():
        pytest.skip("no erlbridge-base:otp27 image (scripts/test.sh builds it)")
    old = erl_fixture_tarballs / "fixture-1.0.0.tar.gz"
    new = erl_fixture_tarballs / "fixture-2.0.0.tar.gz"
    here = plan_upgrade(old, new)
    there = plan_upgrade(old, new, erl=image)
    assert there.runner == "docker erlbridge-base:otp27"
    assert image.otp_release() == "27"
    there.relup.validate()
    # systools of OTP 27 may order independent instructions differently: same content
    for direction in ("up_from", "down_to"):
        a = getattr(here.relup, direction)("1.0.0").to_term()
        b = getattr(there.relup, direction)("1.0.0").to_term()
        assert sorted(format_term(_norm(t)) for t in a) == sorted(
            format_term(_norm(t)) for t in b)


def _norm(term: Any) -> Any:
    """Module lists in a canonical order (their order carries no meaning here)."""
    if isinstance(term, tuple):
        return tuple(_norm(t) for t in term)
    if isinstance(term, list) and term and all(isinstance(t, Atom) for t in term):
        return sorted(term)
    if isinstance(term, list):
        return [_norm(t) for t in term]
    return term
