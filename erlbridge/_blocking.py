"""Blocking twins derived from the asyncio API, so that they cannot drift from it.

A blocking class (:class:`Twin` subclass) wraps one asyncio object (``_inner``) and the
:class:`~erlbridge._portal.Portal` whose loop runs it (``_portal``). Its methods are not
written out: each is made from the asyncio method it forwards to, in one line, e.g.
``connect = awaits(aio.Node.connect, start=True)``. The twin gets that method's parameters,
defaults, annotations and docstring at runtime (``inspect.signature``, ``help()``), and
mypy sees the same parameters through ``ParamSpec``. A parameter added to the asyncio API
therefore reaches the blocking API with no edit here (see
docs/internals/architecture.md#the-blocking-api).

* :func:`awaits`: the asyncio method is a coroutine; the twin runs it on the portal and
  blocks for its result (``Portal.call``). ``fast=`` adds a path tried first (the rpc
  hot path: no task, one hand-off; see docs/internals/architecture.md#the-blocking-api).
* :func:`on_loop`: the asyncio method is plain but loop-affine; the twin runs it on the
  loop thread (``Portal.run``). ``result=`` wraps what it returns (an asyncio Process
  becomes a blocking one).
* :func:`awaits_with`: a module-level coroutine function whose first argument is the
  asyncio object (``discover(node, ...)``); the twin takes the blocking object instead.
* :func:`init_from`: a constructor with the asyncio constructor's parameters, plus the
  keyword-only ones the blocking ``__init__`` declares itself (``portal``).

``start=True`` makes the twin call ``self._ensure()`` first (a blocking Node starts itself
on first use).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar, overload

from erlbridge._portal import Portal

__all__ = [
    "FALLBACK",
    "Twin",
    "adapts",
    "awaits",
    "awaits_with",
    "init_from",
    "on_loop",
    "twin_source",
]

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")
F = TypeVar("F", bound="Twin")

#: the attribute naming, on a derived function, the asyncio callable it was made from
_SOURCE = "__twin_of__"


class Twin:
    """Base of a blocking class: an asyncio object and the portal whose loop runs it."""

    _inner: Any
    _portal: Portal

    def __repr__(self) -> str:
        return repr(self._inner)

    def _ensure(self) -> None:
        """Called before every ``start=True`` twin; a blocking Node starts itself here."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, member in vars(cls).items():  # derived functions: name them as ours
            if callable(member) and hasattr(member, _SOURCE):
                member.__module__ = cls.__module__
                member.__qualname__ = f"{cls.__qualname__}.{name}"


def twin_source(fn: Any) -> Any:
    """The asyncio callable a blocking function was derived from or ``adapts`` (or None)."""
    return getattr(fn, _SOURCE, None)


def _evaluated(annotation: Any, fn: Any) -> Any:
    """``annotation`` as an object, evaluated where ``fn`` was written (kept if it fails)."""
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, dict(getattr(fn, "__globals__", {})))
    except Exception:  # e.g. a name imported for type checking only: keep the text
        return annotation


def _copy_metadata(twin: Any, source: Any, signature: inspect.Signature) -> None:
    twin.__name__ = source.__name__
    twin.__qualname__ = source.__qualname__
    twin.__doc__ = source.__doc__
    twin.__signature__ = signature
    twin.__annotations__ = dict(getattr(source, "__annotations__", {}))
    setattr(twin, _SOURCE, source)


#: what a ``fast`` path returns when it cannot serve the call (see :func:`awaits`)
FALLBACK: Any = object()


def _binder(signature: inspect.Signature) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
    """A cheap ``Signature.bind`` for a fast path: the arguments as a dict with the
    defaults filled in, or None when they do not simply fit (the coroutine path then
    reports the TypeError exactly as the asyncio method would)."""
    params = list(signature.parameters.values())[1:]  # without self
    positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    known = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    defaults = {p.name: p.default for p in params if p.default is not p.empty}
    if len(known) != len(params):  # *args/**kwargs: no fast binding
        return lambda args, kwargs: None

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        if len(args) > len(positional) or not known.issuperset(kwargs):
            return None
        values = dict(defaults)
        values.update(zip(positional, args, strict=False))
        for name in kwargs:
            if name in positional[: len(args)]:
                return None  # given twice
        values.update(kwargs)
        return values if len(values) == len(known) else None

    return bind


def awaits(
    fn: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]],
    *,
    start: bool = False,
    fast: Callable[[Any, dict[str, Any]], Any] | None = None,
) -> Callable[Concatenate[Any, P], T]:
    """The blocking twin of the coroutine method ``fn``: run it on the portal, block.

    ``fast(self, arguments)``, if given, is tried first with the call's arguments by name
    (defaults filled in): it returns the result, or :data:`FALLBACK` to run ``fn``.
    """
    name = fn.__name__
    signature = inspect.signature(fn)

    if fast is not None:
        bind = _binder(signature)

        def twin(self: Twin, /, *args: Any, **kwargs: Any) -> Any:
            if start:
                self._ensure()
            arguments = bind(args, kwargs)
            if arguments is not None:
                value = fast(self, arguments)
                if value is not FALLBACK:
                    return value
            return self._portal.call(getattr(self._inner, name)(*args, **kwargs))

    elif start:

        def twin(self: Twin, /, *args: Any, **kwargs: Any) -> Any:
            self._ensure()
            return self._portal.call(getattr(self._inner, name)(*args, **kwargs))

    else:

        def twin(self: Twin, /, *args: Any, **kwargs: Any) -> Any:
            return self._portal.call(getattr(self._inner, name)(*args, **kwargs))

    _copy_metadata(twin, fn, signature)
    return twin


@overload
def on_loop(
    fn: Callable[Concatenate[Any, P], T], *, start: bool = False
) -> Callable[Concatenate[Any, P], T]: ...


@overload
def on_loop(
    fn: Callable[Concatenate[Any, P], T], *, start: bool = False, result: Callable[[Any, T], R]
) -> Callable[Concatenate[Any, P], R]: ...


def on_loop(
    fn: Callable[Concatenate[Any, P], Any],
    *,
    start: bool = False,
    result: Callable[[Any, Any], Any] | None = None,
) -> Callable[Concatenate[Any, P], Any]:
    """The blocking twin of the plain method ``fn``, run on the loop thread.

    ``result(self, value)``, if given, turns what ``fn`` returns into what the twin
    returns; the twin's return annotation is then ``result``'s.
    """
    name = fn.__name__
    signature = inspect.signature(fn)

    def twin(self: Twin, /, *args: Any, **kwargs: Any) -> Any:
        if start:
            self._ensure()
        value = self._portal.run(getattr(self._inner, name), *args, **kwargs)
        return value if result is None else result(self, value)

    if result is not None:
        returns = _evaluated(inspect.signature(result).return_annotation, result)
        signature = signature.replace(return_annotation=returns)
    _copy_metadata(twin, fn, signature)
    if result is not None:
        twin.__annotations__["return"] = signature.return_annotation
    return twin


def awaits_with(
    fn: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]], first: type[F]
) -> Callable[Concatenate[F, P], T]:
    """The blocking twin of a coroutine function whose first argument is an asyncio
    object: the twin takes the blocking ``first`` instead (started, then unwrapped)."""
    signature = inspect.signature(fn)
    head, *rest = signature.parameters.values()
    signature = signature.replace(parameters=[head.replace(annotation=first), *rest])

    def twin(obj: F, /, *args: Any, **kwargs: Any) -> T:
        obj._ensure()
        return obj._portal.call(fn(obj._inner, *args, **kwargs))

    _copy_metadata(twin, fn, signature)
    twin.__annotations__[head.name] = first
    twin.__module__ = first.__module__
    return twin


def adapts(source: Callable[..., Any]) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Mark a twin written by hand (it converts blocking objects to asyncio ones) as the
    twin of ``source``: it gets ``source``'s docstring unless it has its own, and the
    parity tests compare its parameters with ``source``'s."""

    def mark(fn: Callable[P, T]) -> Callable[P, T]:
        if not fn.__doc__:
            fn.__doc__ = source.__doc__
        setattr(fn, _SOURCE, source)
        return fn

    return mark


def init_from(
    init: Callable[Concatenate[Any, P], None],
) -> Callable[[Callable[..., None]], Callable[Concatenate[Any, P], None]]:
    """Give the decorated ``__init__(self, *args, <own keyword-only>, **kwargs)`` the
    asyncio constructor ``init``'s signature, followed by its own keyword-only parameters.

    The decorated function receives the asyncio arguments as ``*args, **kwargs`` and
    passes them on. Its own parameters may also replace a leading asyncio one by name
    (the blocking Driver's ``node`` is a blocking Node). mypy sees ``init``'s parameters
    (the extra keyword-only ones are known at runtime only).
    """
    source = inspect.signature(init)

    def decorate(fn: Callable[..., None]) -> Callable[Concatenate[Any, P], None]:
        own = inspect.signature(fn).parameters
        params = []
        for param in source.parameters.values():
            mine = own.get(param.name)
            annotation = param.annotation if mine is None else _evaluated(mine.annotation, fn)
            params.append(param.replace(annotation=annotation))
        extra = [
            p.replace(annotation=_evaluated(p.annotation, fn))
            for p in own.values()
            if p.kind is p.KEYWORD_ONLY and p.name not in source.parameters
        ]
        varkw = [p for p in params if p.kind is p.VAR_KEYWORD]
        params = [p for p in params if p.kind is not p.VAR_KEYWORD] + extra + varkw
        doc = fn.__doc__
        _copy_metadata(fn, init, source.replace(parameters=params))
        fn.__doc__ = doc or init.__doc__
        fn.__annotations__.update({p.name: p.annotation for p in extra})
        return fn

    return decorate
