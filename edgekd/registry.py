"""One registry class for every kind of thing the user names: tasks, distances, projections, data
formats, export formats and precisions, teacher kinds, bench backends.

An entry is any object, or a ``"package.module:attribute"`` string imported on first :meth:`get`
(:mod:`edgekd.lazy`), so listing names imports neither torch nor numpy: the CLI's ``--help`` and the
config check read :meth:`Registry.names`, and ``edgekd bench`` stays torch-free.  Names keep their
registration order (detection order for data formats, dispatch order for teacher kinds).

Every registry refuses an unknown name in the same one line::

    unknown <kind> 'x'; use one of: a, b, c; did you mean b?

(the close match, from :mod:`difflib`, only where the list is longer than three names: a short
list shown whole is its own hint).  Torch-free and numpy-free: this module sits on the lowest floor
with ``errors`` and ``fileio`` (docs/architecture.md).
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Iterable

from .errors import EdgekdError
from .lazy import resolve

#: no did-you-mean when the registry has this many names or fewer: the list is read at a glance
SHORT_LIST = 3


def one_of(names: Iterable[str]) -> str:
    """``one of: a, b, c``: how an error lists the valid names (the default ``choices`` text)."""
    return "one of: " + ", ".join(names)


def suggest(name: str, names: list[str], n: int = 3) -> list[str]:
    """Close names: those that extend or truncate ``name`` first (``mobilenetv2_10`` -> ``mobilenetv2_100``), then difflib's."""
    stem = [c for c in names if c != name and (c.startswith(name) or name.startswith(c))]
    stem.sort(key=lambda c: (abs(len(c) - len(name)), c))
    close = difflib.get_close_matches(name, names, n=n, cutoff=0.6)
    return list(dict.fromkeys(stem[:n] + close))[:n]


class Registry:
    """Named entries of one kind, with aliases, in registration order.

    ``kind`` is the noun an error uses (``"task"``, ``"--data-format"``); ``choices(names)`` how it
    lists the valid names after ``use`` (default :func:`one_of`); ``loader``, if given, is called
    once before the first look-up, to import modules that register their own entries (the bench
    backends: one file each, registered in the file itself).
    """

    def __init__(self, kind: str, choices: Callable[[list[str]], str] = one_of, loader: Callable[[], None] | None = None):
        self.kind, self.choices, self._loader = kind, choices, loader
        self.entries: dict[str, Any] = {}  # name -> entry (an object, or "module:attr" until first get)
        self.aliases: dict[str, str] = {}  # other spelling -> name

    def register(self, name: str, entry: Any, aliases: Iterable[str] = (), before: str | None = None) -> Any:
        """Add (or replace) ``name``; ``before`` puts it ahead of an existing entry (e.g. a catch-all)."""
        if before is None or before not in self.entries:
            self.entries[name] = entry
        else:
            items = [(k, v) for k, v in self.entries.items() if k != name]
            at = next(i for i, (k, _) in enumerate(items) if k == before)
            items.insert(at, (name, entry))
            self.entries.clear()  # in place: callers may hold this dict
            self.entries.update(items)
        for alias in aliases:
            self.aliases[alias] = name
        return entry

    def _load(self) -> None:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            loader()

    def names(self, aliases: bool = False) -> list[str]:
        """The registered names in registration order; with ``aliases``, their other spellings after them."""
        self._load()
        out = list(self.entries)
        if aliases:
            out += [a for a, n in self.aliases.items() if a not in out and n in self.entries]
        return out

    def canonical(self, name: str) -> str:
        """An alias -> the name it stands for (any other string is returned as it is)."""
        self._load()
        return self.aliases.get(name, name)

    def __contains__(self, name: str) -> bool:
        return self.canonical(name) in self.entries

    def get(self, name: str, kind: str | None = None) -> Any:
        """The entry of ``name`` or one of its aliases, imported on first use; one line for an unknown name."""
        key = self.canonical(name)
        if key not in self.entries:
            raise self.unknown(name, kind)
        entry = self.entries[key]
        if isinstance(entry, str):
            entry = self.entries[key] = resolve(entry)
        return entry

    def values(self) -> list[Any]:
        """Every entry, in registration order (as registered: lazy paths are not imported)."""
        self._load()
        return list(self.entries.values())

    def unknown(self, name: str, kind: str | None = None) -> EdgekdError:
        """The one-line error for a name this registry does not hold (``kind`` overrides the noun)."""
        names = self.names()
        message = f"unknown {kind or self.kind} {name!r}; use {self.choices(names)}"
        if len(names) > SHORT_LIST:
            close = difflib.get_close_matches(str(name), self.names(aliases=True), n=1, cutoff=0.6)
            if close:
                message += f"; did you mean {close[0]}?"
        return EdgekdError(message)

    def copy(self) -> "Registry":
        """An independent copy (a test registers into it and puts the original back)."""
        self._load()
        other = Registry(self.kind, self.choices)
        other.entries, other.aliases = dict(self.entries), dict(self.aliases)
        return other
