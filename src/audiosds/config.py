"""Dataclass configs from plain dicts (YAML) and back, with mistyped keys as errors."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, TypeVar

T = TypeVar("T")


def is_int(value: object) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class ConfigError(ValueError):
    """An unknown option or an invalid value in a config mapping."""


def from_dict(cls: type[T], values: dict[str, Any] | None, what: str) -> T:
    """Build dataclass ``cls`` from ``values``; an unknown key is a ValueError naming it.

    Tuples in the dataclass may arrive as YAML lists and are converted back.
    """
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{what}: expected a mapping of options, got {type(values).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"{what}: unknown option(s) {unknown}; expected some of {sorted(names)}")
    values = dict(values)
    for key, value in list(values.items()):
        default = names[key].default
        if isinstance(default, tuple) and isinstance(value, list):
            values[key] = tuple(value)
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{what}: {err}") from err


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as a YAML-safe dict (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(obj).items()}  # type: ignore[call-overload]
