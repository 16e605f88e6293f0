"""The tag table: rich at a terminal, plain aligned columns in a CI log or a pipe."""

from __future__ import annotations

import io

from registry_cleanup.output.report import TAG_COLUMNS, print_tag_table

ROWS = [
    ("registry.example.com/group/app", "main", "kept", "the default branch's tag"),
    ("registry.example.com/group/app", "gone-1", "deleted", "tag deleted"),
]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_columns_when_not_a_terminal() -> None:
    stream = io.StringIO()

    print_tag_table(stream, "registry-cleanup sweep: group/app", ROWS)

    lines = stream.getvalue().splitlines()
    assert lines[0] == "registry-cleanup sweep: group/app"
    assert lines[1].split() == list(TAG_COLUMNS)
    assert [line.split(maxsplit=3) for line in lines[2:]] == [list(row) for row in ROWS]
    # Aligned: every column starts at the same offset on every line.
    cells = ("status", "kept", "deleted")
    starts = {line.index(cell) for line, cell in zip(lines[1:], cells, strict=True)}
    assert len(starts) == 1
    assert "│" not in stream.getvalue()


def test_a_rich_table_at_a_terminal() -> None:
    stream = _Terminal()

    print_tag_table(stream, "registry-cleanup sweep: group/app", ROWS)

    text = stream.getvalue()
    assert "│" in text or "┃" in text
    assert "gone-1" in text
