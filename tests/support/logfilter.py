"""An evaluator of the subset of the Cloud Logging query language that the Terraform filters use.

It checks, offline, which LogEntries a log sink (or a log-based metric) would select. Supported:

- field paths of dot-separated names, where a name with special characters is double-quoted
  (``protoPayload."@type"``, ``labels."compute.googleapis.com/resource_name"``);
- comparisons ``FIELD OP VALUE`` with ``=``, ``!=``, ``:`` (has: case-insensitive substring), ``=~`` and
  ``!~`` (RE2 regular expressions, case-sensitive, unanchored; ``$`` is the end of the text, as in RE2),
  ``<``, ``<=``, ``>``, ``>=``; ``FIELD:*`` (exists);
- values: quoted strings, bare words (``true``, ``ERROR``, ``0``) and value lists ``FIELD=("a" OR "b")``;
- ``AND``, ``OR``, ``NOT`` and juxtaposition (implicit AND), with the language's precedence: NOT binds
  tightest, then OR, then AND (``a OR b AND c`` is ``(a OR b) AND c``);
- string equality is case-insensitive; ``true``/``false`` match JSON booleans only (LogEntry fields are typed,
  so ``operation.first`` is never the string "true"); numbers compare as numbers; ``severity`` compares by level, and an
  entry without one has DEFAULT;
- a comparison on a missing field is false (so ``NOT field>0`` holds when the field is absent).

Anything else (global text restrictions, functions, ``-`` negation) raises FilterSyntaxError, so a filter
cannot silently rely on something this evaluator does not model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FilterSyntaxError", "LogFilter", "compile_filter"]

SEVERITIES = {
    "DEFAULT": 0,
    "DEBUG": 100,
    "INFO": 200,
    "NOTICE": 300,
    "WARNING": 400,
    "ERROR": 500,
    "CRITICAL": 600,
    "ALERT": 700,
    "EMERGENCY": 800,
}

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<op>=~|!~|!=|<=|>=|=|<|>|:)
  | (?P<paren>[()])
  | (?P<word>[A-Za-z0-9_.@/*+-]+)
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset({"AND", "OR", "NOT"})
_MISSING = object()


class FilterSyntaxError(ValueError):
    """The filter uses syntax outside the supported subset, or is not well formed."""


@dataclass(frozen=True)
class _Token:
    kind: str  # string, op, paren, word, keyword
    text: str
    position: int


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise FilterSyntaxError(f"unexpected character {text[position]!r} at offset {position}")
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        elif kind == "word" and value in _KEYWORDS:
            kind = "keyword"
        if kind != "space":
            tokens.append(_Token(kind, value, position))
        position = match.end()
    return tokens


Predicate = Callable[[Mapping[str, Any]], bool]
ValueTest = Callable[[Any], bool]


def _lookup(entry: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = entry
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _compare(field: str, op: str, literal: str) -> ValueTest:
    """A test of one field value against one literal."""
    if op in {"=~", "!~"}:
        if re.search(r"\(\?<?[=!]|\\[1-9]", literal):
            raise FilterSyntaxError(f"{literal!r} uses lookaround or a backreference, which RE2 does not support")
        if re.search(r"\(\?[a-zA-Z-]*m", literal):
            raise FilterSyntaxError(f"{literal!r} sets multi-line mode, which this evaluator does not model")
        pattern = re.compile(_python_regex(literal))
        if op == "=~":
            return lambda value: isinstance(value, str) and pattern.search(value) is not None
        return lambda value: isinstance(value, str) and pattern.search(value) is None
    if op == ":":
        needle = literal.lower()
        return lambda value: not isinstance(value, Mapping | list) and needle in _text(value).lower()

    if field == "severity":
        if literal.upper() not in SEVERITIES:
            raise FilterSyntaxError(f"{literal!r} is not a severity")
        wanted = SEVERITIES[literal.upper()]

        def level(value: Any) -> float | None:
            return SEVERITIES.get(str(value).upper()) if value is not _MISSING else SEVERITIES["DEFAULT"]

        return _ordered(op, wanted, level)

    wanted_number = _number(literal)
    if wanted_number is not None and op in {"<", "<=", ">", ">=", "=", "!="}:
        numeric = _ordered(op, wanted_number, _number)
        if op in {"=", "!="}:
            textual = _equal(op, literal)
            return lambda value: numeric(value) if _number(value) is not None else textual(value)
        return numeric
    if literal in {"true", "false"} and op in {"=", "!="}:
        wanted_bool = literal == "true"
        # typed like the LogEntry's bool fields: only a JSON boolean is a boolean
        if op == "=":
            return lambda value: isinstance(value, bool) and value is wanted_bool
        return lambda value: isinstance(value, bool) and value is not wanted_bool
    if op in {"=", "!="}:
        return _equal(op, literal)
    raise FilterSyntaxError(f"operator {op} needs a number or a severity, got {literal!r}")


def _python_regex(re2: str) -> str:
    """``re2`` for Python's re: RE2's ``$`` (not multi-line) matches only at the end of the text, Python's also
    before a final newline, so an unescaped ``$`` outside a character class becomes ``\\Z``."""
    out: list[str] = []
    index = 0
    in_class = False
    while index < len(re2):
        char = re2[index]
        if char == "\\":
            out.append(re2[index : index + 2])
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            out.append(char)
            index += 1
            for literal_start in ("^", "]"):  # "[]a]" and "[^]a]": a "]" first in a class is a member
                if re2.startswith(literal_start, index):
                    out.append(literal_start)
                    index += 1
            continue
        elif char == "$":
            out.append("\\Z")
            index += 1
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _equal(op: str, literal: str) -> ValueTest:
    wanted = literal.lower()
    if op == "=":
        return lambda value: not isinstance(value, Mapping | list) and _text(value).lower() == wanted
    return lambda value: not isinstance(value, Mapping | list) and _text(value).lower() != wanted


def _ordered(op: str, wanted: float, convert: Callable[[Any], float | None]) -> ValueTest:
    checks: dict[str, Callable[[float], bool]] = {
        "<": lambda have: have < wanted,
        "<=": lambda have: have <= wanted,
        ">": lambda have: have > wanted,
        ">=": lambda have: have >= wanted,
        "=": lambda have: have == wanted,
        "!=": lambda have: have != wanted,
    }
    check = checks[op]

    def test(value: Any) -> bool:
        have = convert(value)
        return have is not None and check(have)

    return test


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise FilterSyntaxError("unexpected end of filter")
        self.index += 1
        return token

    def expect(self, kind: str, text: str) -> None:
        token = self.take()
        if token.kind != kind or token.text != text:
            raise FilterSyntaxError(f"expected {text!r} at offset {token.position}, got {token.text!r}")

    def parse(self) -> Predicate:
        predicate = self.conjunction()
        token = self.peek()
        if token is not None:
            raise FilterSyntaxError(f"unexpected {token.text!r} at offset {token.position}")
        return predicate

    def _starts_term(self, token: _Token | None) -> bool:
        if token is None:
            return False
        return (token.kind == "paren" and token.text == "(") or token.kind == "word" or token.text == "NOT"

    def conjunction(self) -> Predicate:
        parts = [self.disjunction()]
        while True:
            token = self.peek()
            if token is not None and token.text == "AND" and token.kind == "keyword":
                self.take()
                parts.append(self.disjunction())
            elif self._starts_term(token):
                parts.append(self.disjunction())
            else:
                break
        return parts[0] if len(parts) == 1 else (lambda entry: all(part(entry) for part in parts))

    def disjunction(self) -> Predicate:
        parts = [self.unary()]
        while (token := self.peek()) is not None and token.kind == "keyword" and token.text == "OR":
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda entry: any(part(entry) for part in parts))

    def unary(self) -> Predicate:
        token = self.peek()
        if token is not None and token.kind == "keyword" and token.text == "NOT":
            self.take()
            inner = self.unary()
            return lambda entry: not inner(entry)
        return self.primary()

    def primary(self) -> Predicate:
        token = self.take()
        if token.kind == "paren" and token.text == "(":
            inner = self.conjunction()
            self.expect("paren", ")")
            return inner
        if token.kind != "word" or token.text.startswith("-"):
            raise FilterSyntaxError(f"expected a field name at offset {token.position}, got {token.text!r}")
        path = self.field_path(token)
        field = ".".join(path)
        op_token = self.peek()
        if op_token is None or op_token.kind != "op":
            raise FilterSyntaxError(f"global restriction {field!r} at offset {token.position} is not supported")
        op = self.take().text
        value_token = self.peek()
        if op == ":" and value_token is not None and value_token.kind == "word" and value_token.text == "*":
            self.take()
            return lambda entry: _lookup(entry, path) is not _MISSING
        test = self.value(field, op)
        if path == ("severity",):
            return lambda entry: test(_lookup(entry, path))
        return lambda entry: (value := _lookup(entry, path)) is not _MISSING and test(value)

    def field_path(self, first: _Token) -> tuple[str, ...]:
        """The names of a field path that starts with the word ``first``: ``a.b``, ``a."b.c"``, ``a."@b".c``.

        A quoted name follows a dot with nothing between them, and a further ``.name`` follows its closing quote.
        """
        parts: list[str] = []
        token = first
        end = first.position + len(first.text)
        text = first.text
        while True:
            names = text.split(".")
            quoted_next = names[-1] == ""
            if quoted_next:
                names.pop()
            if "" in names:
                raise FilterSyntaxError(f"empty name in the field path at offset {token.position}")
            parts += names
            if not quoted_next:
                return tuple(parts)
            quoted = self.peek()
            if quoted is None or quoted.kind != "string" or quoted.position != end:
                raise FilterSyntaxError(f"field path ends with a dot at offset {token.position}")
            self.take()
            parts.append(quoted.text)
            end = quoted.position + len(self._raw(quoted))
            after = self.peek()
            if after is None or after.kind != "word" or after.position != end or not after.text.startswith("."):
                return tuple(parts)
            token = self.take()
            text = token.text[1:]
            end = token.position + len(token.text)

    def _raw(self, token: _Token) -> str:
        """The source text of a string token (its quotes and escapes included)."""
        match = _TOKEN.match(self.text, token.position)
        assert match is not None
        return match.group()

    def value(self, field: str, op: str) -> ValueTest:
        token = self.take()
        if token.kind in {"string", "word"}:
            return _compare(field, op, token.text)
        if token.kind == "paren" and token.text == "(":
            tests = [self.value(field, op)]
            while (nxt := self.peek()) is not None and nxt.kind == "keyword" and nxt.text == "OR":
                self.take()
                tests.append(self.value(field, op))
            self.expect("paren", ")")
            return lambda value: any(test(value) for test in tests)
        raise FilterSyntaxError(f"expected a value at offset {token.position}, got {token.text!r}")


@dataclass(frozen=True)
class LogFilter:
    text: str
    _predicate: Predicate

    def matches(self, entry: Mapping[str, Any]) -> bool:
        return self._predicate(entry)


def compile_filter(text: str) -> LogFilter:
    """Parse ``text``; raises FilterSyntaxError for anything outside the supported subset."""
    return LogFilter(text, _Parser(text).parse())
