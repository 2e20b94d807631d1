"""YAML documents whose errors point at the file and line (pure: PyYAML only).

Every definition tianping reads from YAML (experiments, races, scenarios, refund policies,
governance rules) goes through :func:`read`, so a syntax error is one line naming
``FILE:LINE:COLUMN``, and through :func:`where` / :func:`unknown_key`, so a mistyped key is
reported as itself, at its line, with the key that was probably meant.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from tianping.errors import InvalidInput


class StrictLoader(yaml.SafeLoader):
    """Safe YAML that rejects duplicate keys instead of keeping the last one."""

    def construct_mapping(self, node, deep=False):
        """The mapping; a key given twice is a ``ConstructorError`` at its second place."""
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read(text: str, *, source: str, strict: bool = False) -> Any:
    """The document in ``text``.

    Raises:
        InvalidInput: not YAML: ``source:LINE:COLUMN: what is wrong``, on one line.

    >>> read("a: [1,\\n b: 2", source="x.yaml")
    Traceback (most recent call last):
    ...
    tianping.errors.InvalidInput: x.yaml:2:6: not valid YAML: expected ',' or ']', but got '<stream end>' (in the flow sequence started at line 1)
    >>> read("day: 2024-02-30", source="x.yaml")
    Traceback (most recent call last):
    ...
    tianping.errors.InvalidInput: x.yaml: not valid YAML: day is out of range for month (a date that is not in the calendar?)
    """
    try:
        return yaml.load(text, Loader=StrictLoader if strict else yaml.SafeLoader)  # noqa: S506 - SafeLoader or its subclass
    except yaml.YAMLError as exc:
        raise InvalidInput(describe_error(exc, source), field=source) from None
    except ValueError as exc:  # a value YAML reads but Python refuses: 2024-13-05, 2024-02-30
        raise InvalidInput(
            f"{source}: not valid YAML: {exc} (a date that is not in the calendar?)", field=source
        ) from None


def describe_error(exc: yaml.YAMLError, source: str) -> str:
    """A YAML error as one line: ``source:LINE:COLUMN: not valid YAML: problem (context)``."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    at = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
    extra = ""
    if context and context_mark is not None and (mark is None or context_mark.line != mark.line):
        extra = f" ({context.replace('while parsing a', 'in the')} started at line {context_mark.line + 1})"
    elif context:
        extra = f" ({context})"
    return f"{at}: not valid YAML: {problem}{extra}"


def line_of(text: str | None, path: Sequence[str | int]) -> int | None:
    """The 1-based line where the key (or item) at ``path`` is written, if it can be found.

    >>> line_of("a: 1\\nb:\\n  c: 2\\n", ["b", "c"])
    3
    >>> line_of("items:\\n  - x: 1\\n  - y: 2\\n", ["items", 1, "y"])
    3
    """
    if not text:
        return None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if found is None:
                return line
            line, node = found[0].start_mark.line + 1, found[1]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def where(source: str, text: str | None, path: Sequence[str | int]) -> str:
    """``source:LINE`` for the key at ``path`` (just ``source`` when the line is unknown)."""
    line = line_of(text, path)
    return source if line is None else f"{source}:{line}"


def suggest(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or ``""``.

    >>> suggest("primery_metric", ["primary_metric", "secondary_metrics"])
    " (did you mean 'primary_metric'?)"
    """
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key(
    source: str, text: str | None, path: Sequence[str | int], known: Iterable[str]
) -> InvalidInput:
    """The error for a key nobody reads: where it is, and the key probably meant."""
    known = list(known)
    name = str(path[-1])
    dotted = ".".join(str(p) for p in path)
    return InvalidInput(
        f"{where(source, text, path)}: unknown key {dotted!r}{hint(name, known)}",
        field=dotted,
        code=UNKNOWN_KEY,
    )


#: The code of an error about a key nobody reads (see :func:`with_line`).
UNKNOWN_KEY = "unknown_key"


def hint(name: str, known: Iterable[str]) -> str:
    """The key probably meant, else the keys allowed: for messages about an unknown key."""
    known = sorted(str(k) for k in known)
    return suggest(name, known) or (f"; known keys: {', '.join(known)}" if known else "")


def key_line(text: str | None, key: str) -> int | None:
    """The 1-based line where ``key`` is first written as a mapping key in ``text``.

    >>> key_line("a: 1\\nitems:\\n  - colour: red\\n", "colour")
    3
    """
    if not text:
        return None
    pattern = rf"^[ \t]*(?:-[ \t]+)*['\"]?{re.escape(str(key))}['\"]?[ \t]*:"
    found = re.search(pattern, text, re.MULTILINE)
    return None if found is None else text.count("\n", 0, found.start()) + 1


def with_line(exc: InvalidInput, source: str, text: str | None) -> InvalidInput:
    """An unknown-key error whose message starts with ``source`` made to start with
    ``source:LINE`` (the line of the key, its ``field``); other errors as they are."""
    line = key_line(text, str(exc.field).rsplit(".", 1)[-1]) if exc.code == UNKNOWN_KEY else None
    if line is None or not exc.message.startswith(source):
        return exc
    message = f"{source}:{line}{exc.message[len(source) :]}"
    return InvalidInput(message, field=exc.field, code=exc.code)


def validation_error(
    errors: Sequence[dict[str, Any]], *, model: Any, source: str, text: str | None
) -> InvalidInput:
    """One error for a definition a Pydantic ``model`` refused (its ``errors()`` list).

    A key the model does not know comes first, with the key probably meant: a mistyped
    ``primery_metric`` is the mistake, not the ``primary_metric`` it leaves missing. Every
    message starts with ``source:LINE`` when the line can be found in ``text``.
    """
    extra = [e for e in errors if e.get("type") == "extra_forbidden"]
    if extra:
        loc = list(extra[0]["loc"])
        return unknown_key(source, text, loc, _keys_at(model, loc[:-1]))
    first = errors[0]
    loc = [p for p in first["loc"] if not isinstance(p, str) or not p.startswith("function-")]
    dotted = ".".join(str(p) for p in loc)
    message = str(first["msg"]).removeprefix("Value error, ")
    if first.get("type") == "missing":
        at = where(source, text, loc[:-1]) if len(loc) > 1 else source
        return InvalidInput(f"{at}: missing key {dotted!r}", field=dotted or source)
    at = where(source, text, loc)
    return InvalidInput(f"{at}: {dotted + ': ' if dotted else ''}{message}", field=dotted or source)


def _keys_at(model: Any, loc: Sequence[str | int]) -> list[str]:
    """The keys a Pydantic model (or the nested model at ``loc``) accepts."""
    import typing

    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return []
        annotation = fields[part].annotation
        candidates = [annotation, *typing.get_args(annotation)]
        model = next((c for c in candidates if hasattr(c, "model_fields")), None)
        if model is None:
            return []
    return [f.alias or name for name, f in getattr(model, "model_fields", {}).items()]
