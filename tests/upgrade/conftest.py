"""Shared samples and Erlang helpers for the upgrade tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from erlbridge.term import Atom, ErlString
from erlbridge.upgrade import (
    MFA,
    SOFT,
    AddApplication,
    AddModule,
    Advanced,
    Apply,
    CodeChange,
    DeleteModule,
    Load,
    LoadApplication,
    LoadModule,
    LoadObjectCode,
    Mode,
    PointOfNoReturn,
    Purge,
    PurgeMethod,
    Remove,
    RemoveApplication,
    RestartApplication,
    RestartEmulator,
    RestartNewEmulator,
    Resume,
    Start,
    StartApplication,
    Stop,
    StopApplication,
    Suspend,
    SyncNodes,
    UnloadApplication,
    Update,
)

TIMEOUT_FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))


def low_samples() -> list[Any]:
    """At least one instance of every low-level instruction, in every term form."""
    return [
        LoadObjectCode("demo", "2", ["demo_srv", "demo_lib"]),
        LoadObjectCode("demo", ErlString("1.0.0-rc.1"), []),
        LoadObjectCode("élan", "2", ["mod@x", "Quoted"]),
        PointOfNoReturn(),
        Load("demo_srv"),
        Load("demo_srv", PurgeMethod.SOFT_PURGE, "soft_purge"),
        Remove("old_mod", "brutal_purge", PurgeMethod.SOFT_PURGE),
        Purge(["a", "b"]),
        Purge([]),
        Suspend(["demo_srv", ("demo_sup", 5000), ("x", "infinity"), ("y", "default"), ("z", 0)]),
        CodeChange([("demo_srv", [])]),
        CodeChange([("demo_srv", (Atom("extra"), 1, ErlString("s")))], mode=Mode.DOWN),
        CodeChange([("demo_srv", Atom("extra_up"))], mode=None),
        Resume(["demo_srv"]),
        Stop(["demo_sup"]),
        Start(["demo_sup"]),
        SyncNodes("demo_sync", ["a@127.0.0.1", "b@h"]),
        SyncNodes((Atom("id"), 7), MFA("fixture", "cluster_nodes", [])),
        SyncNodes(42, ("m", "f", [1, ErlString("x")])),
        Apply("io", "format", [ErlString("~p~n"), [b"bin", 1.5, -3, 2**70]]),
        Apply("erlang", "garbage_collect"),
        RestartNewEmulator(),
        RestartEmulator(),
    ]


def application_samples() -> list[Any]:
    return [
        StopApplication("demo"),
        StartApplication("demo"),
        StartApplication("demo", "temporary"),
        LoadApplication("demo", ["a", "b"]),
        LoadApplication("demo"),
        UnloadApplication("demo", ["a", "b"]),
        UnloadApplication("demo"),
    ]


def high_samples() -> list[Any]:
    return [
        LoadModule("m"),
        LoadModule("m", dep_mods=["a"]),
        LoadModule("m", "soft_purge", "brutal_purge", []),
        Update("m"),
        Update("m", supervisor=True),
        Update("m", SOFT),
        Update("m", Advanced([])),
        Update("m", ("advanced", Atom("x"))),
        Update("m", dep_mods=["a", "b"]),
        Update("m", "soft", dep_mods=[]),
        Update("m", Advanced(1), dep_mods=["a"], pre_purge="soft_purge", post_purge="brutal_purge"),
        Update(
            "m",
            "soft",
            dep_mods=[],
            pre_purge="brutal_purge",
            post_purge="brutal_purge",
            timeout=5000,
        ),
        Update(
            "m",
            "soft",
            dep_mods=[],
            pre_purge="brutal_purge",
            post_purge="brutal_purge",
            timeout="infinity",
            mod_type="static",
        ),
        AddModule("m"),
        AddModule("m", ["a"]),
        DeleteModule("m"),
        DeleteModule("m", []),
        AddApplication("app"),
        AddApplication("app", "load"),
        RemoveApplication("app"),
        RestartApplication("app"),
    ]


@pytest.fixture
def all_low_samples() -> list[Any]:
    return low_samples()


def erl_available() -> bool:
    return shutil.which("erl") is not None


def run_erl(eval_code: str, *, cwd: Path | None = None, timeout: float = 60.0) -> str:
    """Run ``erl -noshell -eval CODE`` (the code must halt); return stdout."""
    if not erl_available():
        pytest.skip("no local erl")
    proc = subprocess.run(
        ["erl", "-noshell", "-eval", eval_code],
        capture_output=True,
        text=True,
        timeout=timeout * TIMEOUT_FACTOR,
        cwd=cwd,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"erl failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}")
    return proc.stdout


def consult_etf(paths: list[Path]) -> list[bytes]:
    """``term_to_binary`` (minor_version 2, as OTP 26+ does by default) of ``file:consult``
    of each file, computed by a real erl."""
    files = ",".join('"' + str(p).replace("\\", "\\\\").replace('"', '\\"') + '"' for p in paths)
    code = (
        "lists:foreach(fun(F) -> {ok, T} = file:consult(F), "
        'io:format("~s~n", [binary:encode_hex(term_to_binary(T, [{minor_version, 2}]))]) end, '
        f"[{files}]), halt()."
    )
    out = run_erl(code)
    return [bytes.fromhex(line) for line in out.split()]


def _ids(items: list[Any]) -> list[str]:
    return [f"{i}-{type(x).__name__}" for i, x in enumerate(items)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for name, make in (
        ("low_instruction", low_samples),
        ("app_instruction", application_samples),
        ("high_instruction", high_samples),
    ):
        if name in metafunc.fixturenames:
            items = make()
            metafunc.parametrize(name, items, ids=_ids(items))


@pytest.fixture
def samples() -> dict[str, list[Any]]:
    return {"low": low_samples(), "app": application_samples(), "high": high_samples()}


@pytest.fixture
def erl() -> Any:
    """``erl(code)``: run ``erl -noshell -eval code`` and return stdout."""
    return run_erl


@pytest.fixture
def consult() -> Any:
    """``consult(paths)``: term_to_binary of file:consult of each path, by a real erl."""
    return consult_etf
