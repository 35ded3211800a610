"""Read-only views of a router's runtime parts (``router.config``, ``router.cooldown``...)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

P = TypeVar("P")


class Part(Generic[P]):
    """A read-only view of one part of the router's runtime: reassigning it from
    outside would split state between the router and its engine."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Part[P]: ...
    @overload
    def __get__(self, obj: Any, owner: type) -> P: ...
    def __get__(self, obj: Any | None, owner: type) -> Part[P] | P:
        if obj is None:
            return self
        value: P = getattr(obj.runtime, self.name)
        return value

    def __set__(self, obj: Any, value: P) -> None:
        raise AttributeError(f"Router.{self.name} is read-only; build a new Router to change it")
