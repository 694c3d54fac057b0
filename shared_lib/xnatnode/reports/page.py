"""A report page as data (:class:`Page` and its parts) and its rendering with jinja2.

A command declares what its page holds (a verdict, totals, sections of tables, charts, notes,
lists) with the dataclasses below; :func:`render` turns that into one self-contained HTML page
through the templates in ``templates/`` (``page.html.j2`` for the skeleton, ``parts.html.j2``
with one macro per part, ``style.css`` inlined). Autoescaping is always on: every string a
command passes is text, never markup. The only markup a part carries is a chart's SVG, made (and
escaped) by :mod:`xnatnode.reports.svg` through :meth:`Chart.bars` / :meth:`Chart.columns`.
Links (a table's full CSV, the footer) must be relative: a page never reaches the network.
"""

from __future__ import annotations

import enum
import functools
import importlib.resources
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple, get_args

import jinja2
from markupsafe import Markup

from xnatnode import __version__
from xnatnode.reports.svg import COLORS, Formatter, bar_chart, column_chart, count

if TYPE_CHECKING:
    from xnatnode.runtime import Run

#: Severity of a verdict, a total, a badge: drives colour and the verdict's mark.
Level = Literal["ok", "warning", "error", "info"]
LEVELS: tuple[str, ...] = get_args(Level)
#: Bar colours by level (the stylesheet's --ok, --warning, --error and --info).
LEVEL_COLORS: dict[str, str] = {"ok": "#00754a", "warning": "#b07a00", "error": "#b3261e",
                                "info": "#0b5a8a"}
#: The verdict's mark (colour is never the only signal).
MARKS: dict[str, str] = {"ok": "✓", "warning": "!", "error": "✗", "info": "i"}

#: Rows shown per HTML table and items per list; the CSV/JSON files hold everything.
TABLE_LIMIT = 200
LIST_LIMIT = 50

#: ``<meta name="xnatnode-report" content="LAYER_VERSION">`` is on every page this layer renders
#: (tests use it to check that a command's HTML comes from the layer).
MARKER = "xnatnode-report"
LAYER_VERSION = "1"

_SCHEME = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.-]*:|//|\\\\)")


def relative_href(href: str) -> str:
    """``href`` if it is a relative link (a file beside the page, an ``#anchor``); ValueError for
    anything that could leave the page's folder: a scheme (``https:``, ``javascript:``), ``//``,
    or an absolute path."""
    if _SCHEME.match(href) or href.startswith("/"):
        raise ValueError(f"report links must be relative (a file beside the page): {href!r}")
    return href


def _check_level(level: str | None) -> None:
    if level is not None and level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}: {level!r}")


def cell_text(value: Any, missing: str = "") -> str:
    """A value as table text: ``None`` → ``missing``; an enum member as its value; ints with
    thousands separators; floats with one decimal; booleans as yes/no; lists joined with commas;
    anything else ``str()``."""
    if value is None:
        return missing
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, list | tuple):
        return ", ".join(cell_text(v, missing) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


# --------------------------------------------------------------------------- header parts


@dataclass(frozen=True, slots=True)
class Verdict:
    """The one-line answer at the top of a page (``Verdict("error", "3 files rejected")``)."""

    level: Level
    text: str
    detail: str = ""

    def __post_init__(self) -> None:
        _check_level(self.level)

    @property
    def mark(self) -> str:
        return MARKS[self.level]


@dataclass(frozen=True, slots=True)
class Total:
    """A key figure in the cards under the header; ``value`` is formatted by ``fmt`` (default
    :func:`cell_text`, ``None`` shown as ``unknown``); ``level`` colours the card unless the value
    is zero."""

    label: str
    value: Any
    level: Level | None = None
    hint: str = ""
    fmt: Callable[[Any], str] | None = None

    def __post_init__(self) -> None:
        _check_level(self.level)

    @property
    def text(self) -> str:
        return self.fmt(self.value) if self.fmt else cell_text(self.value, "unknown")

    @property
    def shown_level(self) -> str | None:
        """The level, except for a zero count (``Total("Rejected", 0, level="error")`` is not
        an alarm)."""
        zero = isinstance(self.value, int | float) and not isinstance(self.value, bool) and (
            self.value == 0)
        return None if zero else self.level


# --------------------------------------------------------------------------- body parts


class Cell(NamedTuple):
    text: str
    css: str
    level: str | None


@dataclass(frozen=True, slots=True)
class Column:
    """One table column.

    ``key`` picks the cell from a row: ``None`` = the row's item at the column's position (rows
    as tuples); a string = that key of a mapping or attribute of an object (e.g. a dataclass
    row); an int = that index; a callable = ``key(row)``. ``fmt`` formats the value (default
    :func:`cell_text`; ``missing`` for ``None``). ``numeric`` right-aligns. ``levels`` maps a
    cell's text to a level and shows it as a coloured badge (e.g. outcome ``rejected`` →
    ``error``). ``wrap`` lets long text (messages, paths) wrap instead of widening the table.
    """

    title: str
    key: str | int | Callable[[Any], Any] | None = None
    numeric: bool = False
    fmt: Callable[[Any], str] | None = None
    levels: Mapping[str, Level] | None = None
    wrap: bool = False
    missing: str = ""

    def value(self, row: Any, position: int) -> Any:
        key = self.key
        if key is None:
            return row[position]
        if callable(key):
            return key(row)
        if isinstance(key, int) or isinstance(row, Mapping):
            return row[key]
        return getattr(row, key)

    def cell(self, row: Any, position: int) -> Cell:
        value = self.value(row, position)
        text = self.fmt(value) if self.fmt else cell_text(value, self.missing)
        css = "n" if self.numeric else ("w" if self.wrap else "")
        level = self.levels.get(text) if self.levels else None
        return Cell(text, css, level)


class TableView(NamedTuple):
    rows: list[list[Cell]]
    shown: int
    total: int


@dataclass(frozen=True, slots=True)
class Table:
    """A table of rows (at most ``limit`` shown; then a note links ``csv``, the full table).

    ``rows`` is a sequence (or any iterable: then it is read once). ``total`` overrides the
    row count given in the "Showing N of M" note."""

    columns: Sequence[Column]
    rows: Iterable[Any]
    title: str = ""
    csv: str | None = None
    limit: int = TABLE_LIMIT
    total: int | None = None
    empty: str = "None."
    kind: ClassVar[str] = "table"

    def __post_init__(self) -> None:
        if self.csv is not None:
            relative_href(self.csv)

    def view(self) -> TableView:
        shown: list[list[Cell]] = []
        seen = 0
        for row in self.rows:
            seen += 1
            if len(shown) < self.limit:
                shown.append([c.cell(row, i) for i, c in enumerate(self.columns)])
            elif isinstance(self.rows, Sized):
                seen = len(self.rows)
                break
        return TableView(shown, len(shown), self.total if self.total is not None else seen)


@dataclass(frozen=True, slots=True)
class Chart:
    """A titled inline-SVG chart; make one with :meth:`bars` or :meth:`columns`. ``wide`` charts
    (many columns) keep their width and scroll sideways on a phone."""

    title: str
    svg: Markup
    wide: bool = False
    kind: ClassVar[str] = "chart"

    def __post_init__(self) -> None:
        if not isinstance(self.svg, Markup) or not self.svg.startswith("<svg "):
            raise ValueError("Chart.svg must come from xnatnode.reports.svg (use Chart.bars/columns)")

    @classmethod
    def bars(
        cls,
        title: str,
        items: Sequence[tuple[str, float]],
        *,
        label: str | None = None,
        fmt: Formatter = count,
        color: str = COLORS[0],
        colors: Sequence[str] | None = None,
        levels: Mapping[str, Level] | None = None,
        max_items: int = 15,
    ) -> Chart:
        """Horizontal bars in the given order; ``label`` is the chart's accessible name
        (default: ``title``); ``levels`` colours each bar by its label's level (e.g. outcomes:
        the same colours as the badges), others ``color``."""
        if levels is not None:
            colors = [LEVEL_COLORS[levels[k]] if k in levels else color for k, _ in items]
        svg = bar_chart(items, title=label or title, fmt=fmt, color=color, colors=colors,
                        max_items=max_items)
        return cls(title, Markup(svg))

    @classmethod
    def columns(
        cls,
        title: str,
        items: Sequence[tuple[str, float]],
        *,
        label: str | None = None,
        fmt: Formatter = count,
        color: str = COLORS[0],
        wide: bool = True,
    ) -> Chart:
        """Vertical columns in the given order (e.g. per month)."""
        svg = column_chart(items, title=label or title, fmt=fmt, color=color)
        return cls(title, Markup(svg), wide=wide)


@dataclass(frozen=True, slots=True)
class Grid:
    """Parts side by side on a wide screen, stacked on a phone (typically charts)."""

    parts: Sequence[Part]
    kind: ClassVar[str] = "grid"


@dataclass(frozen=True, slots=True)
class Note:
    """A short muted paragraph, with an optional heading; text in backticks is shown as code."""

    text: str
    title: str = ""
    level: Level | None = None
    kind: ClassVar[str] = "note"

    def __post_init__(self) -> None:
        _check_level(self.level)

    def pieces(self) -> list[tuple[str, bool]]:
        """(text, is_code) pieces: odd pieces between backticks are code."""
        return [(p, i % 2 == 1) for i, p in enumerate(self.text.split("`")) if p]


@dataclass(frozen=True, slots=True)
class Fact:
    label: str
    value: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Facts:
    """One line of ``label: **value** (detail)`` facts joined by ``·``."""

    facts: Sequence[Fact]
    kind: ClassVar[str] = "facts"


@dataclass(frozen=True, slots=True)
class Items:
    """A titled list in columns (e.g. the gaps); the count joins the title; beyond ``limit``
    items a note says how many more (``more`` says where they are)."""

    title: str
    items: Sequence[str]
    total: int | None = None
    limit: int = LIST_LIMIT
    empty: str = "None."
    more: str = ""
    kind: ClassVar[str] = "items"

    def count(self) -> int:
        return self.total if self.total is not None else len(self.items)

    def shown(self) -> Sequence[str]:
        return self.items[: self.limit]


@dataclass(frozen=True, slots=True)
class Section:
    """A titled group of parts. Top-level sections get ``<h2>``, nested ones ``<h3>`` and so on.
    ``collapsible`` renders it as an open-or-closed box (e.g. findings grouped by rule) with a
    ``badge`` (e.g. ``"3 errors"``, coloured by ``badge_level``) beside its title."""

    title: str
    parts: Sequence[Part]
    id: str = ""
    collapsible: bool = False
    open: bool = True
    badge: str = ""
    badge_level: Level | None = None
    kind: ClassVar[str] = "section"

    def __post_init__(self) -> None:
        _check_level(self.badge_level)


Part = Section | Table | Chart | Grid | Note | Facts | Items


# --------------------------------------------------------------------------- footer, run record


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    kind: ClassVar[str] = "text"


@dataclass(frozen=True, slots=True)
class Link:
    """A relative link (``Link("sessions.csv")`` links the file beside the page)."""

    text: str
    href: str = ""
    kind: ClassVar[str] = "link"

    def __post_init__(self) -> None:
        if not self.href:
            object.__setattr__(self, "href", self.text)
        relative_href(self.href)


@dataclass(frozen=True, slots=True)
class Span:
    """Inline pieces shown together: ``Span("machine-readable: ", Link("summary.json"))``."""

    parts: tuple[Text | Link, ...]
    kind: ClassVar[str] = "span"

    def __init__(self, *parts: str | Text | Link) -> None:
        object.__setattr__(self, "parts", tuple(Text(p) if isinstance(p, str) else p for p in parts))


Inline = str | Text | Link | Span

#: Run-record fields shown, in this order (the rest of the record follows).
_RUN_FIELDS = ("command", "version", "started", "finished", "duration_s", "status", "exit_code",
               "xnat_host", "request_count", "error")
_FINAL_FIELDS = frozenset({"finished", "duration_s", "status", "exit_code"})


@dataclass(frozen=True, slots=True)
class RunRecord:
    """The run record (:meth:`xnatnode.runtime.Run.record_data`: secrets already masked) shown
    folded at the foot of the page. Written before the run ends, so the final status is left out
    unless the record has finished (the verdict says how the run went)."""

    data: Mapping[str, Any]

    @classmethod
    def from_run(cls, run: Run) -> RunRecord:
        return cls(run.record_data())

    @property
    def command(self) -> str:
        return str(self.data.get("command", ""))

    @property
    def version(self) -> str:
        return str(self.data.get("version", __version__))

    def entries(self) -> list[tuple[str, str]]:
        final = self.data.get("finished") is not None
        names = [n for n in _RUN_FIELDS if n in self.data]
        names += [n for n in self.data if n not in _RUN_FIELDS and n != "arguments"]
        out = [
            (n.replace("_", " "), cell_text(self.data[n]))
            for n in names
            if self.data[n] is not None and (final or n not in _FINAL_FIELDS)
        ]
        arguments = self.data.get("arguments") or {}
        out += [(f"--{k.replace('_', '-')}", _argument_text(v)) for k, v in arguments.items()
                if v is not None]
        return out


def _argument_text(value: Any) -> str:
    """A flag's value as it would be typed: numbers without thousands separators or a needless
    ``.0`` (``--dicom-port 34575``, ``--deadline 21600``), the rest as :func:`cell_text`."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return cell_text(value)


# --------------------------------------------------------------------------- the page


@dataclass(frozen=True, slots=True)
class Page:
    """A whole report page: ``title`` (the browser tab), ``heading`` (the ``<h1>``, default the
    title), ``subtitle``, an optional ``verdict``, ``totals`` cards, the ``parts`` (usually
    :class:`Section` s), the ``run`` record and the ``footer`` (text and relative links; the
    layer adds the xnatnode version)."""

    title: str
    parts: Sequence[Part] = ()
    heading: str = ""
    subtitle: str = ""
    verdict: Verdict | None = None
    totals: Sequence[Total] = ()
    run: RunRecord | None = None
    footer: Sequence[Inline] = field(default_factory=tuple)

    def footer_items(self) -> list[Text | Link | Span]:
        items = [Text(i) if isinstance(i, str) else i for i in self.footer]
        return [*items, Text(f"xnatnode {__version__}")]


@functools.cache
def environment() -> jinja2.Environment:
    """The layer's jinja2 environment: package templates, autoescaping always on, undefined
    names an error."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("xnatnode.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["n"] = count  # {{ total|n }}: 1,234
    return env


@functools.cache
def stylesheet() -> str:
    """The one stylesheet (``templates/style.css``), inlined into every page."""
    return (importlib.resources.files("xnatnode.reports") / "templates" / "style.css").read_text(
        "utf-8")


def render(page: Page) -> str:
    """The page as one self-contained HTML document."""
    return environment().get_template("page.html.j2").render(
        page=page,
        css=Markup(stylesheet()),
        version=__version__,
        marker=MARKER,
        layer_version=LAYER_VERSION,
    )
