"""The gap stage in words: distances, shares, the reason given to every ward and the printed
summary."""

from __future__ import annotations

from typing import TYPE_CHECKING


import numpy as np
import pandas as pd

from ..config import MEASURE_LABELS
from ..publish.text import distance_text, per_1000_text, share_percent, walk_text
from .settings import GapSettings
from .walking import KINDS

if TYPE_CHECKING:
    from .need import NeedAssessment


def _kind_text(kind: str, distance: float, minutes: float, share: float,
               threshold: float, any_services: bool) -> str:
    """'nearest needle exchange 2.4 km (39 min walk; 0 % of residents within 20 min)'."""
    if not any_services:
        return f"no {KINDS[kind]} in the study data"
    text = f"nearest {KINDS[kind]} {distance_text(distance, 'rounded')} ({walk_text(minutes)}"
    if np.isfinite(share):
        text += f"; {share_percent(share)} of residents within {threshold:g} min"
    return text + ")"


def gap_reason(i: int, need: NeedAssessment, poor: dict[str, bool], is_gap: bool,
               kind_values: dict[str, tuple[float, float, float]], population: float,
               settings: GapSettings, measure: str, any_services: dict[str, bool],
               any_share: float) -> str:
    """The plain-English reason for one ward's gap status.

    Parameters
    ----------
    i
        Ward position.
    need
        Need assessment of all wards.
    poor
        Per kind, is access poor (``each_kind``); under ``any_service`` both carry the combined
        verdict.
    is_gap
        Is the ward an outreach gap?
    kind_values
        Per kind: (mean distance m, walk minutes, share within the walk).
    population
        The ward's population (NaN when not given).
    settings
        Gap settings.
    measure
        The need measure.
    any_services
        Per kind, does the study have any service of that kind?
    any_share
        Share of residents within reach of any service (``any_service`` rule).

    Returns
    -------
    str
        E.g. "High-High drug possession cluster; nearest needle exchange 2.4 km (39 min walk),
        0 % of residents within a 20-minute walk", or "not a gap: ...", or "not assessed: ...".
    """
    if not need.assessed[i]:
        if not np.isfinite(population):
            return "not assessed: no resident population given"
        if population <= 0:
            return "not assessed: no residents (population 0)"
        return f"not assessed: no {MEASURE_LABELS[measure]} rate"
    threshold = settings.walk_threshold_min
    kinds_poor = [k for k in KINDS if poor[k]]
    if settings.access_rule == "any_service" and kinds_poor:
        access_text = (f"{share_percent(any_share)} of residents within a {walk_text(threshold, 'threshold')} "
                       "of any service (" + "; ".join(
                           _kind_text(k, *kind_values[k], threshold, any_services[k])
                           for k in KINDS) + ")")
    else:
        access_text = "; ".join(_kind_text(k, *kind_values[k], threshold, any_services[k])
                                for k in kinds_poor)
    need_text = " and ".join(need.reasons[i])
    if is_gap:
        return f"{need_text}; {access_text}"
    if need.high[i]:
        shares = [f"{share_percent(kind_values[k][2])} of a {KINDS[k]}" for k in KINDS]
        return (f"not a gap: {need_text}, but residents are within a {walk_text(threshold, 'threshold')} "
                f"of services ({' and '.join(shares)})")
    rate_text = (f"{MEASURE_LABELS[measure]} rate {per_1000_text(need.rate[i])} is not high "
                 f"(higher than {share_percent(need.percentile[i])} of wards")
    rate_text += ", no cluster or hot spot)" if {"lisa", "gi"} & set(need.criteria_used) else ")"
    if kinds_poor:
        return f"not a gap: {rate_text}, though access is poor: {access_text}"
    return f"not a gap: {rate_text}"


def summary_lines(wards: pd.DataFrame, columns: pd.DataFrame, sites: pd.DataFrame,
                  sat_manifest: dict, measure: str, settings: GapSettings) -> list[str]:
    """A few console lines: how many gaps, the top ones, the satellite sites.

    Parameters
    ----------
    wards
        The ward table.
    columns
        The gap columns.
    sites
        The satellite table.
    sat_manifest
        The satellite manifest section.
    measure
        The need measure.
    settings
        Gap settings.

    Returns
    -------
    list[str]
    """
    n_gaps = int(columns["is_outreach_gap"].sum())
    lines = [f"Outreach gaps: {n_gaps} of {len(columns)} wards (need: {MEASURE_LABELS[measure]}; "
             f"walk threshold {settings.walk_threshold_min:g} min)"]
    top = columns[columns["is_outreach_gap"]].sort_values("gap_rank").head(3)
    for idx, row in top.iterrows():
        lines.append(f"  {int(row['gap_rank'])}. {wards.loc[idx, 'ward_name']}: {row['gap_reason']}")
    if len(sites):
        optimal = sat_manifest.get("optimal_need_covered")
        found = (f"optimum {optimal}" if optimal is not None
                 else f"best found {sat_manifest.get('need_covered')}, not proven optimal")
        share = sites["cumulative_share_of_unmet_need"].iloc[-1]
        lines.append(f"Satellite sites: {len(sites)} chosen, covering "
                     + (f"{share_percent(share)} of the unmet need" if pd.notna(share) else "unmet need")
                     + f" ({found}, greedy {sat_manifest.get('greedy_need_covered')})")
        for _, row in sites.iterrows():
            adds = row["share_of_unmet_need_covered"]
            where = row["location"] if isinstance(row.get("location"), str) and row["location"] else row["ward_name"]
            lines.append(f"  {row['rank']}. {row['name']} ({where})"
                         + (f": adds {share_percent(adds)}" if pd.notna(adds) else ""))
    elif "skipped" in sat_manifest:
        lines.append(f"Satellite sites: none ({sat_manifest['skipped']})")
    return lines

