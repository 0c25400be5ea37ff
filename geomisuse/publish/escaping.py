"""Escaping text from input data before it reaches a page, a spreadsheet or a terminal.

folium does not escape popup, tooltip or GeoJSON tooltip values, and its tooltip text sits
inside JavaScript template literals, where ``${...}`` runs. :func:`safe_text` escapes HTML
and also the characters that matter inside a template literal or a JS string.
:func:`script_json` writes data for a ``<script type="application/json">`` block so that no
value can close the block or open another tag.
"""

from __future__ import annotations

import html
import json
import math
import re

import numpy as np
import pandas as pd

_EXTRA = str.maketrans({"$": "&#36;", "`": "&#96;", "\\": "&#92;", "{": "&#123;", "}": "&#125;"})
_SCRIPT = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                         "\u2029": "\\u2029"})


def safe_text(value: object) -> str:
    """``value`` as text that shows literally in HTML, in attributes and in JS template literals.

    ``None``, NaN and ``pd.NA`` become the empty string.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)) or type(value).__name__ == "NAType":
        return ""
    return html.escape(str(value), quote=True).translate(_EXTRA)


def script_json(data: object) -> str:
    """``data`` as compact JSON that is safe inside an HTML ``<script>`` element.

    ``<``, ``>`` and ``&`` are written as ``\\u003c``-style escapes (the parsed values are
    unchanged), so a string holding ``</script>`` or ``<!--`` cannot end the element.
    NaN and infinities are refused.
    """
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.translate(_SCRIPT)


#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_csv_cell(value: object) -> object:
    """A text cell that would start a formula, prefixed with a single quote (as OWASP advises).

    Only text is changed: numbers, including negative ones, stay numbers.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralise_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells cannot be read as formulas by Excel or LibreOffice.

    The cells are those :func:`neutralise_csv_cell` makes of each, worked out per column at
    once (``unmatched.csv`` has hundreds of thousands of rows, most of them repeating a few file
    names and reasons): text columns with pandas' string methods, object columns once per
    distinct value, categoricals once per category.
    """
    out = frame.copy()
    for position in range(out.shape[1]):
        column = out.iloc[:, position]
        if column.dtype == object or pd.api.types.is_string_dtype(column):
            out.isetitem(position, _neutralised(column))
    out.columns = [neutralise_csv_cell(str(c)) for c in out.columns]
    return out


def _neutralised(column: pd.Series) -> pd.Series:
    """:func:`neutralise_csv_cell` of every cell of a text, object or categorical column."""
    if isinstance(column.dtype, pd.StringDtype):
        formula = np.logical_or.reduce([column.str.startswith(start).fillna(False).to_numpy(dtype=bool)
                                        for start in FORMULA_STARTS])
        return column.mask(formula, "'" + column) if formula.any() else column
    if column.dtype != object:  # categoricals map their categories
        return column.map(neutralise_csv_cell)
    try:
        codes, distinct = pd.factorize(column)  # missing values: -1
    except TypeError:  # unhashable values (lists): they are not text either, but look at each
        return column.map(neutralise_csv_cell)
    # Only text changes, and text equals only text: 1, 1.0 and True may share a code, "=1" none.
    formula = np.fromiter((isinstance(v, str) and v.startswith(FORMULA_STARTS) for v in distinct), dtype=bool,
                          count=len(distinct))
    if not formula.any():
        return column
    rows = np.flatnonzero(formula[codes] & (codes >= 0))
    values = column.to_numpy(dtype=object, copy=True)
    values[rows] = ["'" + v for v in values[rows]]
    return pd.Series(values, index=column.index, name=column.name)  # its dtype inferred, as by map


# C0 and C1 control characters, DEL, and the bidirectional overrides that reorder text.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_text(text: object, max_length: int | None = None) -> str:
    """``text`` safe to print on a terminal: control characters (escape sequences, bells,
    carriage returns, bidi overrides) removed, newlines and tabs kept, and with
    ``max_length`` cut to one line of at most that many characters."""
    clean = _CONTROL.sub("", str(text))
    if max_length is not None:
        clean = " ".join(clean.split())
        if len(clean) > max_length:
            clean = clean[:max_length - 1] + "\u2026"
    return clean
