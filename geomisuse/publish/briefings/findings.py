"""Plain-words sentences for the ward briefings, generated from the numbers.

Everything here works on *published* figures only (suppressed counts as ``<5``/``c``), so a
sentence can never say more than the tables beside it. The functions return plain text;
the templates escape it.

* :func:`change` - how a count moved between two periods, without disclosing a suppressed
  count (no exact difference when either side is hidden);
* :func:`cluster_words` - one ward's cluster status ("part of a High-High drug possession
  cluster with X and Y");
* :func:`key_findings` - the borough overview's findings: strongest clusters, biggest changes,
  top outreach gaps and suggested satellite sites;
* :func:`suggestions` - what the data suggests doing in one ward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ...config import MEASURE_LABELS
from ...vocabulary import GI_CONFIDENCE, HIGH_HIGH, HIGH_LOW, LISA_CLUSTERS, LOW_HIGH
from ..text import (NOT_SHOWN, count_text, gi_bin_text, join_names, name_list, number, signed_count,
                    signed_percent)


@dataclass
class Change:
    """How a published count moved from ``before`` to ``after``.

    Attributes
    ----------
    before, after
        The two counts as shown (``12``, ``<5``, ``c``, ``not shown``, ``""``).
    text
        Short words for a table cell: ``+12 (+25%)``, ``up from <5``, ``not shown``.
    difference
        ``after - before`` when both are published numbers, else ``None`` (never derived from
        a hidden count).
    percent
        The relative change in percent when ``difference`` is known and ``before > 0``.
    """

    before: str
    after: str
    text: str
    difference: float | None = None
    percent: float | None = None


def change(before: Any, after: Any, threshold: int) -> Change:
    """Compare two published counts without disclosing a suppressed one.

    Only two published numbers give an exact difference. Where one side is ``<threshold``
    the direction may still be certain ("up from <5"); anything involving ``c`` or a
    withheld figure is "not shown".
    """
    b, a = number(before), number(after)
    b_text, a_text = count_text(before), count_text(after)
    if b is not None and a is not None:
        diff = a - b
        if diff == 0:
            return Change(b_text, a_text, "no change", 0.0, 0.0 if b > 0 else None)
        pct = diff / b * 100 if b > 0 else None
        text = signed_count(diff) + (f" ({signed_percent(pct)})" if pct is not None else " (from 0)")
        return Change(b_text, a_text, text, diff, pct)
    if b_text == "" and a_text == "":
        return Change(b_text, a_text, "no data")
    if b_text == "":
        return Change(b_text, a_text, "no earlier data")
    if a_text == "":
        return Change(b_text, a_text, "no data")
    small = f"<{threshold}"
    if b_text == small and a is not None:
        if a >= threshold:
            return Change(b_text, a_text, f"up from {small}")
        if a == 0:
            return Change(b_text, a_text, f"down from {small} to 0")
    if a_text == small and b is not None:
        if b >= threshold:
            return Change(b_text, a_text, f"down to {small}")
        if b == 0:
            return Change(b_text, a_text, f"up from 0 to {small}")
    if a_text == small and b_text == small:
        return Change(b_text, a_text, f"{small} in both")
    return Change(b_text, a_text, NOT_SHOWN)


def cluster_words(measure: str, label: str | None, others: list[str], p_value: float | None = None,
                  gi_bin: int | None = None) -> str:
    """One ward's cluster status for one measure, in words.

    Parameters
    ----------
    measure
        Measure key (``possession`` ...).
    label
        Local Moran quadrant (``High-High`` ... ``Not significant``), or ``None`` when the
        cluster stage did not run.
    others
        Names of the other wards of the same significant cluster (queen neighbours with the
        same label, transitively).
    p_value
        LISA pseudo p-value.
    gi_bin
        Getis-Ord Gi* confidence bin (-3..3), or ``None``.
    """
    what = MEASURE_LABELS.get(measure, measure)
    p = f" (p = {p_value:.3f})" if p_value is not None and not math.isnan(p_value) else ""
    if label in LISA_CLUSTERS:
        level = "high" if label == HIGH_HIGH else "low"
        if others:
            text = f"Part of a {label} {what} cluster with {join_names(others)}{p}."
        else:
            text = (f"A {label} {what} ward{p}: {level}, with {level} neighbours, though no neighbour is "
                    "significant itself.")
    elif label == HIGH_LOW:
        text = f"A {HIGH_LOW} {what} outlier{p}: high, surrounded by lower wards."
    elif label == LOW_HIGH:
        text = f"A {LOW_HIGH} {what} outlier{p}: low, surrounded by higher wards."
    elif label is None or (isinstance(label, float) and math.isnan(label)):
        text = f"No cluster statistics for {what}."
    else:
        text = f"Not part of a significant {what} cluster."
    if gi_bin is not None and int(gi_bin) != 0:
        text += f" Getis-Ord Gi*: {gi_bin_text(max(-3, min(3, int(gi_bin))), 'sentence')}."
    return text


#: How many findings the overview leads with.
HEADLINE_FINDINGS = 5


def key_findings(data: dict) -> list[str]:
    """The borough overview's findings as short sentences, the ones that matter most first.

    A CDP meeting reads the first few: they are, in this order, the top outreach gap, the
    strongest High-High cluster, the strongest hot spot, the largest rise, the first
    suggested satellite site; then the rest of each kind in the same order. The overview
    shows the first :data:`HEADLINE_FINDINGS` as its key findings and the rest below them.

    ``data`` holds (see :func:`geomisuse.briefings.build_data`): ``measures``, ``clusters``
    (measure -> list of clusters with ``label``, ``names``, ``p``), ``hot_spots`` (measure ->
    names at 99% Gi*), ``changes`` (measure -> comparison with ``borough`` Change, ``label``
    and per-ward changes), ``gaps`` (ranked gap wards with ``name``, ``rank``, ``reason``),
    ``satellites`` (ranked sites with ``name``, ``ward_name``, ``share``), and
    ``clusters_ran``/``gaps_ran`` flags.
    """
    # One list per kind of finding, each strongest first; merged by priority at the end.
    gap_lines: list[str] = []
    cluster_lines: list[str] = []
    hot_lines: list[str] = []
    change_lines: list[str] = []
    site_lines: list[str] = []
    other_lines: list[str] = []
    # Strongest clusters: the largest High-High cluster of each measure, strongest first.
    if data["clusters_ran"]:
        high = []
        for measure in data["measures"]:
            for cluster in data["clusters"].get(measure, []):
                if cluster["label"] == HIGH_HIGH:
                    high.append((measure, cluster))
        high.sort(key=lambda mc: (-len(mc[1]["names"]), mc[1]["p"]))
        for measure, cluster in high[:3]:
            names = cluster["names"]
            what = MEASURE_LABELS[measure]
            if len(names) > 1:
                cluster_lines.append(f"{what.capitalize()} clusters in {name_list(names)}: a {HIGH_HIGH} cluster of "
                             f"{len(names)} neighbouring wards with high rates.")
            else:
                cluster_lines.append(f"{names[0]} is a {HIGH_HIGH} {what} ward: a high rate beside high-rate neighbours.")
        for measure in data["measures"]:
            spots = data["hot_spots"].get(measure, [])
            if spots:
                hot_lines.append(f"Getis-Ord Gi* finds a hot spot of {MEASURE_LABELS[measure]} at {GI_CONFIDENCE[3]}% "
                             f"confidence in {name_list(spots)}.")
        if not high and not any(data["hot_spots"].values()):
            other_lines.append(f"No significant {HIGH_HIGH} cluster or {GI_CONFIDENCE[3]}% hot spot was found for any "
                         "measure.")
    else:
        other_lines.append("Cluster statistics were not run for this briefing.")
    # Biggest changes: borough-wide per measure, then the largest exact rises and falls.
    for measure in data["measures"]:
        comparison = data["changes"].get(measure)
        if comparison is None or comparison["mode"] == "none":
            continue
        borough = comparison["borough"]
        if borough.difference is not None:
            other_lines.append(f"Borough-wide, {MEASURE_LABELS[measure]} went from {borough.before} to {borough.after} "
                         f"({comparison['label']}): {borough.text}.")
    moves = []
    for measure in data["measures"]:
        comparison = data["changes"].get(measure)
        if comparison is None or comparison["mode"] == "none" or measure in data.get("totals_of_parts", ()):
            continue
        for name, item in comparison["wards"]:
            if item.difference is not None and item.difference != 0:
                moves.append((item.difference, name, measure, item, comparison["label"]))
    rises = sorted([m for m in moves if m[0] > 0], key=lambda m: -m[0])[:2]
    falls = sorted([m for m in moves if m[0] < 0], key=lambda m: m[0])[:1]
    for diff, name, measure, item, label in rises + falls:
        word = "rose" if diff > 0 else "fell"
        change_lines.append(f"{name}: {MEASURE_LABELS[measure]} {word} from {item.before} to {item.after}, "
                            f"{item.text}: {label}.")
    if not any(c["mode"] != "none" for c in data["changes"].values()):
        other_lines.append("No earlier period in the data, so no changes are reported.")
    # Outreach gaps and satellite sites.
    if data["gaps_ran"]:
        gaps = data["gaps"][:3]
        for gap in gaps:
            reason = f": {gap['reason']}" if gap["reason"] else ""
            gap_lines.append(f"{gap['name']} is outreach gap number {gap['rank']}{reason}.")
        if not gaps:
            other_lines.append("No ward is flagged as an outreach gap.")
        for site in data["satellites"][:3]:
            share = (f", adding {site['share']} of the unmet need within walking reach" if site["share"] else "")
            if site.get("residents"):
                share += f" (about {site['residents']} more residents within a walk)"
            where = f" ({site['ward_name']} ward)" if site["ward_name"] else ""
            site_lines.append(f"Suggested satellite site {site['rank']}: {site.get('finding_name', site['name'])}"
                              f"{where}{share}.")
    else:
        other_lines.append("The outreach gap analysis was not run for this briefing.")
    kinds = [gap_lines, cluster_lines, hot_lines, change_lines, site_lines]
    ordered = [kind[0] for kind in kinds if kind] + [line for kind in kinds for line in kind[1:]]
    return ordered + other_lines


def suggestions(ward: dict) -> list[str]:
    """What the data suggests doing in one ward (rule-based, from the ward's published figures).

    ``ward`` holds ``name``, ``clusters`` (list of dicts with ``measure``, ``label``,
    ``others``), ``gap`` (dict or ``None``), ``satellites_here`` and ``satellites_near``
    (site names), ``rises`` (measure labels with an exact rise of 25% or more), ``estates``
    (names) and ``within_reach`` (number of services and needle exchanges within walking reach).
    """
    out = []
    for item in ward["clusters"]:
        what = MEASURE_LABELS[item["measure"]]
        if item["label"] == HIGH_HIGH:
            if item["others"]:
                out.append(f"Plan {what} work jointly with {join_names(item['others'])}: the cluster crosses "
                           "ward boundaries.")
            else:
                out.append(f"Review {what} here alongside the neighbouring wards.")
        elif item["label"] == HIGH_LOW:
            out.append(f"Look for a local cause of high {what}: the neighbouring wards are lower.")
    gap = ward["gap"]
    if gap and gap["is_gap"]:
        if ward["satellites_here"]:
            out.append(f"Consider satellite outreach at {join_names(ward['satellites_here'])}.")
        elif ward["satellites_near"]:
            out.append(f"Consider satellite outreach nearby, at {join_names(ward['satellites_near'])}.")
        else:
            out.append("Consider satellite outreach: residents are far from treatment and needle exchanges.")
    elif ward["within_reach"] == 0:  # None: the study has no service layers
        out.append("No treatment service or needle exchange within walking reach: check how residents get to one.")
    for what in ward["rises"]:
        out.append(f"{what.capitalize()} rose by a quarter or more: check with local teams whether this is "
                   "activity or enforcement.")
    if ward["estates"] and ward["clusters"] and any(c["label"] == HIGH_HIGH for c in ward["clusters"]):
        out.append(f"Involve housing for {join_names(ward['estates'])}.")
    if not out:
        out.append("No specific action suggested by the data; keep under routine review.")
    return out
