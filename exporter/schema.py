"""A declarative schema for YAML mappings: a section is a table of typed keys with defaults.

`validate` checks YAML data against a section and reports every problem under its YAML path
(`models[0].window.rows: expected an integer >= 1, got 0`): unknown keys (with a suggestion),
missing required keys, values of the wrong type or range. It returns a `Node` holding the
validated values, defaults filled in, that plain code reads to apply the rules relating several
keys. `markdown_table` renders the same table as the README's configuration reference.

Defaults are written as they would be in YAML (`"5s"`, `{}`) and converted like a given value;
a key set to `null` counts as absent; an invalid value is reported and replaced by its default.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar

from exporter.durations import parse_duration

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")
MISSING = "required key is missing"
DURATION_HINT = "a Prometheus duration such as 500ms, 30s, 5m or 1h30m"


class InvalidValueError(Exception):
    """A value does not fit its key; the message says what was expected and what was got."""


class Kind:
    """What a key's value must be: `doc` for the reference; `convert` checks a given value."""

    def __init__(self, doc: str) -> None:
        self.doc = doc

    def convert(self, value: object) -> object:
        """The value to use for `value` as given in YAML; raise InvalidValueError if it is wrong."""
        return value


class CrossField(Kind):
    """A value passed through as given: a rule relating it to other keys checks it in code."""


class Text(Kind):
    """A non-empty string."""

    def __init__(self) -> None:
        super().__init__("string")

    def convert(self, value: object) -> object:
        """`value` itself if it is a non-empty string."""
        if not isinstance(value, str) or not value:
            raise InvalidValueError(f"expected a non-empty string, got {show(value)}")
        return value


class Choice(Kind):
    """One of a few strings."""

    def __init__(self, options: tuple[str, ...]) -> None:
        super().__init__(alternatives(options, quote="`{}`"))
        self.options = options

    def convert(self, value: object) -> object:
        """`value` itself if it is one of the options."""
        if value not in self.options:
            raise InvalidValueError(f"expected {alternatives(self.options)}, got {show(value)}")
        return str(value)


class Integer(Kind):
    """An integer (not a boolean) of at least `minimum`."""

    def __init__(self, minimum: int) -> None:
        super().__init__(f"integer >= {minimum}")
        self.minimum = minimum

    def convert(self, value: object) -> object:
        """`value` itself if it is an integer >= minimum."""
        if isinstance(value, bool) or not isinstance(value, int) or value < self.minimum:
            raise InvalidValueError(f"expected an integer >= {self.minimum}, got {show(value)}")
        return value


class Number(Kind):
    """A finite number (not a boolean) that `accept` accepts, described as `a {doc}`."""

    def __init__(self, doc: str, accept: Callable[[float], bool] = math.isfinite) -> None:
        super().__init__(doc)
        self.accept = accept

    def convert(self, value: object) -> object:
        """`value` as a float if it is a finite number that `accept` accepts."""
        if not is_number(value) or not self.accept(float(value)):
            raise InvalidValueError(f"expected a {self.doc}, got {show(value)}")
        return float(value)


class Duration(Kind):
    """A Prometheus duration greater than zero, converted to seconds."""

    def __init__(self) -> None:
        super().__init__("duration > 0")

    def convert(self, value: object) -> object:
        """The duration in seconds."""
        try:
            if not isinstance(value, str):
                raise TypeError
            seconds = parse_duration(value)
        except (TypeError, ValueError):
            raise InvalidValueError(f"expected {DURATION_HINT}, got {show(value)}") from None
        if seconds <= 0:
            raise InvalidValueError(f"expected a duration > 0, got {show(value)}")
        return seconds


class Mapping(Kind):
    """A nested section; `into` is the frozen dataclass that `Node.build` makes of it."""

    def __init__(self, keys: tuple[Key, ...], into: type | None = None) -> None:
        super().__init__("mapping")
        self.keys = keys
        self.into = into


class ListOf(Kind):
    """A non-empty list of sections."""

    def __init__(self, keys: tuple[Key, ...]) -> None:
        super().__init__("non-empty list of mappings")
        self.keys = keys


@dataclass(frozen=True)
class Key:
    """One key of a section: its type, its default (in YAML form) and what it means."""

    name: str
    kind: Kind
    doc: str
    default: object = None
    required: bool = False
    check: Callable[[Any], str | None] | None = None  # a further problem with a well-typed value
    shown_default: str | None = None  # the reference's default column, when not `default`


class Node:
    """A validated YAML mapping: the values by key (defaults filled in) and where it is."""

    def __init__(self, path: str, raw: dict[Any, Any], problems: list[str], into: type | None):
        self.path = path
        self.raw = raw
        self.problems = problems
        self.into = into
        self.values: dict[str, Any] = {}
        self.invalid: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def given(self, key: str) -> bool:
        """Whether the YAML sets `key` to something other than null, valid or not."""
        return self.raw.get(key) is not None

    def at(self, key: str) -> str:
        """The YAML path of `key` in this mapping."""
        return f"{self.path}.{key}" if self.path else key

    def report(self, key: str | None, message: str) -> None:
        """Record a problem with `key` (with the mapping itself when None)."""
        report(self.problems, self.at(key) if key else self.path, message)

    def build(self, cls: type[T], **overrides: object) -> T:
        """The dataclass `cls` of the values named like its fields, nested sections built too."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {
            name: _built(value)
            for name, value in self.values.items()
            if name in names and name not in overrides
        }
        return cls(**kwargs, **overrides)


def _built(value: object) -> object:
    if isinstance(value, list) and value and isinstance(value[0], Node):
        msg = f"{value[0].path}: a list of sections must be built by hand"
        raise TypeError(msg)
    if not isinstance(value, Node):
        return value
    if value.into is None:
        msg = f"{value.path}: a section without `into` must be built by hand"
        raise TypeError(msg)
    return value.build(value.into)


def report(problems: list[str], path: str, message: str) -> None:
    """Record a problem under its YAML path."""
    problems.append(f"{path or '(top level)'}: {message}")


def validate(
    keys: tuple[Key, ...], data: object, path: str, problems: list[str], into: type | None = None
) -> Node | None:
    """Check a mapping against its keys, reporting every problem; None if it is not a mapping."""
    try:
        return _section(keys, data, path, problems, into)
    except InvalidValueError as exc:
        report(problems, path, str(exc))
        return None


def _section(
    keys: tuple[Key, ...], data: object, path: str, problems: list[str], into: type | None
) -> Node:
    if not isinstance(data, dict):
        listed = f" with keys {', '.join(k.name for k in keys)}" if len(keys) <= 5 else ""
        raise InvalidValueError(f"expected a mapping{listed}, got {show(data)}")
    node = Node(path, data, problems, into)
    names = [key.name for key in keys]
    for name in data:
        if name not in names:
            close = difflib.get_close_matches(str(name), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            node.report(str(name), f"unknown key{hint}")
    for key in keys:
        value = data.get(key.name)
        if value is None and key.required:
            node.report(key.name, MISSING)
        converted = None if value is None else _convert(node, key, value)
        if converted is None and key.default is not None:  # absent, or invalid and reported
            converted = _convert(node, key, key.default)
        node.values[key.name] = converted
    return node


def _convert(node: Node, key: Key, value: object) -> Any:
    """The value converted by its kind, or None after reporting why it does not fit."""
    kind, path = key.kind, node.at(key.name)
    try:
        if isinstance(kind, Mapping):
            return _section(kind.keys, value, path, node.problems, kind.into)
        if isinstance(kind, ListOf):
            if not isinstance(value, list) or not value:
                raise InvalidValueError(f"expected a non-empty list, got {show(value)}")
            items = (validate(kind.keys, item, f"{path}[{index}]", node.problems)
                     for index, item in enumerate(value))
            return [item for item in items if item is not None]
        converted = kind.convert(value)
        problem = key.check(converted) if key.check else None
        if problem:
            raise InvalidValueError(problem)
    except InvalidValueError as exc:
        node.report(key.name, str(exc))
        node.invalid.add(key.name)
        return None
    return converted


# --- messages --------------------------------------------------------------------------------


def show(value: object) -> str:
    """Describe a YAML value the way the user wrote it, for `got ...` in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return repr(value)
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    return f"a {type(value).__name__}"


def alternatives(options: tuple[str, ...], quote: str = "{!r}") -> str:
    """`'a' or 'b'`, or `one of 'a', 'b', 'c'`."""
    quoted = [quote.format(option) for option in options]
    if len(quoted) == 2:
        return f"{quoted[0]} or {quoted[1]}"
    return "one of " + ", ".join(quoted)


def is_number(value: object) -> TypeGuard[int | float]:
    """A finite int or float, not a boolean."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- reference -------------------------------------------------------------------------------


def markdown_table(keys: tuple[Key, ...]) -> str:
    """The keys of a section and of its subsections as a Markdown table, one row per key."""
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    lines += [
        f"| `{path}` | {key.kind.doc} | {_shown_default(key)} | {key.doc} |"
        for path, key in _walk(keys, "")
    ]
    return "\n".join(lines) + "\n"


def _walk(keys: tuple[Key, ...], prefix: str) -> Iterator[tuple[str, Key]]:
    for key in keys:
        path = prefix + key.name
        yield path, key
        if isinstance(key.kind, Mapping):
            yield from _walk(key.kind.keys, f"{path}.")
        elif isinstance(key.kind, ListOf):
            yield from _walk(key.kind.keys, f"{path}[].")


def _shown_default(key: Key) -> str:
    if key.shown_default is not None:
        return key.shown_default
    if key.required:
        return "required"
    if key.default is None:
        return "none"
    if isinstance(key.kind, Mapping):
        return "its keys' defaults"
    return f"`{key.default}`"


def replace_between(text: str, start: str, end: str, content: str) -> str:
    """`text` with what lies between the lines `start` and `end` replaced by `content`."""
    head, found, rest = text.partition(start + "\n")
    _, found_end, tail = rest.partition(end)
    if not found or not found_end:
        msg = f"markers {start!r} and {end!r} not found"
        raise ValueError(msg)
    return f"{head}{start}\n{content}{end}{tail}"
