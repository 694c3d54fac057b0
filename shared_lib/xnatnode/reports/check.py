"""What a report page must be, as one check every command's tests can run on its HTML:
``assert page_problems(html) == []``."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from xnatnode.reports.page import MARKER

#: Attributes that make a browser fetch or navigate.
_LINK_ATTRIBUTES = frozenset({"src", "href", "xlink:href", "action", "formaction", "srcset",
                              "poster", "data", "background", "ping"})
_EXTERNAL = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.-]*:|//|\\\\|/)")
#: Elements a self-contained, script-free page never has.
_FORBIDDEN_TAGS = frozenset({"script", "link", "iframe", "object", "embed", "img", "base",
                             "frame", "audio", "video", "source", "form"})
_VOID = frozenset({"meta", "br", "hr", "input", "wbr", "col", "area", "param", "track",
                   "source", "img", "link", "base", "embed"})
_CSS_FETCH = re.compile(r"@import|url\s*\(", re.IGNORECASE)


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.metas: dict[str, str] = {}
        self.stack: list[tuple[str, str]] = []  # (tag, class)
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): v or "" for k, v in attrs}
        if tag in _FORBIDDEN_TAGS:
            self.problems.append(f"has a <{tag}> element")
        for name, value in values.items():
            if name in _LINK_ATTRIBUTES and _EXTERNAL.match(value):
                self.problems.append(f"<{tag} {name}={value!r}> leaves the page's folder")
            if name.startswith("on"):
                self.problems.append(f"<{tag}> has an event handler ({name})")
            if name == "style" and _CSS_FETCH.search(value):
                self.problems.append(f"<{tag} style> fetches something")
        if tag == "meta" and "name" in values:
            self.metas[values["name"]] = values.get("content", "")
        if tag == "table":
            parent = self.stack[-1] if self.stack else ("", "")
            if parent[0] != "div" or "scroll" not in parent[1].split():
                self.problems.append("a <table> is not inside its own scrolling container")
        if tag == "style":
            self.in_style = True
        if tag not in _VOID:
            self.stack.append((tag, values.get("class", "")))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID and self.stack and self.stack[-1][0] == tag:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self.in_style = False
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data: str) -> None:
        if self.in_style and _CSS_FETCH.search(data):
            self.problems.append("the stylesheet fetches something (@import or url())")


def page_problems(html: str) -> list[str]:
    """Why ``html`` is not a page of the report layer (empty when it is one): the layer's marker,
    a viewport for phones, nothing loaded from anywhere (no absolute or scheme links, scripts,
    stylesheets, fonts or images), and every table inside its own scrolling container."""
    scan = _Scan()
    scan.feed(html)
    scan.close()
    problems = list(scan.problems)
    if not html.lstrip().lower().startswith("<!doctype html>"):
        problems.insert(0, "does not start with <!DOCTYPE html>")
    if MARKER not in scan.metas:
        problems.append(f'no <meta name="{MARKER}"> (not rendered by xnatnode.reports)')
    if "viewport" not in scan.metas:
        problems.append("no viewport meta tag (unreadable on a phone)")
    return problems
