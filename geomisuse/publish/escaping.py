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
    """A copy of ``frame`` whose text cells cannot be read as formulas by Excel or LibreOffice."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise_csv_cell)
    out.columns = [neutralise_csv_cell(str(c)) for c in out.columns]
    return out


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
