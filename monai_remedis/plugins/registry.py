"""Name -> factory registries filled by plugins."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RegistryEntry:
    """One registered factory and where it came from."""

    name: str
    factory: Callable[..., Any]
    source: str
    description: str = ""


class Registry:
    """A registry of named factories (backbones, SSL strategies, ...).

    Lookups of unknown names raise a ``KeyError`` that lists every known name, so that a typo in a
    bundle config is fixed from the error message alone.

    Args:
        kind: what the registry holds, used in messages ("backbone", "strategy").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, RegistryEntry] = {}
        self._current_source = "<direct>"

    def register(
        self, name: str, factory: Callable[..., Any], *, description: str = "", overwrite: bool = False
    ) -> Callable[..., Any]:
        """Register ``factory`` under ``name``; returns the factory so it can be used as a decorator body.

        Raises:
            ValueError: when ``name`` is already registered by another factory and ``overwrite`` is False.
        """
        if not callable(factory):
            raise TypeError(f"{self.kind} '{name}' from {self._current_source}: factory must be callable.")
        existing = self._entries.get(name)
        if existing is not None and existing.factory is not factory and not overwrite:
            raise ValueError(
                f"{self.kind} '{name}' from {self._current_source} is already registered by {existing.source}."
            )
        doc = description or (factory.__doc__ or "").strip().splitlines()[0:1]
        if isinstance(doc, list):
            doc = doc[0] if doc else ""
        self._entries[name] = RegistryEntry(name, factory, self._current_source, doc)
        return factory

    def get(self, name: str) -> RegistryEntry:
        """Return the entry registered under ``name``.

        Raises:
            KeyError: naming every known entry when ``name`` is unknown.
        """
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise KeyError(f"Unknown {self.kind} '{name}'. Known {self.kind} names: {known}.") from None

    def create(self, name: str, **kwargs: Any) -> Any:
        """Build the object registered under ``name`` with ``kwargs``."""
        return self.get(name).factory(**kwargs)

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching a shell-style wildcard ``pattern``."""
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def set_source(self, source: str) -> None:
        """Set the origin recorded for entries registered from now on (used by the plugin manager)."""
        self._current_source = source

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[RegistryEntry]:
        return iter(self._entries[n] for n in sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)
