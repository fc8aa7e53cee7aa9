"""Terminal tables that stay aligned with Chinese text (wide characters take two columns) and fit a
terminal: a table wider than ``max_width`` has its widest columns wrapped, at a list's separators
(、 , ; and spaces) where it can and between characters where it must."""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Sequence

MAX_WIDTH = 120  # columns: a common terminal, and what every table of the command line fits
_GAP = "  "
_MIN_COLUMN = 10  # a column whose words are cut keeps at least this many (or its header's)
NBSP = "\u00a0"  # a space a line never breaks at: between a name and its code
# Where a line may break, the first tried first: after a list's separators and spaces (not after a no-break
# space); then also between Chinese characters, as Chinese text breaks (not before closing punctuation).
SEPARATORS = re.compile(r"(?<=[、，,;； ])")
_CHINESE = re.compile(r"(?<=[、，,;； ])|(?<=[\u3400-\u9fff])(?![、，。；：）〕\u00a0 ])")


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal (its widest line, for a cell of several)."""
    if "\n" in text:
        return max(map(width, text.split("\n")))
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, columns: int) -> str:
    """``text`` left-aligned in ``columns`` terminal columns."""
    return text + " " * (columns - width(text))


def wrap(text: str, columns: int, breaks: re.Pattern[str] = _CHINESE) -> list[str]:
    """``text`` in lines of at most ``columns`` terminal columns, broken where ``breaks`` allows, and between
    any two characters where a piece is longer than a line. A newline in ``text`` always breaks."""
    if "\n" in text:
        return [line for part in text.split("\n") for line in wrap(part, columns, breaks)]
    lines: list[str] = []
    line = ""
    for part in breaks.split(text):
        piece = part
        while width(piece) > columns:  # a piece too long for any line: cut it between characters
            if line:
                lines.append(line.rstrip())
                line = ""
            head = _cut(piece, columns)
            lines.append(head)
            piece = piece[len(head) :]
        if width(line + piece.rstrip()) > columns:
            lines.append(line.rstrip())
            line = ""
        line += piece
    return [*lines, line.rstrip()] if line or not lines else lines


def paragraph(text: str, *, hang: int = 4, max_width: int = MAX_WIDTH) -> str:
    """``text`` (one line, perhaps indented) wrapped to ``max_width``, its further lines indented ``hang`` more."""
    lead = len(text) - len(text.lstrip(" "))
    first, *rest = wrap(text.strip(" "), max_width - lead - hang, SEPARATORS)
    return "\n".join([" " * lead + first, *(" " * (lead + hang) + line for line in rest)])


def _cut(text: str, columns: int) -> str:
    """The longest start of ``text`` that fits ``columns``."""
    used = 0
    for i, ch in enumerate(text):
        used += width(ch)
        if used > columns:
            return text[:i]
    return text


def _shrunk(widths: list[int], floor: list[int], room: int) -> list[int]:
    """``widths``, the widest column that can giving up a column at a time, until they fit ``room`` or every
    column is at its ``floor``."""
    widths = list(widths)
    while sum(widths) > room:
        shrinkable = [i for i, w in enumerate(widths) if w > floor[i]]
        if not shrinkable:
            break
        widths[max(shrinkable, key=lambda i: widths[i])] -= 1
    return widths


def _longest_piece(column: Sequence[str], breaks: re.Pattern[str]) -> int:
    return max(width(piece.rstrip()) for cell in column for line in cell.split("\n") for piece in breaks.split(line))


def _layout(columns: list[list[str]], max_width: int) -> tuple[list[int], re.Pattern[str]]:
    """Column widths that fit ``max_width`` with the gaps, and where their cells break: at separators if
    the table fits so, else between Chinese characters too, else cutting words (down to the headers or
    :data:`_MIN_COLUMN`). A table of many narrow columns may stay wider."""
    natural = [max(map(width, column)) for column in columns]
    room = max_width - len(_GAP) * (len(columns) - 1)
    least = [max(width(column[0]), min(n, _MIN_COLUMN)) for column, n in zip(columns, natural, strict=True)]
    widths = natural
    for breaks in (SEPARATORS, _CHINESE):
        floor = [max(low, _longest_piece(column, breaks)) for low, column in zip(least, columns, strict=True)]
        widths = _shrunk(natural, floor, room)
        if sum(widths) <= room:
            return widths, breaks
    return _shrunk(widths, least, room), _CHINESE


def render(headers: Sequence[str], rows: Sequence[Sequence[str]], *, max_width: int | None = MAX_WIDTH) -> str:
    """A plain table: a header line, a rule, one line per row (more where a cell wraps or holds a newline).
    ``max_width=None`` never wraps (one line a row, for ``--wide`` and for grep)."""
    columns = [list(map(str, column)) for column in zip(headers, *rows, strict=True)]
    if max_width is None:
        widths, breaks = [max(map(width, column)) for column in columns], SEPARATORS
    else:
        widths, breaks = _layout(columns, max_width)
    lines = [_line(headers, widths), _GAP.join("─" * w for w in widths)]
    for row in rows:
        cells = [str(cell) for cell in row]
        wrapped = [
            wrap(cell, w, breaks) if width(cell) > w or "\n" in cell else [cell]
            for cell, w in zip(cells, widths, strict=True)
        ]
        lines += [_line(parts, widths) for parts in itertools.zip_longest(*wrapped, fillvalue="")]
    return "\n".join(lines)


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return _GAP.join(pad(str(c), w) for c, w in zip(cells, widths, strict=True)).rstrip()
