"""HTML pieces of a report page. Every text that comes from a file or a user is escaped; data
for the page's script sits in ``<script type="application/json">`` blocks."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from html import escape
from typing import Any

from unseg.data.names import Colour


def esc(value: Any) -> str:
    return escape(str(value), quote=True)


def hex_colour(colour: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(v) for v in colour[:3]))


def number(value: Any, digits: int = 3) -> str:
    """A metric for reading: ``n/a`` when missing or not finite."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def swatch(colour: Colour) -> str:
    return f'<span class="swatch" style="background:{hex_colour(colour)}"></span>'


def json_block(data: Any, css_class: str) -> str:
    """``data`` as JSON a page's script reads; ``<`` is escaped so no text closes the block."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    return f'<script type="application/json" class="{css_class}">{text}</script>'


def page(title: str, body: str, *, nav: str = "", viewer: bool = False) -> str:
    """A whole page: its styles and scripts are the report's ``assets/`` (no network)."""
    scripts = ('<script src="assets/openseadragon/openseadragon.min.js"></script>\n'
               if viewer else "") + '<script src="assets/report.js"></script>'
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<link rel="stylesheet" href="assets/report.css">
</head>
<body>
<header><h1>{esc(title)}</h1>{nav}</header>
<main>
{body}
</main>
<footer>Written by unseg. Opens from disk: no server, no network.</footer>
{scripts}
</body>
</html>
"""


def section(anchor: str, title: str, content: str, note: str = "") -> str:
    note_html = f'<p class="note">{note}</p>' if note else ""
    return (f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{note_html}\n{content}\n'
            "</section>")


def facts(items: Sequence[tuple[str, str]]) -> str:
    """A definition list; values are HTML (escape them first)."""
    rows = "".join(f"<dt>{esc(term)}</dt><dd>{value}</dd>" for term, value in items)
    return f'<dl class="facts">{rows}</dl>'


def params(values: dict[str, Any]) -> str:
    return " ".join(f"<code>{esc(k)}={esc(v)}</code>" for k, v in values.items()) or "none"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], css_class: str = "") -> str:
    """A table of HTML cells (escape them first)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def bar(value: float | None, colour: Colour | None = None, top: float = 1.0) -> str:
    """A horizontal bar of ``value / top`` with its number."""
    width = 0.0 if value is None or not math.isfinite(value) else max(0.0, value / top * 100)
    style = f"width:{min(width, 100):.1f}%" + (f";background:{hex_colour(colour)}"
                                               if colour is not None else "")
    return (f'<span class="bar"><span style="{style}"></span></span>'
            f'<span class="num">{number(value)}</span>')


def legend(entries: Sequence[tuple[int, str, Colour, float, str]], extra: str = "") -> str:
    """One row per label: colour, id, name, pixel share (``extra`` heads a last column)."""
    header = ["", "id", "name", "pixel share"] + ([extra] if extra else [])
    rows = [[swatch(colour), str(label), esc(name), bar(share, colour)]
            + ([esc(more)] if extra else [])
            for label, name, colour, share, more in entries]
    return table(header, rows, "legend")


def heatmap(matrix: Sequence[Sequence[int]], rows: Sequence[tuple[int, str, Colour]],
            columns: Sequence[str], matched: dict[int, int] | None = None) -> str:
    """Rows (labels) by columns (classes); each cell shaded by its share of the row, with the
    pixel count on hover; a matched cell is outlined."""
    head = "<th></th>" + "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for label, name, colour in rows:
        counts = matrix[label]
        total = max(sum(counts), 1)
        cells = []
        for column, count in enumerate(counts):
            share = count / total
            mark = ' class="matched"' if matched and matched.get(label) == column else ""
            cells.append(f'<td{mark} style="background:rgba(40,80,160,{share:.3f});'
                         f'color:{"#fff" if share > 0.55 else "#222"}" '
                         f'title="{count} pixels">{100 * share:.0f}%</td>')
        body.append(f"<tr><th>{swatch(colour)} {esc(name)}</th>{''.join(cells)}</tr>")
    return (f'<div class="scroll"><table class="heatmap"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def examples(best: dict[int, list[tuple[float, str, str]]], names: dict[int, tuple[str, Colour]]
             ) -> str:
    """Per label, its example tiles (``(share, caption, src)``)."""
    rows = []
    for label, tiles in best.items():
        name, colour = names[label]
        images = "".join(
            f'<figure><img src="{esc(src)}" alt="{esc(name)}: {esc(caption)}" loading="lazy">'
            f'<figcaption title="{esc(caption)}">{100 * share:.0f}% · {esc(caption)}'
            "</figcaption></figure>"
            for share, caption, src in tiles)
        rows.append(f'<div class="concept"><h3>{swatch(colour)} {esc(name)}</h3>'
                    f'<div class="tiles">{images}</div></div>')
    return "".join(rows)


def gallery(data: dict[str, Any]) -> str:
    """The sortable, paged gallery; ``report.js`` draws one page of rows at a time."""
    return (f'<div class="gallery">{json_block(data, "gallery-data")}'
            '<div class="controls"></div><div class="scroll"><table class="rows"></table></div>'
            '<div class="controls"></div></div>')


def viewer(config: dict[str, Any], legend_html: str) -> str:
    """The zoomable slide with its label overlay, an opacity slider and the legend."""
    return (f'<div class="viewer">{json_block(config, "viewer-data")}'
            '<div class="osd" role="img" aria-label="zoomable slide"></div>'
            '<div class="side"><div class="tools">'
            '<button type="button" data-zoom="2" title="zoom in">+</button>'
            '<button type="button" data-zoom="0.5" title="zoom out">&minus;</button>'
            '<button type="button" data-zoom="0" title="whole slide">whole slide</button></div>'
            '<label>label opacity <input type="range" class="opacity" min="0" max="100" '
            f'value="{round(100 * config["opacity"])}"></label>{legend_html}</div></div>')
