"""The briefings' answer to "where is it getting worse?": each ward's emerging hot spot category
in words with its Gi* series as a small chart, the overview's list of emerging hot spots (new
and intensifying first), and the "largest increases" and "significant increases" tables.

Everything here reads the run's published ward table (change figures of hidden counts are
already empty there, see :func:`geomisuse.publish.disclosure.blank_derived`) and the run's
space-time Gi* bins (z-scores, not counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from markupsafe import Markup, escape

from ...config import MEASURE_LABELS
from ...vocabulary import EHSA_CATEGORIES, EHSA_NO_PATTERN
from ..text import count_text, ehsa_words, number, signed_count, signed_percent, step_text

if TYPE_CHECKING:
    from ...pipeline import StudyRun

#: Rows in each overview table of increases.
INCREASE_ROWS = 10
#: z of a two-sided 5 % test, drawn as the chart's guide lines.
Z_GUIDE = 1.96


def emerging_settings(run: StudyRun) -> dict:
    """The emerging section of the run's clusters manifest (``{}`` when the analysis did not run)."""
    return run.manifest.get("clusters", {}).get("emerging", {})


@dataclass
class GiSeries:
    """The run's space-time Gi* bins arranged for ward pages (:func:`gi_series_by_ward`).

    Attributes
    ----------
    rows
        Ward code -> positions of its bins, in step order.
    steps
        Each bin's step (``YYYY-MM``, ``YYYY-Qn`` or ``YYYY``).
    z, p_adjusted
        Measure -> each bin's Gi* z and its p-value after the correction.
    """

    rows: dict[str, np.ndarray]
    steps: np.ndarray
    z: dict[str, np.ndarray]
    p_adjusted: dict[str, np.ndarray]


def gi_series_by_ward(run: StudyRun, measures: list[str]) -> GiSeries | None:
    """The run's Gi* bins as plain arrays with each ward's row positions, found once (``None``
    without emerging hot spots).

    Ward pages each read their own rows; selecting them from the table ward by ward cost a
    London-wide study's briefings seconds.
    """
    bins = run.emerging_bins
    if bins is None or not len(bins):
        return None
    codes, uniques = pd.factorize(bins["ward_code"].astype(str))
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    shown = [m for m in measures if f"{m}_gi_z" in bins]
    return GiSeries(rows={str(code): order[starts[g]:starts[g + 1]] for g, code in enumerate(uniques)},
                    steps=bins["step"].astype(str).to_numpy(dtype=object),
                    z={m: bins[f"{m}_gi_z"].to_numpy(dtype=float, na_value=np.nan) for m in shown},
                    p_adjusted={m: bins[f"{m}_gi_p_adjusted"].to_numpy(dtype=float, na_value=np.nan)
                                for m in shown})


def ward_emerging(run: StudyRun, real: pd.DataFrame, measures: list[str], i: int,
                  series: GiSeries | None, charts: bool = True) -> list[dict]:
    """Ward ``i``'s emerging hot spot categories: one item per measure with a category.

    Parameters
    ----------
    run, real, measures
        The run, its ward table (positions as ``i``) and the measures shown.
    i
        The ward's position.
    series
        :func:`gi_series_by_ward` of the run.
    charts
        Draw the Gi* series (ward pages); an overview's ward list needs only the words.

    Returns
    -------
    list of dict
        ``measure``, ``label``, ``category``, ``words`` (plain sentence) and ``chart`` (SVG of
        the Gi* z series, for a ward with a pattern; ``None`` without ``charts``).
    """
    settings = emerging_settings(run)
    rows = series.rows.get(str(real["ward_code"].iloc[i])) if series is not None else None
    alpha = settings.get("alpha", 0.05)
    items = []
    for m in measures:
        column = f"{m}_ehsa_category"
        if column not in real or not isinstance(real[column].iloc[i], str):
            continue
        category = real[column].iloc[i]
        record = settings.get("by_measure", {}).get(m, {})
        step, last = settings.get("time_step", "month"), record.get("last_step", "")
        has_series = rows is not None and m in series.z
        run_length, significant = None, np.zeros(0, dtype=bool)
        if has_series:
            # A bin is hot or cold at the analysis's alpha after the correction (clusters/emerging.py).
            significant = series.p_adjusted[m][rows] <= alpha
            if category.startswith("consecutive"):
                flags = significant[::-1]
                run_length = int(np.argmin(flags)) if not flags.all() else len(flags)
        words = ehsa_words(category, step, last, run_length)
        label = MEASURE_LABELS[m]
        items.append({
            "measure": m, "label": label, "category": category,
            "words": f"{label.capitalize()}: {words}." if words else f"{label.capitalize()}: no emerging pattern.",
            "chart": (gi_series_svg(series.steps[rows].tolist(), series.z[m][rows].tolist(),
                                    significant.tolist(), f"e{i}-{m}")
                      if charts and has_series and category != EHSA_NO_PATTERN else None),
        })
    return items


def emerging_list(real: pd.DataFrame, measures: list[str], pages: list[str]) -> list[dict]:
    """The overview's emerging hot spots: per category (new and intensifying hot spots first),
    per measure, the wards in it.

    Returns
    -------
    list of dict
        ``category``, ``measure``, ``label``, ``wards`` (list of ``(code, page, name)``).
    """
    out = []
    for category in EHSA_CATEGORIES:
        if category == EHSA_NO_PATTERN:
            continue
        for m in measures:
            column = f"{m}_ehsa_category"
            if column not in real:
                continue
            rows = np.flatnonzero((real[column] == category).to_numpy())
            if len(rows):
                out.append({"category": category, "measure": m, "label": MEASURE_LABELS[m],
                            "wards": [(str(real["ward_code"].iloc[k]), pages[k], str(real["ward_name"].iloc[k]))
                                      for k in rows]})
    return out


def increase_tables(pub: pd.DataFrame, measures: list[str], pages: list[str],
                    skip: set[str]) -> dict[str, list[dict]]:
    """The overview's "largest increases" and "significant increases" (exact test, after the
    correction), from published figures.

    Parameters
    ----------
    pub
        The published ward table (row order = ``pages``).
    measures
        Measures shown.
    pages
        Page file of each ward.
    skip
        Measures that are totals of others shown (all drug offences with MPS parts).

    Returns
    -------
    dict
        ``largest`` and ``significant``: rows with ``code``, ``page``, ``name``, ``label``,
        ``previous``, ``count``, ``change``, ``percent``, ``p``; largest first.
    """
    rows = []
    for m in measures:
        if m in skip or f"{m}_change" not in pub or f"{m}_previous_count" not in pub:
            continue
        for k in range(len(pub)):
            difference = number(pub[f"{m}_change"].iloc[k])
            if difference is None or difference <= 0:
                continue
            percent = number(pub[f"{m}_change_pct"].iloc[k])
            p_value = number(pub[f"{m}_change_p_adjusted"].iloc[k])
            significant = pub[f"{m}_change_significant"].iloc[k]
            rows.append({
                "code": str(pub["ward_code"].iloc[k]), "page": pages[k], "name": str(pub["ward_name"].iloc[k]),
                "label": MEASURE_LABELS[m], "previous": count_text(pub[f"{m}_previous_count"].iloc[k]),
                "count": count_text(pub[f"{m}_count"].iloc[k]), "difference": difference,
                "change": signed_count(difference), "percent": "" if percent is None else signed_percent(percent),
                "p": "" if p_value is None else (f"{p_value:.3f}" if p_value >= 0.001 else "<0.001"),
                "significant": bool(significant) if significant is not None and not pd.isna(significant) else False,
            })
    rows.sort(key=lambda r: (-r["difference"], r["name"], r["label"]))
    return {"largest": rows[:INCREASE_ROWS], "significant": [r for r in rows if r["significant"]][:INCREASE_ROWS]}


def gi_series_svg(steps: list[str], z: list, significant: list[bool], uid: str) -> Markup:
    """A small line chart of a ward's Gi* z-score per step, guide lines at ±1.96, each step's
    dot filled red where it is a significant hot spot after the correction, blue where a cold
    spot, white otherwise (``uid`` keeps ids unique on a page of many charts)."""
    width, height, left, right, top, bottom = 300, 90, 28, 6, 8, 14
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [number(v) for v in z]
    finite = [v for v in values if v is not None]
    bound = max([abs(v) for v in finite] + [Z_GUIDE + 0.5])
    step_w = plot_w / max(len(steps) - 1, 1)

    def x(k: int) -> float:
        return left + k * step_w

    def y(v: float) -> float:
        return top + (bound - v) / (2 * bound) * plot_h

    parts = [f'<svg class="chart gi-series" viewBox="0 0 {width} {height}" role="img" '
             f'xmlns="http://www.w3.org/2000/svg" id="{escape(uid)}"><title>Gi* z-score by step</title>',
             f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - right}" y2="{y(0):.1f}" stroke="#444" stroke-width="0.6"/>']
    for guide in (Z_GUIDE, -Z_GUIDE):
        parts.append(f'<line x1="{left}" y1="{y(guide):.1f}" x2="{width - right}" y2="{y(guide):.1f}" '
                     f'stroke="#999" stroke-width="0.6" stroke-dasharray="3 2"/>')
        parts.append(f'<text x="{left - 3}" y="{y(guide) + 3:.1f}" class="tick" text-anchor="end">'
                     f'{"+" if guide > 0 else "−"}1.96</text>')
    points = [(x(k), y(v)) for k, v in enumerate(values) if v is not None]
    if len(points) > 1:
        parts.append('<polyline fill="none" stroke="#555" stroke-width="1" points="'
                     + " ".join(f"{a:.1f},{b:.1f}" for a, b in points) + '"/>')
    for k, (step, v, flag) in enumerate(zip(steps, values, significant)):
        if v is None:
            continue
        fill = "#fff" if not flag else "#d62f27" if v > 0 else "#4575b5"
        parts.append(f'<circle cx="{x(k):.1f}" cy="{y(v):.1f}" r="2.4" fill="{fill}" stroke="#333" '
                     f'stroke-width="0.6"><title>{escape(step_text(step))}: z {v:.2f}</title></circle>')
    for k in (0, len(steps) - 1):
        if steps:
            parts.append(f'<text x="{x(k):.1f}" y="{height - 3}" class="tick" '
                         f'text-anchor="{"start" if k == 0 else "end"}">{escape(step_text(steps[k]))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
