"""Escaping text from input data before it reaches a page.

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
