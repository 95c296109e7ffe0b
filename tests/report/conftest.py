"""Reading a report back as a browser would: the files its pages reference, its data blocks
and its legends."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from PIL import Image


class Page(HTMLParser):
    """What one page references and shows."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.refs: list[str] = []  # src and href of img, a, link, script
        self.blocks: dict[str, list[Any]] = {}  # JSON data blocks by class
        self.tables: dict[str, list[list[str]]] = {}  # body rows (cell texts) by table class
        self.text: list[str] = []
        self._block: str | None = None
        self._table: str | None = None
        self._row: list[str] | None = None
        self._in_body = False
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for key in ("src", "href"):
            if found.get(key):
                self.refs.append(str(found[key]))
        if tag == "script" and found.get("type") == "application/json":
            self._block = str(found.get("class"))
        elif tag == "table":
            self._table = str(found.get("class") or "")
            self.tables.setdefault(self._table, [])
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._row.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._block = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append([cell.strip() for cell in self._row])
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._block is not None:
            self.blocks.setdefault(self._block, []).append(json.loads(data))
        elif self._row is not None and self._row:
            self._row[-1] += data
        self.text.append(data)

    @property
    def gallery(self) -> dict[str, Any]:
        (data,) = self.blocks["gallery-data"]
        return data


def check_report(index: Path) -> dict[str, Page]:
    """Parse every page of a report; assert that each file a page or its data references
    exists inside the report (or is a run's own output), that nothing is fetched from a
    network, and that gallery thumbnails are thumbnails. Returns the pages by file name."""
    from unseg.report.deepzoom import TILE, levels
    from unseg.report.images import THUMB_SIDE

    root = index.parent
    pages = {index.name: Page(index)}
    for ref in pages[index.name].refs:
        if ref.endswith(".html") and ref not in pages:
            pages[ref] = Page(root / ref)
    for page in pages.values():
        html = page.path.read_text(encoding="utf-8")
        assert "http://" not in html.replace("http://schemas.microsoft.com/deepzoom/2008", "")
        assert "https://" not in html and "//cdn" not in html
        for ref in page.refs:
            assert not ref.startswith(("http:", "https:", "//")), ref
            assert (root / unquote(ref.split("#")[0])).exists(), f"{page.path.name}: {ref}"
        for data in page.blocks.get("gallery-data", []):
            for _, thumbs, links, values in data["rows"]:
                assert len(thumbs) == len(links) == len(data["columns"])
                assert len(values) == len(data["values"])
                for thumb in filter(None, thumbs):
                    with Image.open(root / thumb) as image:
                        assert max(image.size) <= THUMB_SIDE
                for link in links:
                    assert link is None or (root / unquote(link)).exists(), link
        for config in page.blocks.get("viewer-data", []):
            for layer in ("image", "labels"):
                source = config[layer]["Image"]
                width, height = int(source["Size"]["Width"]), int(source["Size"]["Height"])
                folder = root / source["Url"]
                assert folder.with_name(folder.name.replace("_files", ".dzi")).is_file()
                for level, (_, w, h) in enumerate(levels(width, height)):
                    found = sorted(p.name for p in (folder / str(level)).iterdir())
                    assert len(found) == math.ceil(w / TILE) * math.ceil(h / TILE), level
    return pages


@pytest.fixture()
def read_report():
    return check_report
