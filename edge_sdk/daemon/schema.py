"""A small typed-schema reader: plain dicts (from TOML or YAML) into frozen dataclasses.

Each dataclass field is declared with `setting(...)`, which carries its
description, unit, allowed choices and bounds. `build(cls, data, path)`
checks types, choices and bounds, rejects unknown keys and raises
`DaemonConfigError` naming the full key (`sources[1].fps_limit`) and the
value. `describe(cls)` lists every key for the documentation.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterator
from dataclasses import MISSING, dataclass, field
from typing import Any, Union

from edge_sdk.daemon.errors import DaemonConfigError

_NO_DEFAULT = object()


def setting(
    default: Any = _NO_DEFAULT,
    description: str = "",
    *,
    unit: str = "",
    choices: tuple[Any, ...] = (),
    minimum: float | None = None,
    maximum: float | None = None,
    factory: Any = None,
) -> Any:
    """Declare a config field with its documentation and checks; no default makes the key required."""
    metadata = {"description": description, "unit": unit, "choices": choices, "minimum": minimum, "maximum": maximum}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    if default is _NO_DEFAULT:
        return field(metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True, slots=True)
class KeyDoc:
    """One documented key: dotted name, type, default, unit, description."""

    key: str
    type_name: str
    default: str
    unit: str
    description: str


def _fail(path: str, value: Any, rule: str) -> DaemonConfigError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return DaemonConfigError(f"{path} = {shown} is invalid: {rule}", key=path, value=value)


def _is_optional(hint: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) != len(typing.get_args(hint)):
            return True, args[0] if len(args) == 1 else Union[tuple(args)]  # noqa: UP007
    return False, hint


def _convert(hint: Any, value: Any, path: str) -> Any:
    optional, hint = _is_optional(hint)
    if value is None:
        if optional:
            return None
        raise _fail(path, value, "a value is required here: remove the key to use the default or give a value")

    origin = typing.get_origin(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise _fail(path, value, f"expected a table of keys ({', '.join(f.name for f in dataclasses.fields(hint))})")
        return build(hint, value, path)
    if origin in (list, tuple):
        (item_hint, *_) = typing.get_args(hint)
        if not isinstance(value, list):
            raise _fail(path, value, "expected a list")
        return tuple(_convert(item_hint, item, f"{path}[{i}]") for i, item in enumerate(value))
    if origin is dict:
        _, value_hint = typing.get_args(hint)
        if not isinstance(value, dict):
            raise _fail(path, value, "expected a table")
        if value_hint is Any:
            return dict(value)
        return {str(k): _convert(value_hint, v, f"{path}.{k}") for k, v in value.items()}
    if origin in (Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _convert(option, value, path)
            except DaemonConfigError:
                continue
        raise _fail(path, value, f"expected one of the types {hint}")
    return _convert_scalar(hint, value, path)


def _convert_scalar(hint: Any, value: Any, path: str) -> Any:
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise _fail(path, value, "expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, value, "expected a whole number")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(path, value, "expected a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise _fail(path, value, "expected a string")
        return value
    raise TypeError(f"schema type {hint!r} at {path} is not supported by the config reader")


def _check_bounds(meta: Any, value: Any, path: str) -> None:
    choices = meta.get("choices") or ()
    values = value if isinstance(value, tuple) else (value,)
    for item in values:
        if choices and item is not None and item not in choices:
            hint = difflib.get_close_matches(str(item), [str(c) for c in choices], n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise _fail(path, value, f"expected one of {', '.join(repr(c) for c in choices)}{suggestion}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = meta.get("minimum"), meta.get("maximum")
        if low is not None and value < low:
            raise _fail(path, value, f"must be at least {low}")
        if high is not None and value > high:
            raise _fail(path, value, f"must be at most {high}")


def _closest_key(key: str, known: list[str]) -> str | None:
    """Return the known key that differs from `key` only in case, else the most similar one, else None."""
    for name in known:
        if name.lower() == key.lower():
            return name
    close = difflib.get_close_matches(key.lower(), known, n=1)
    return close[0] if close else None


def _check_quoted(hint: Any, meta: Any, value: Any, path: str) -> None:
    """Reject a number given for a string key with choices, such as protocol = 5, and list the strings to write."""
    _, inner = _is_optional(hint)
    choices = meta.get("choices") or ()
    if inner is not str or isinstance(value, bool) or not isinstance(value, (int, float)) or not choices:
        return
    written = " or ".join(f'"{choice}"' for choice in choices)
    raise _fail(path, value, f"expected a string: write {written} (a string, in quotes)")


def build(cls: type, data: dict[str, Any], path: str = "") -> Any:
    """Build dataclass `cls` from `data`, checking every key; `path` prefixes the key names in errors."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{path}." if path else ""

    for key in data:
        if key not in fields:
            close = _closest_key(str(key), list(fields))
            suggestion = f": did you mean {close!r}?" if close else f": valid keys are {', '.join(fields)}"
            raise DaemonConfigError(f"{prefix}{key} is not a known key{suggestion}", key=f"{prefix}{key}", value=data[key])

    kwargs: dict[str, Any] = {}
    for name, spec in fields.items():
        key_path = f"{prefix}{name}"
        if name not in data:
            if spec.default is MISSING and spec.default_factory is MISSING:
                raise DaemonConfigError(f"{key_path} is missing: {spec.metadata.get('description', 'this key is required')}", key=key_path, value=None)
            continue
        _check_quoted(hints[name], spec.metadata, data[name], key_path)
        value = _convert(hints[name], data[name], key_path)
        _check_bounds(spec.metadata, value, key_path)
        kwargs[name] = value

    instance = cls(**kwargs)
    validate = getattr(instance, "validate", None)
    if validate is not None:
        validate(path)
    return instance


def _type_name(hint: Any) -> str:
    optional, hint = _is_optional(hint)
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        name = "table"
    elif origin in (list, tuple):
        name = f"list of {_type_name(typing.get_args(hint)[0])}"
    elif origin is dict:
        name = "table"
    else:
        name = {bool: "bool", int: "int", float: "float", str: "string"}.get(hint, str(hint))
    return f"{name} (optional)" if optional else name


def _literal(value: Any) -> str:
    """Write a default the way a TOML file would."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{}" if not value else repr(value)
    if isinstance(value, int):
        return f"{value:_}" if abs(value) >= 10_000 else str(value)
    return repr(value)


def describe(cls: type, path: str = "") -> Iterator[KeyDoc]:
    """Yield a KeyDoc for every key of `cls` and its nested tables, in declaration order."""
    hints = typing.get_type_hints(cls)
    for spec in dataclasses.fields(cls):
        key = f"{path}.{spec.name}" if path else spec.name
        hint = hints[spec.name]
        _, inner = _is_optional(hint)
        origin = typing.get_origin(inner)
        meta = spec.metadata
        if spec.default is not MISSING:
            default = _literal(spec.default)
        elif spec.default_factory is not MISSING:
            produced = spec.default_factory()
            default = "see below" if dataclasses.is_dataclass(produced) else _literal(produced)
        else:
            default = "required"
        description = meta.get("description", "")
        if meta.get("choices"):
            description += f" One of {', '.join(repr(c) for c in meta['choices'])}."
        yield KeyDoc(key, _type_name(hint), default, meta.get("unit", ""), description)

        if isinstance(inner, type) and dataclasses.is_dataclass(inner):
            yield from describe(inner, key)
        elif origin in (list, tuple) and dataclasses.is_dataclass(typing.get_args(inner)[0]):
            yield from describe(typing.get_args(inner)[0], f"{key}[]")
        elif origin is dict and dataclasses.is_dataclass(typing.get_args(inner)[1]):
            yield from describe(typing.get_args(inner)[1], f"{key}.<name>")
