"""The ward table as the files analysts open: a CSV for Excel and a GeoPackage for QGIS.

The published table (:func:`geomisuse.publish.tables.published_wards`) holds suppressed counts
as text (``<5``, ``c``) beside numbers. That is right for a CSV read by people, but a
GeoPackage column of text cannot be styled as a number in QGIS; so each file gets its own
shape of the same published values:

- ``wards.csv``: whole numbers without ``.0`` (populations, counts, ranks), rates to one
  decimal, distances to the metre, minutes and percentages to one decimal, shares and scores to three
  decimals, statistics to three decimals and p-values to five (the finest a 99,999-permutation
  p-value has);
- ``wards.gpkg``: every count column numeric (empty where it is not published) with a
  ``M_count_status`` column beside it saying why: ``published``, ``<5`` (1 to 4),
  ``c`` (hidden to protect another count) or ``no data``.

Nothing here decides what is published: it only formats what disclosure control let through.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

#: Published values that stand for a count that is not shown.
NO_DATA = "no data"
PUBLISHED = "published"

_COUNT = re.compile(r"(_count|_previous_count|_within_walk)$")
_RATE = re.compile(r"_rate_per_1000$")
_P = re.compile(r"(_p|_p_adjusted|_p_sim|_change_p|_trend_p)$")
_STAT = re.compile(r"(_lisa_i|_lisa_z|_gi_z|_trend_z|_z)$")
_SHARE = re.compile(r"^(share_|gap_score$)")
_METRES = re.compile(r"_m$")
_MINUTES = re.compile(r"_min$")
_PERCENT = re.compile(r"_pct$")
_WHOLE = {"population", "gap_rank"}


def _is_count(column: str) -> bool:
    return bool(_COUNT.search(column)) or column in _WHOLE


def _whole_numbers(values: pd.Series) -> pd.Series:
    """Numbers as integers (no ``.0``); any text (``<5``, ``c``) kept as it is."""
    numeric = pd.to_numeric(values, errors="coerce")
    finite = numeric.notna() & np.isfinite(numeric.astype("float64"))
    if finite.all() and values.notna().all():
        return numeric.round().astype("int64")
    out = values.astype(object).copy()
    out[finite] = numeric[finite].round().astype("int64").astype(object)
    return out


def _rounded(values: pd.Series, decimals: int) -> pd.Series:
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values
    return values.round(decimals)


def csv_table(wards: pd.DataFrame) -> pd.DataFrame:
    """The published ward table shaped for ``wards.csv`` (see the module docstring); the
    geometry column is dropped. The input is not changed."""
    table = pd.DataFrame(wards.drop(columns="geometry", errors="ignore")).copy()
    for column in table.columns:
        values = table[column]
        if _is_count(column):
            table[column] = _whole_numbers(values)
        elif _RATE.search(column):
            table[column] = _rounded(values, 1)
        elif _P.search(column):
            table[column] = _rounded(values, 5)
        elif _STAT.search(column):
            table[column] = _rounded(values, 3)
        elif _SHARE.search(column):
            table[column] = _rounded(values, 3)
        elif column == "area_km2":
            table[column] = _rounded(values, 3)
        elif _METRES.search(column):
            table[column] = _whole_numbers(values) if pd.api.types.is_numeric_dtype(values) else values
        elif _MINUTES.search(column) or _PERCENT.search(column):
            table[column] = _rounded(values, 1)
    return table


def gpkg_table(wards: pd.DataFrame) -> pd.DataFrame:
    """The published ward table shaped for ``wards.gpkg``: count columns numeric (nullable
    integers, empty where not published) each followed by ``<column>_status``. The input is
    not changed."""
    table = wards.copy()
    for column in [c for c in table.columns if _COUNT.search(c)]:
        values = table[column]
        numeric = pd.to_numeric(values, errors="coerce")
        # A count published in full (a public source) is numeric already; it still gets its
        # status column, so that every study's GeoPackage has the same fields.
        text = values.astype(object).where(values.notna(), None)
        status = np.where(numeric.notna(), PUBLISHED,
                          np.where(pd.isna(text), NO_DATA, text.astype(str).str.strip()))
        table[column] = numeric.round().astype("Int64")
        position = table.columns.get_loc(column) + 1
        table.insert(position, f"{column}_status", status.astype(object))
    if "population" in table:
        table["population"] = pd.to_numeric(table["population"], errors="coerce").round().astype("Int64")
    return table
