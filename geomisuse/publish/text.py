"""Every wording of a number a reader sees: distances, rates, counts, shares, changes, months
and periods, and the LISA / Gi* labels in words.

One function per kind of figure, so that the map, the briefings, the gap reasons and the
console say the same thing the same way. The functions return plain text (nothing here
escapes; the map and the templates escape what they show) and import only
:mod:`geomisuse.vocabulary` (and pandas), so any stage may use them without importing publishing's
machinery: the gap stage writes its reasons (a ``wards.csv`` column) with them.

Where two outputs deliberately word one figure differently (a distance to the metre on the map,
to the nearest 10 m in a sentence for a board member), that is a named ``style`` of one
function here, not a second function elsewhere.
"""

from __future__ import annotations

import functools
import math
import os
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ..vocabulary import GI_CONFIDENCE, NOT_SIGNIFICANT, gi_kind

#: Shown for a figure that cannot be given without disclosing a suppressed one.
NOT_SHOWN = "not shown"
_MINUS = "\u2212"


# --------------------------------------------------------------------------------------------
# numbers as published (a count may be hidden: "<5", "c")


def number(value: Any) -> float | None:
    """A published value as a number, or ``None`` when it is hidden (``<5``, ``c``) or missing.

    Parameters
    ----------
    value
        A number, a numeric string (``"1,234"``), a suppression mark, ``None``/NaN/``pd.NA``.
    """
    if value is None or value is pd.NA:
        return None
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def count_text(value: Any, style: str = "page") -> str:
    """A published count as shown.

    Parameters
    ----------
    value
        A count, a published count string (``"1234"``, ``"<5"``, ``"c"``) or missing.
    style
        ``"page"`` (briefings): every number with thousands separators, ``1,234``.
        ``"as published"`` (map tooltips): a string exactly as the published table has it
        (``1234``; the map shows what the CSV says), a number with separators.

    Returns
    -------
    str
        ``<5`` or ``c`` as published; ``""`` when missing.
    """
    if isinstance(value, str) and (style == "as published" or number(value) is None):
        return value.strip()
    value_number = number(value)
    if value_number is None:
        return ""
    return f"{value_number:,.0f}" if math.isfinite(value_number) else ""


def is_hidden(value: Any) -> bool:
    """Whether a published count is suppressed (shown, but not as a number)."""
    return number(value) is None and count_text(value) != ""


def rate_text(value: Any, decimals: int = 1) -> str:
    """A rate per 1,000 residents: ``12.3`` (``decimals`` places, thousands separated); ``""``
    when missing or not a number."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if not math.isfinite(v) else f"{v:,.{decimals}f}"


def per_1000_text(rate: float) -> str:
    """A rate in a sentence: ``12.3 per 1,000`` (one decimal)."""
    return f"{rate:.1f} per 1,000"


#: Finds a rate worded by :func:`per_1000_text` in a sentence, with the ``rate `` before it or
#: the brackets around it ("rate 0.5 per 1,000", "(10.2 per 1,000)"): published gap reasons
#: replace it where the rate's count is hidden.
PER_1000_PATTERN = r"(rate )?\(?\d[\d,]*(\.\d+)? per 1,000\)?"


def signed_count(value: float) -> str:
    """A change in a count with its sign: ``+12``, ``−3`` (a true minus sign), ``0``."""
    return f"{_sign(value)}{abs(int(round(value))):,}"


def signed_percent(value: float) -> str:
    """A relative change with its sign: ``+25%``, ``−3%``."""
    return f"{_sign(value)}{abs(value):.0f}%"


def share_percent(share: float) -> str:
    """A share of residents or of need (0..1) as ``25 %``."""
    return f"{100 * share:.0f} %"


def share_words(share: float) -> str:
    """A top share of wards in words: 0.2 -> ``top fifth``; other shares ``top 15 %``."""
    words = {0.5: "top half", 0.25: "top quarter", 0.2: "top fifth", 0.1: "top tenth"}
    return words.get(round(share, 6), f"top {100 * share:g} %")


def _sign(value: float) -> str:
    return "+" if value > 0 else _MINUS if value < 0 else ""


# --------------------------------------------------------------------------------------------
# distances


def distance_text(metres: Any, style: str = "exact") -> str:
    """A distance for a reader.

    Parameters
    ----------
    metres
        The distance in metres (a number; anything else or non-finite gives ``""``).
    style
        ``"exact"`` (map tooltips, briefings, scale bars): ``853 m`` below a kilometre,
        ``2.4 km`` from one. ``"rounded"`` (gap reasons, a sentence a board member reads):
        to the nearest 10 m from 100 m (``850 m``), ``2.4 km`` from 995 m, so that nothing
        reads ``1000 m``.

    Returns
    -------
    str
    """
    try:
        m = float(metres)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(m):
        return ""
    if style == "rounded":
        if m < 995:
            return f"{int(round(m, -1)) if m >= 100 else int(round(m))} m"
        return f"{m / 1000:.1f} km"
    if style != "exact":
        raise ValueError(f"unknown distance style {style!r}")
    return f"{m:,.0f} m" if m < 1000 else f"{m / 1000:,.1f} km"


# --------------------------------------------------------------------------------------------
# months and periods (months are "YYYY-MM")


def walk_text(minutes: float, style: str = "short") -> str:
    """A walking time in words, the one wording of walks in every output.

    Parameters
    ----------
    minutes
        Minutes of walking.
    style
        ``"short"``: "39 min walk" (a measured time, whole minutes); ``"about"``: "about 39
        minutes' walk" (briefings); ``"threshold"``: "20-minute walk" (a setting, as given);
        ``"label"``: "20-min walk" (map layer names).

    Returns
    -------
    str
    """
    if style == "short":
        return f"{minutes:.0f} min walk"
    if style == "about":
        return f"about {minutes:.0f} minutes' walk"
    if style == "threshold":
        return f"{minutes:g}-minute walk"
    if style == "label":
        return f"{minutes:g}-min walk"
    raise ValueError(f"unknown walk text style {style!r}")


@functools.lru_cache(maxsize=4096)  # pages name the same few dozen months thousands of times
def month_name(month: str, short: bool = False, style: str | None = None) -> str:
    """``2024-04`` -> ``April 2024`` (``Apr 2024`` when ``short``; any ``strftime`` ``style``)."""
    return pd.Period(month, freq="M").strftime(style or ("%b %Y" if short else "%B %Y"))


def span(months: list[str], short: bool = True) -> str:
    """A run of months in a sentence: ``Apr 2024 to Mar 2025`` (one month: ``Apr 2024``)."""
    if not months:
        return ""
    if len(months) == 1:
        return month_name(months[0], short)
    return f"{month_name(months[0], short)} to {month_name(months[-1], short)}"


def half_span(months: list[str]) -> str:
    """A half of a period in a sentence: whole calendar years as years (``2011 to 2015``,
    ``2024``), any other run of months as :func:`span` gives it (``Jan 2025 to Jun 2025``)."""
    whole_years = (len(months) % 12 == 0 and len(months) > 0 and months[0].endswith("-01")
                   and months[-1].endswith("-12")
                   and len(months) == 12 * (int(months[-1][:4]) - int(months[0][:4]) + 1))
    if not whole_years:
        return span(months)
    first, last = months[0][:4], months[-1][:4]
    return first if first == last else f"{first} to {last}"


def period_text(months: list[str]) -> str:
    """A study period for a heading: ``Apr 2024 – Mar 2025 (12 months)``."""
    if not months:
        return ""
    first, last = months[0], months[-1]
    text = month_name(first, True) if first == last else f"{month_name(first, True)} – {month_name(last, True)}"
    return f"{text} ({len(months)} month{'s' if len(months) != 1 else ''})"


# --------------------------------------------------------------------------------------------
# lists of names


def join_names(names: Iterable[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def name_list(names: list[str], limit: int = 6) -> str:
    """Up to ``limit`` names joined as :func:`join_names`, then ``and N more``."""
    if len(names) <= limit:
        return join_names(names)
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"


# --------------------------------------------------------------------------------------------
# Getis-Ord Gi* bins in words (the bins and their confidence are geomisuse.vocabulary's)


def gi_bin_text(gi_bin: int, style: str = "legend") -> str:
    """A Gi* bin (-3..3) in words.

    Parameters
    ----------
    gi_bin
        ``M_gi_bin``.
    style
        ``"legend"`` (map legend): ``Hot spot, 99 % confidence``; ``"short"`` (map tooltip):
        ``Hot, 99 %``; ``"sentence"`` (briefings): ``hot spot (99% confidence)``; ``"reason"``
        (gap reasons): ``hot spot (Gi* 99 %)``. Bin 0 is ``Not significant`` in the map's
        styles and ``""`` in a sentence or reason.

    Returns
    -------
    str
        ``""`` for a bin outside -3..3.
    """
    level = abs(int(gi_bin))
    if gi_bin == 0:
        return "" if style in ("sentence", "reason") else NOT_SIGNIFICANT
    if level not in GI_CONFIDENCE:
        return ""
    kind, confidence = gi_kind(gi_bin), GI_CONFIDENCE[level]
    if style == "legend":
        return f"{kind.capitalize()} spot, {confidence} % confidence"
    if style == "short":
        return f"{kind.capitalize()}, {confidence} %"
    if style == "sentence":
        return f"{kind} spot ({confidence}% confidence)"
    if style == "reason":
        return f"{kind} spot (Gi* {confidence} %)"
    raise ValueError(f"unknown Gi* wording style {style!r}")


# --------------------------------------------------------------------------------------------
# when a page was made and from what


def production_date() -> str:
    """Today's date as "1 December 2026", or the date of ``SOURCE_DATE_EPOCH`` when it is set
    (reproducible builds: the same inputs then give byte-identical pages)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    day = (datetime.fromtimestamp(int(epoch), tz=timezone.utc).date() if epoch and epoch.isdigit()
           else date.today())
    return f"{day.day} {day:%B %Y}"


def vintage_text(run) -> str:
    """When a page was made and what data it shows: the production date, the period and the
    boundary file, e.g. ``Produced 1 December 2026 · data Jan 2025 – Dec 2025 (12 months) ·
    ward boundaries: wards.gpkg``. Plain text: escape it for HTML."""
    parts = [f"Produced {production_date()}"]
    if run.months:
        parts.append(f"data {period_text(run.months)}")
    boundaries = run.layers.get("boundaries")
    if boundaries is not None and boundaries.paths:
        parts.append(f"ward boundaries: {Path(boundaries.paths[0]).name}")
    return " · ".join(parts)


# --------------------------------------------------------------------------------------------
# emerging hot spot categories in words (the categories are geomisuse.vocabulary's)


def step_text(step: str) -> str:
    """A time step label in words: ``2025-12`` -> ``December 2025``; ``2025-Q4``, ``2025`` as they are."""
    if len(step) == 7 and step[4] == "-" and step[5:].isdigit():
        return month_name(step)
    return step.replace("-Q", " Q")


def ehsa_words(category: str, time_step: str, last_step: str, run_length: int | None = None) -> str:
    """An emerging hot spot category in plain words, for a ward page.

    Parameters
    ----------
    category
        ``M_ehsa_category``, e.g. ``new hot spot``.
    time_step
        ``month``, ``quarter`` or ``year``.
    last_step
        The final step's label (``2025-12``).
    run_length
        For a consecutive hot or cold spot: the length of its final run of significant steps.

    Returns
    -------
    str
        E.g. ``a new hot spot: significant only in the last month (December 2025)``; ``""``
        for no pattern or an unknown category.
    """
    parts = category.split()
    if len(parts) != 3 or parts[1] not in ("hot", "cold"):
        return ""
    pattern, kind = parts[0], parts[1]
    last = f"the last {time_step} ({step_text(last_step)})"
    most = f"at least 90 % of {time_step}s"
    strength = "high values" if kind == "hot" else "low values"
    words = {
        "new": f"significant only in {last}, never before",
        "consecutive": (f"significant in each of the last {run_length} {time_step}s and never before"
                        if run_length else f"significant in an unbroken run up to {last}, never before"),
        "intensifying": f"significant in {most} including {last}, and the cluster of {strength} is getting "
                        "stronger",
        "persistent": f"significant in {most} including {last}, with no clear trend",
        "diminishing": f"significant in {most} including {last}, but the cluster of {strength} is getting weaker",
        "sporadic": f"significant in {last} and on and off before, never a {'cold' if kind == 'hot' else 'hot'} "
                    "spot",
        "oscillating": f"significant in {last}, and a {'cold' if kind == 'hot' else 'hot'} spot in an earlier "
                       f"{time_step}",
        "historical": f"significant in {most}, but not in {last}",
    }
    if pattern not in words:
        return ""
    article = "an" if pattern[0] in "aeiou" else "a"
    return f"{article} {category}: {words[pattern]}"
