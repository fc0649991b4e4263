"""Compare a blocking class with its asyncio twin: names, parameter kinds, defaults,
annotations (resolved, with asyncio types mapped to their blocking twins) and docstrings.

Used by tests/test_sync_node.py and tests/test_sync_driver.py; ``problems`` returns one
line per difference, so a failing test says what drifted.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Union, get_args, get_origin

from erlbridge._blocking import twin_source


def public(cls: type) -> dict[str, Any]:
    """Public functions and properties of ``cls`` (inherited ones included)."""
    return {
        name: member
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property))
    }


def _namespace(fn: Any) -> dict[str, Any]:
    # a derived twin carries its source's signature: its texts are the source's
    source = twin_source(fn) if hasattr(fn, "__signature__") else None
    owner = source if source is not None else fn
    module = sys.modules.get(getattr(owner, "__module__", ""), None)
    return dict(getattr(owner, "__globals__", None) or vars(module or types))


def _resolved(annotation: Any, namespace: Mapping[str, Any]) -> Any:
    if isinstance(annotation, str):
        return eval(annotation, dict(namespace))
    return annotation


def same_type(a: Any, b: Any, translate: Mapping[Any, Any]) -> bool:
    """``a`` (asyncio side) is ``b`` (blocking side) once asyncio types are translated."""
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        pairs = zip(a, b, strict=False)
        return len(a) == len(b) and all(same_type(x, y, translate) for x, y in pairs)
    with contextlib.suppress(TypeError):  # unhashable: nothing to translate
        a = translate.get(a, a)
    if a == b:
        return True
    oa, ob = get_origin(a), get_origin(b)
    if oa is None or ob is None:
        return False
    unions = (Union, types.UnionType)
    if not ((oa in unions and ob in unions) or same_type(oa, ob, translate)):
        return False
    return same_type(list(get_args(a)), list(get_args(b)), translate)


def _same_default(a: Any, b: Any) -> bool:
    return type(a) is type(b) and (a is b or a == b)


def signature_problems(
    name: str,
    async_fn: Callable[..., Any],
    sync_fn: Callable[..., Any],
    *,
    translate: Mapping[Any, Any],
    replaced: Mapping[str, Any] | None = None,
    extra: Iterable[str] = (),
) -> list[str]:
    """Differences between two signatures. ``replaced``: parameters whose blocking
    annotation is a given class instead (a blocking Node for an asyncio one); ``extra``:
    keyword-only parameters only the blocking side has."""
    replaced = replaced or {}
    a_sig, s_sig = inspect.signature(async_fn), inspect.signature(sync_fn)
    a_ns, s_ns = _namespace(async_fn), _namespace(sync_fn)
    s_params = [p for p in s_sig.parameters.values() if p.name not in set(extra)]
    a_params = list(a_sig.parameters.values())
    out: list[str] = []
    a_names, s_names = [p.name for p in a_params], [p.name for p in s_params]
    if a_names != s_names:
        return [f"{name}: parameters {a_names} != {s_names}"]
    for a, s in zip(a_params, s_params, strict=True):
        where = f"{name}({a.name})"
        if a.kind != s.kind:
            out.append(f"{where}: kind {a.kind.description} != {s.kind.description}")
        if not _same_default(a.default, s.default):
            out.append(f"{where}: default {a.default!r} != {s.default!r}")
        a_type = _resolved(a.annotation, a_ns)
        s_type = _resolved(s.annotation, s_ns)
        if a.name in replaced:
            if s_type is not replaced[a.name]:
                out.append(f"{where}: annotation {s_type!r} is not {replaced[a.name]!r}")
        elif not same_type(a_type, s_type, translate):
            out.append(f"{where}: annotation {a_type!r} != {s_type!r}")
    a_ret = _resolved(a_sig.return_annotation, a_ns)
    s_ret = _resolved(s_sig.return_annotation, s_ns)
    if not same_type(a_ret, s_ret, translate):
        out.append(f"{name}: returns {a_ret!r} != {s_ret!r}")
    return out


def problems(
    async_cls: type,
    sync_cls: type,
    *,
    translate: Mapping[Any, Any],
    skip: Iterable[str] = (),
    own_docs: Iterable[str] = (),
    init_replaced: Mapping[str, Any] | None = None,
    init_extra: Iterable[str] = (),
) -> list[str]:
    """Every difference between the public API of ``async_cls`` and its blocking twin."""
    async_api = {n: m for n, m in public(async_cls).items() if n not in set(skip)}
    sync_api = public(sync_cls)
    out = [f"{n}: no blocking twin" for n in async_api if n not in sync_api]
    for name, member in async_api.items():
        twin = sync_api.get(name)
        if twin is None:
            continue
        if isinstance(member, property):
            if not isinstance(twin, property):
                out.append(f"{name}: a property in asyncio, not in the blocking API")
            elif member.fget is not None and twin.fget is not None:
                out += signature_problems(name, member.fget, twin.fget, translate=translate)
            continue
        if not inspect.isfunction(twin) or inspect.iscoroutinefunction(twin):
            out.append(f"{name}: the blocking twin is not a plain function")
            continue
        out += signature_problems(name, member, twin, translate=translate)
        if name not in set(own_docs) and inspect.getdoc(member) != inspect.getdoc(twin):
            out.append(f"{name}: docstring differs")
    out += signature_problems(
        "__init__",
        async_cls.__init__,
        sync_cls.__init__,
        translate=translate,
        replaced=init_replaced,
        extra=init_extra,
    )
    return out
