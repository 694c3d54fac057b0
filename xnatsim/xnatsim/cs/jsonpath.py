"""The subset of Jayway JSONPath that the Container Service and Event Service use.

* paths: ``$`` or ``@`` followed by ``.key``, ``['key']``, ``[n]``, ``[*]``, ``.*`` and
  ``[?(filter)]`` segments (keys may contain ``-`` and ``:``, as XNAT's kebab-case JSON does);
* filters: ``==  !=  <  <=  >  >=  =~ /re/i  in  nin  contains  anyof  noneof  subsetof  empty``,
  ``&&``, ``||``, ``!``, parentheses, and a bare path as an existence test.

Semantics follow Jayway: a path with a wildcard or filter yields a list, a missing path yields
nothing (every comparison with it is false), ``=~`` must match the whole string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["JsonPathError", "evaluate_path", "matches_filter"]


class JsonPathError(ValueError):
    """An expression this subset cannot parse."""


_MISSING = object()

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<str>'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")
  | (?P<regex>/(?:\\.|[^/\\])*/[a-z]*)
  | (?P<num>-?\d+(?:\.\d+)?(?![\w-]))
  | (?P<op>==|!=|<=|>=|=~|&&|\|\||<|>|!|\(|\)|\[|\]|,)
  | (?P<word>[A-Za-z_]+)
    )""",
    re.VERBOSE,
)

_WORD_OPS = {"in", "nin", "contains", "anyof", "noneof", "subsetof", "empty", "size"}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        if text[pos] in "$@":
            end = _path_end(text, pos)
            tokens.append(_Tok("path", text[pos:end]))
            pos = end
            continue
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise JsonPathError(f"cannot parse filter at {text[pos:]!r}")
        kind = m.lastgroup or ""
        value = m.group(kind).strip()
        if kind == "word" and value not in _WORD_OPS | {"true", "false", "null"}:
            raise JsonPathError(f"unknown word {value!r} in filter")
        tokens.append(_Tok(kind, value))
        pos = m.end()
    return tokens


def _path_end(text: str, pos: int) -> int:
    """End index of the path starting at ``pos`` (brackets may hold nested filters)."""
    i = pos + 1
    while i < len(text):
        ch = text[i]
        if ch == ".":
            i += 1
            while i < len(text) and (text[i].isalnum() or text[i] in "_:-*."):
                # stop a key at '-' followed by a space (binary minus is not supported anyway)
                i += 1
        elif ch == "[":
            i = _bracket_end(text, i)
        else:
            break
    return i


def _bracket_end(text: str, start: int) -> int:
    """Index just after the ']' matching the '[' at ``start`` (quotes and nesting honoured)."""
    depth, quote, i = 0, "", start
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise JsonPathError(f"unterminated '[' in {text[start:]!r}")


# ---------------------------------------------------------------------------------------- paths


def _split_path(path: str) -> tuple[list[tuple[str, str]], bool]:
    """Segments of a path as (kind, arg), and whether it is definite (yields one value)."""
    segments: list[tuple[str, str]] = []
    definite = True
    i = 1
    while i < len(path):
        ch = path[i]
        if ch == ".":
            if path.startswith("..", i):
                raise JsonPathError("deep scan '..' is not supported")
            j = i + 1
            while j < len(path) and path[j] not in ".[":
                j += 1
            key = path[i + 1 : j]
            if key == "*":
                segments.append(("wild", ""))
                definite = False
            else:
                segments.append(("key", key))
            i = j
        elif ch == "[":
            end = _bracket_end(path, i)
            inner = path[i + 1 : end - 1].strip()
            if inner == "*":
                segments.append(("wild", ""))
                definite = False
            elif inner.startswith("?"):
                body = inner[1:].strip()
                if body.startswith("(") and body.endswith(")"):
                    body = body[1:-1]
                segments.append(("filter", body))
                definite = False
            elif inner[:1] in "'\"":
                segments.append(("key", _unquote(inner)))
            elif re.fullmatch(r"-?\d+", inner):
                segments.append(("index", inner))
            else:
                raise JsonPathError(f"unsupported path segment [{inner}]")
            i = end
        else:
            raise JsonPathError(f"cannot parse path {path!r}")
    return segments, definite


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _walk(values: list[Any], segments: list[tuple[str, str]], root: Any) -> list[Any]:
    for kind, arg in segments:
        out: list[Any] = []
        for value in values:
            if kind == "key":
                if isinstance(value, dict) and arg in value:
                    out.append(value[arg])
            elif kind == "index":
                if isinstance(value, list):
                    idx = int(arg)
                    if -len(value) <= idx < len(value):
                        out.append(value[idx])
            elif kind == "wild":
                if isinstance(value, list):
                    out.extend(value)
                elif isinstance(value, dict):
                    out.extend(value.values())
            else:  # filter
                items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
                out.extend(item for item in items if _eval_filter(arg, item, root))
        values = out
    return values


def evaluate_path(path: str, document: Any) -> list[Any]:
    """All values that ``path`` (starting with ``$``) selects in ``document``."""
    path = path.strip()
    if not path.startswith(("$", "@")):
        raise JsonPathError(f"a JSONPath starts with '$': {path!r}")
    segments, _ = _split_path(path)
    return _walk([document], segments, document)


def matches_filter(filter_text: str, obj: Any, root: Any | None = None) -> bool:
    """Whether ``obj`` passes the filter (the part inside ``[?( … )]``)."""
    text = filter_text.strip()
    if text.startswith("[?(") and text.endswith(")]"):
        text = text[3:-2]
    return _eval_filter(text, obj, obj if root is None else root)


# -------------------------------------------------------------------------------------- filters


def _eval_filter(text: str, current: Any, root: Any) -> bool:
    parser = _Parser(_tokenize(text), current, root)
    result = parser.parse_or()
    if parser.pos != len(parser.tokens):
        raise JsonPathError(f"unexpected {parser.tokens[parser.pos].text!r} in filter {text!r}")
    return result


class _Parser:
    def __init__(self, tokens: list[_Tok], current: Any, root: Any) -> None:
        self.tokens = tokens
        self.pos = 0
        self.current = current
        self.root = root

    def _peek(self) -> _Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> _Tok:
        tok = self._peek()
        if tok is None:
            raise JsonPathError("filter ends too early")
        self.pos += 1
        return tok

    def parse_or(self) -> bool:
        result = self.parse_and()
        while (tok := self._peek()) is not None and tok.text == "||":
            self.pos += 1
            right = self.parse_and()
            result = result or right
        return result

    def parse_and(self) -> bool:
        result = self.parse_unary()
        while (tok := self._peek()) is not None and tok.text == "&&":
            self.pos += 1
            right = self.parse_unary()
            result = result and right
        return result

    def parse_unary(self) -> bool:
        tok = self._peek()
        if tok is not None and tok.kind == "op" and tok.text == "!":
            self.pos += 1
            return not self.parse_unary()
        if tok is not None and tok.kind == "op" and tok.text == "(":
            self.pos += 1
            result = self.parse_or()
            if self._take().text != ")":
                raise JsonPathError("missing ')' in filter")
            return result
        return self.parse_comparison()

    def parse_comparison(self) -> bool:
        left_tok = self._peek()
        left = self.parse_operand()
        tok = self._peek()
        if tok is None or tok.text in ("&&", "||", ")"):
            # a bare path is an existence test; a bare literal is its truth
            if left_tok is not None and left_tok.kind == "path":
                if isinstance(left, list) and "[" in left_tok.text:
                    return bool(left)
                return left is not _MISSING
            return bool(left) and left is not _MISSING
        op = self._take().text
        if op == "empty":
            expected = self.parse_operand()
            if left is _MISSING or not isinstance(left, (str, list, dict)):
                return False
            return (len(left) == 0) == bool(expected)
        right = self.parse_operand()
        return _compare(op, left, right)

    def parse_operand(self) -> Any:
        tok = self._take()
        if tok.kind == "str":
            return _unquote(tok.text)
        if tok.kind == "num":
            return float(tok.text) if "." in tok.text else int(tok.text)
        if tok.kind == "regex":
            body, _, flags = tok.text[1:].rpartition("/")
            return re.compile(body, re.IGNORECASE if "i" in flags else 0)
        if tok.kind == "word":
            if tok.text in ("true", "false"):
                return tok.text == "true"
            if tok.text == "null":
                return None
            raise JsonPathError(f"operator {tok.text!r} where a value was expected")
        if tok.kind == "path":
            doc = self.current if tok.text.startswith("@") else self.root
            segments, definite = _split_path(tok.text)
            found = _walk([doc], segments, self.root)
            if definite:
                return found[0] if found else _MISSING
            return found
        if tok.text == "[":
            items: list[Any] = []
            while True:
                nxt = self._peek()
                if nxt is not None and nxt.text == "]":
                    self.pos += 1
                    return items
                items.append(self.parse_operand())
                sep = self._take().text
                if sep == "]":
                    return items
                if sep != ",":
                    raise JsonPathError("expected ',' or ']' in a list")
        raise JsonPathError(f"unexpected {tok.text!r} in filter")


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _equal(left: Any, right: Any) -> bool:
    if (isinstance(left, (int, float)) and not isinstance(left, bool)) or (isinstance(
        right, (int, float)
    ) and not isinstance(right, bool)):
        a, b = _num(left), _num(right)
        return a is not None and a == b
    return bool(left == right)


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is _MISSING or right is _MISSING:
        return False
    if op == "==":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    if op in ("<", "<=", ">", ">="):
        if isinstance(left, str) and isinstance(right, str):
            a: Any = left
            b: Any = right
        else:
            a, b = _num(left), _num(right)
            if a is None or b is None:
                return False
        return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])
    if op == "=~":
        if not isinstance(right, re.Pattern) or not isinstance(left, str):
            return False
        return right.fullmatch(left) is not None
    if op == "in":
        return isinstance(right, list) and any(_equal(left, item) for item in right)
    if op == "nin":
        return isinstance(right, list) and not any(_equal(left, item) for item in right)
    if op == "contains":
        if isinstance(left, str) and isinstance(right, str):
            return right in left
        return isinstance(left, list) and any(_equal(item, right) for item in left)
    if op in ("anyof", "noneof", "subsetof"):
        if not isinstance(left, list) or not isinstance(right, list):
            return False
        hits = [any(_equal(a, b) for b in right) for a in left]
        if op == "anyof":
            return any(hits)
        if op == "noneof":
            return not any(hits)
        return all(hits)
    if op == "size":
        return isinstance(left, (str, list, dict)) and _equal(len(left), right)
    raise JsonPathError(f"unsupported operator {op!r}")
