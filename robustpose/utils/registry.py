"""The one name -> object registry every table of robustpose is built on.

Models, codecs, losses, training methods, attacks and corruptions each keep one
:class:`Registry`; their ``register_*`` / ``build_*`` / ``list_*`` functions are thin callers
of it, so every table refuses a duplicate name, lists with the same shell pattern and names
its choices (and the nearest one) in the same one-line error::

    >>> MODELS = Registry("model")
    >>> @MODELS.register("tiny", input_size=(64, 64))
    ... def tiny(): ...
    >>> MODELS.list("t*"), MODELS.meta("tiny")
    (['tiny'], {'input_size': (64, 64)})
    >>> MODELS.get("tyni")
    Traceback (most recent call last):
    ...
    robustpose.utils.registry.UnknownNameError: unknown model 'tyni'; choose from tiny (nearest: 'tiny')

A registry is also a read-only-by-default mapping (``REG[name]``, ``name in REG``, iteration
in registration order, ``len``), so code written against the old plain dicts keeps working.
``REG[name] = obj`` and ``del REG[name]`` are the explicit override hooks (tests, monkeypatch);
:meth:`Registry.register` is the way in and never overwrites.
"""
from __future__ import annotations

import copy
import difflib
import fnmatch
from collections.abc import Mapping
from typing import Any, Callable, Iterator, TypeVar

__all__ = ["Registry", "UnknownNameError", "decorator_or_call"]

T = TypeVar("T")
_MISSING = object()


class UnknownNameError(ValueError, KeyError):
    """An unknown registry name: a ``ValueError`` (the CLI prints it as one line) that is also
    the ``KeyError`` mapping access promises."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Registry(Mapping):
    """Named objects of one ``kind`` (e.g. ``'model'``, ``'codec'``), with metadata per name.

    Args:
        kind: the word used in messages (``unknown {kind} 'x'; choose from ...``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = str(kind)
        self._items: dict[str, Any] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    # -- registration -------------------------------------------------------------------
    def register(self, name: str, obj: Any = _MISSING, **meta: Any) -> Any:
        """Add ``obj`` under ``name`` with ``meta``; without ``obj``, a decorator that does.

        Returns ``obj`` (so it decorates classes and functions unchanged). Registering a
        taken name raises a one-line ``ValueError`` naming the kind and the name, unless it
        is the very same object again (a repeated import-time registration is harmless).
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} registry: a name must be a non-empty string, got {name!r}")
        if obj is _MISSING:
            return lambda target: self.register(name, target, **meta)
        held = self._items.get(name, _MISSING)
        if held is not _MISSING and held is not obj:
            raise ValueError(f"{self.kind} {name!r} is already registered "
                             f"({getattr(held, '__name__', type(held).__name__)})")
        self._items[name] = obj
        self._meta[name] = dict(meta)
        return obj

    # -- look-up ------------------------------------------------------------------------
    def get(self, name: str, default: Any = _MISSING) -> Any:
        """The object under ``name``; ``default`` when given and the name is unknown, else
        :class:`UnknownNameError` naming the choices and the nearest match."""
        if name in self._items:
            return self._items[name]
        if default is not _MISSING:
            return default
        raise UnknownNameError(self.unknown_message(name))

    def unknown_message(self, name: Any) -> str:
        """``unknown {kind} {name!r}; choose from a, b, c (nearest: 'x')`` -- one line."""
        message = f"unknown {self.kind} {name!r}; choose from {', '.join(self.names()) or '(none registered)'}"
        near = difflib.get_close_matches(str(name), self.names(), n=1, cutoff=0.6)
        return message + (f" (nearest: {near[0]!r})" if near else "")

    def meta(self, name: str) -> dict[str, Any]:
        """A deep copy of the metadata registered with ``name`` (callers may change it)."""
        self.get(name)
        return copy.deepcopy(self._meta[name])

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._items)

    def choices(self) -> list[str]:
        """The names, sorted: what ``argparse``'s ``choices=`` takes."""
        return self.names()

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted names matching a shell-style ``pattern`` (``fnmatch``, case-sensitive)."""
        return sorted(n for n in self._items if fnmatch.fnmatchcase(n, pattern))

    def copy(self) -> "Registry":
        """A shallow copy (same objects, copied metadata): a scratch table for tests."""
        out = Registry(self.kind)
        out._items = dict(self._items)
        out._meta = copy.deepcopy(self._meta)
        return out

    # -- the mapping protocol (old dict users) -------------------------------------------
    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __setitem__(self, name: str, obj: Any) -> None:
        """Explicit override (tests, monkeypatch): replaces without the duplicate check."""
        self._items[name] = obj
        self._meta.setdefault(name, {})

    def __delitem__(self, name: str) -> None:
        if name not in self._items:
            raise UnknownNameError(self.unknown_message(name))
        del self._items[name]
        self._meta.pop(name, None)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


def decorator_or_call(register: Callable[[str, Any], T], name: Any, obj: Any) -> Any:
    """The three spellings of a ``register_*`` function on one ``register(name, obj)``:
    ``register_x('name', obj)``, ``@register_x('name')`` and bare ``@register_x`` (the
    object's ``__name__``)."""
    if callable(name) and obj is None:
        return register(name.__name__, name)
    if obj is not None:
        return register(str(name), obj)
    return lambda target: register(str(name) if name else target.__name__, target)
