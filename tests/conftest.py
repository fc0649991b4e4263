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
* ``--codec-pass=pure`` (scripts/test.sh's second pass, under
  ``ERLBRIDGE_PURE_PYTHON=1``) runs every other test again, on the pure codec.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

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


def _pure_variant(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and _PURE_VARIANT.search(callspec.id) is not None


def _base(item: pytest.Item) -> str:
    return item.nodeid.split("[", 1)[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # a group of variants is split only when it has both kinds
    pure = {_base(item) for item in items if _pure_variant(item)}
    has_pure = pure & {_base(item) for item in items if not _pure_variant(item)}
    if config.getoption("--codec-pass") == "pure":
        keep = [item for item in items if _base(item) not in has_pure]
        dropped = [item for item in items if _base(item) in has_pure]
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
