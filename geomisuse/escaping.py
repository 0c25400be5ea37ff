"""Escaping text from input data before it reaches a page.

folium does not escape popup, tooltip or GeoJSON tooltip values, and its tooltip text sits
inside JavaScript template literals, where ``${...}`` runs. :func:`safe_text` escapes HTML
and also the characters that matter inside a template literal or a JS string.
"""

from __future__ import annotations

import html

_EXTRA = str.maketrans({"$": "&#36;", "`": "&#96;", "\\": "&#92;", "{": "&#123;", "}": "&#125;"})


def safe_text(value: object) -> str:
    """``value`` as text that shows literally in HTML, in attributes and in JS template literals."""
    if value is None:
        return ""
    return html.escape(str(value), quote=True).translate(_EXTRA)
