"""Headless Chromium (Debian's `chromium`) for looking at the pages we write, as people would."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

TIMEOUT_SECONDS = 90


def _flags(profile: Path) -> list[str]:
    # --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
    ]


def dump_dom(chromium: str, page: Path, profile: Path, fragment: str = "") -> str:
    """The DOM after the page's scripts ran (``fragment`` such as ``#status=kept``)."""
    completed = subprocess.run(
        [chromium, *_flags(profile), "--dump-dom", page.resolve().as_uri() + fragment],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0 or not completed.stdout.strip():
        raise RuntimeError(f"chromium --dump-dom failed: {completed.stderr[-2000:]}")
    return completed.stdout


def screenshot(
    chromium: str, page: Path, profile: Path, target: Path, size: str = "1280,900"
) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        [
            chromium,
            *_flags(profile),
            f"--screenshot={target}",
            f"--window-size={size}",
            "--hide-scrollbars",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0 or not target.is_file():
        raise RuntimeError(f"chromium --screenshot failed: {completed.stderr[-2000:]}")
    return target


class TableRows(HTMLParser):
    """The rows of one table (by id): each row's attributes and its cells' text."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self._table_id = table_id
        self._depth = 0  # inside the wanted table when > 0
        self._cell: list[str] | None = None
        self.rows: list[tuple[dict[str, str | None], list[str]]] = []
        self.body_attributes: dict[str, str | None] = {}
        self.texts: dict[str, str] = {}
        self._text_id: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "body":
            self.body_attributes = attributes
        if attributes.get("id") and tag not in ("table", "script"):
            self._text_id = attributes["id"]
            self.texts[self._text_id or ""] = ""
        if tag == "table" and attributes.get("id") == self._table_id:
            self._depth = 1
        elif tag == "table" and self._depth:
            self._depth += 1
        elif self._depth and tag == "tr":
            self.rows.append((attributes, []))
        elif self._depth and tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._depth:
            self._depth -= 1
        elif tag == "td" and self._cell is not None and self.rows:
            self.rows[-1][1].append("".join(self._cell).strip())
            self._cell = None
        if self._text_id is not None and tag in ("p", "span", "div"):
            self._text_id = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._text_id is not None:
            self.texts[self._text_id] += data


def table_rows(dom: str, table_id: str) -> TableRows:
    parser = TableRows(table_id)
    parser.feed(dom)
    # The header row has th cells only: keep the rows with data.
    parser.rows = [row for row in parser.rows if row[1]]
    return parser
