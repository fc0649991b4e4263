"""Repository-wide pytest configuration.

The erlbridge plugin (``erlbridge.pytest_plugin``, loaded through its ``pytest11`` entry
point) provides the cluster fixtures, the ``--erl-backend``/``--otp`` options and the CI
rule: with ``CI=true`` a skipped ``integration``/``docker`` test fails the run.

**Both codecs, every test.** The compiled codec (``erlbridge/term/_speedups.c``) is
optional, so every test runs with it and without it, at no more than one extra run of
the tests that need one:

* A test that comes in several variants, one of them (not all) for OTP 27 (``[docker-otp27]``,
  ``[otp27]``, ``[27]``), runs that variant on the pure-Python codec (switched in this
  process; ``ERLBRIDGE_PURE_PYTHON=1`` for the programs it starts) and the others on
  the compiled one.
* Two tests that prove the same path in two ways may pair up the same way:
  ``@pytest.mark.codec_group("name")`` on both, ``pure=True`` on the one that runs on the
  pure codec (the plugin wheel's user project on the local and on the docker backend).
* ``--codec-pass=pure`` (scripts/test.sh's second pass, under
  ``ERLBRIDGE_PURE_PYTHON=1``) runs every other test again, on the pure codec, except
  those that ran no compiled code in the main pass: with ``--codec-log=FILE`` the main
  pass lists every test during which (setup and teardown included, any thread) this
  process never entered the compiled encoder or decoder and started no other process;
  run again, such a test would run the very same code. The second pass, given the same
  ``--codec-log``, leaves those out. Without the file it runs them all.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from erlbridge.term import ACCELERATED, decoder, encoder

pytest_plugins = ["pytester"]

_PURE_VARIANT = re.compile(r"(^|-)(otp)?27($|-)")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--codec-pass",
        choices=("main", "pure"),
        default="main",
        help="main: OTP 27 variants on the pure codec, the rest compiled; pure: only the "
        "tests without such a variant (run it with ERLBRIDGE_PURE_PYTHON=1)",
    )
    parser.addoption(
        "--codec-log",
        default=None,
        help="main pass: write the tests that ran no compiled code here; pure pass: leave "
        "them out",
    )


# -- which tests run compiled code (main pass, --codec-log) ----------------------------

_touched = [0]  # compiled encoder/decoder entries and processes started, this session
_FREE = pytest.StashKey[list[str]]()  # the tests that touched neither


def _counting(fn: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any) -> Any:
        _touched[0] += 1
        return fn(*args)

    return counted


def _count_compiled_code() -> None:
    decoder._run_compiled = _counting(decoder._run_compiled)
    encoder._encode_compiled = _counting(encoder._encode_compiled)
    decoder.use_compiled(True)
    encoder.use_compiled(True)
    popen_init = subprocess.Popen.__init__

    def init(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        _touched[0] += 1
        popen_init(self, *args, **kwargs)

    subprocess.Popen.__init__ = init  # type: ignore[method-assign]
    os.register_at_fork(before=lambda: _touched.__setitem__(0, _touched[0] + 1))


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--codec-log") and config.getoption("--codec-pass") == "main":
        if not ACCELERATED:
            raise pytest.UsageError("--codec-log in the main pass needs the compiled codec")
        _count_compiled_code()
        config.stash[_FREE] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    free = item.config.stash.get(_FREE, None)
    before = _touched[0]
    yield
    if free is not None and _touched[0] == before:
        free.append(item.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    free = session.config.stash.get(_FREE, None)
    if free is not None:
        path = Path(session.config.getoption("--codec-log"))
        path.write_text(json.dumps(sorted(free), indent=0))


def _pure_variant(item: pytest.Item) -> bool:
    group = item.get_closest_marker("codec_group")
    if group is not None:
        return bool(group.kwargs.get("pure", False))
    callspec = getattr(item, "callspec", None)
    return callspec is not None and _PURE_VARIANT.search(callspec.id) is not None


def _base(item: pytest.Item) -> str:
    group = item.get_closest_marker("codec_group")
    if group is not None:
        return f"{item.nodeid.split('::', 1)[0]}::{group.args[0]}"
    return item.nodeid.split("[", 1)[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # a group of variants is split only when it has both kinds
    pure = {_base(item) for item in items if _pure_variant(item)}
    has_pure = pure & {_base(item) for item in items if not _pure_variant(item)}
    if config.getoption("--codec-pass") == "pure":
        log = config.getoption("--codec-log")
        text = Path(log).read_text() if log and Path(log).exists() else ""
        free = set(json.loads(text)) if text.strip() else set()

        def again(item: pytest.Item) -> bool:
            return _base(item) not in has_pure and item.nodeid not in free

        keep = [item for item in items if again(item)]
        dropped = [item for item in items if not again(item)]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep
        return
    for item in items:
        if _pure_variant(item) and _base(item) in has_pure:
            item.add_marker("pure_codec")


@pytest.fixture(autouse=True)
def _codec(request: pytest.FixtureRequest) -> Iterator[None]:
    """The pure codec for a test marked ``pure_codec`` (see the module text). Not through
    ``monkeypatch``: an autouse fixture that asks for it would make it the first fixture
    set up and the last torn down, after the test's own fixtures' teardown."""
    if not ACCELERATED or request.node.get_closest_marker("pure_codec") is None:
        yield
        return
    before = os.environ.get("ERLBRIDGE_PURE_PYTHON")
    os.environ["ERLBRIDGE_PURE_PYTHON"] = "1"
    decoder.use_compiled(False)
    encoder.use_compiled(False)
    try:
        yield
    finally:
        decoder.use_compiled(True)
        encoder.use_compiled(True)
        if before is None:
            del os.environ["ERLBRIDGE_PURE_PYTHON"]
        else:
            os.environ["ERLBRIDGE_PURE_PYTHON"] = before
