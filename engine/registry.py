"""Parts chosen by name (backbones, priors): entries that name their implementation as "module:Class",
imported only when used, so a registry can be read without torch."""

from __future__ import annotations

import importlib
from typing import Any, Generic, Protocol, TypeVar

from .errors import SketchAnimatorError


class Named(Protocol):
    name: str
    implementation: str  # "module:Class", the module relative to the registry's package


E = TypeVar("E", bound=Named)


class UnknownPartError(SketchAnimatorError):
    """A name that is not registered."""


class Registry(dict, Generic[E]):
    """Entries by name; `load` imports an entry's implementation class."""

    def __init__(self, what: str, package: str) -> None:
        super().__init__()
        self.what, self.package = what, package

    def register(self, entry: E) -> E:
        self[entry.name] = entry
        return entry

    def find(self, name: str) -> E:
        try:
            return self[name]
        except KeyError:
            raise UnknownPartError(f"unknown {self.what} {name!r}: use one of {', '.join(self)}") from None

    def load(self, entry: E) -> Any:
        module, _, cls = entry.implementation.partition(":")
        return getattr(importlib.import_module(module, self.package), cls)
