"""Metropolitan Police drug offences by LSOA and calendar year (the MPS LSOA annual file).

One row per small area (LSOA 2011 in the London Datastore's "LSOA Level Crime" files, summed to
years), one column per calendar year (``2011`` ... ``2021``) holding the year's count of the
"Drug Offences" major category; an optional ``MajorText`` column picks that category from a
file of several. There is no monthly breakdown and no possession/trafficking split, so the
layer feeds ``drug_offences`` with **yearly** counts (see :mod:`geomisuse.wardtable`, "Annual
sources"). Small areas become wards as every small-area source does
(:mod:`geomisuse.layers.small_areas`: an ONS best-fit ``lookup``, or the areas' polygons).

The file covers the wards its small areas fall in: the City of London Police's area (the City)
is in no MPS file, so its wards read no data, not zero.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..config import LayerSpec
from ..errors import InputError
from .base import (LayerResult, LoadContext, apply_where, drop_duplicate_rows, find_columns, read_table,
                   reject_bad_numbers)
from .mps_ward import COLUMNS as MPS_COLUMNS, DRUG_MAJOR
from .small_areas import aggregate_areas, small_area_column

_YEAR_COLUMN = re.compile(r"^(19|20)\d\d$")
#: The only measure the annual file holds (the whole Drug Offences major category).
MEASURE = "drug_offences"


def load_mps_lsoa(spec: LayerSpec, context: LoadContext) -> LayerResult:
    """Read the MPS LSOA annual file into yearly drug offence counts per study ward.

    Parameters
    ----------
    spec
        ``[layers.mps_lsoa]``: ``path``; ``lookup`` (ONS best-fit lookup CSV, or a list adding
        the LSOA 2011 -> 2021 lookup) or ``areas`` (the small areas' polygons); optional
        ``columns`` (``lsoa_code``, ``major``) and ``where``.
    context
        The study's wards, its period (``[study] period`` must be whole calendar years) and
        the months read (the period and the one before it: years wholly inside them are read,
        the other year columns are ignored).

    Returns
    -------
    LayerResult
        ``table``: DataFrame ``ward_code, year (YYYY), measure ("drug_offences"), count`` (one
        row per study ward the file covers and year read); ``years``: the years read; ``wards``:
        the study wards holding at least one of the file's small areas. Accounting is per
        source row (one small area): used, excluded (``ward not in the study area``, another
        crime category, ``duplicate row``) or rejected (``small area not in the lookup``, a bad
        count in a year read).

    Raises
    ------
    InputError
        No year columns, a period that is not whole calendar years or holds none of the file's
        years, no small-area code column, or the small areas and the lookup not matching.
    """
    path = spec.paths[0]
    frame = read_table(path, "mps_lsoa")
    layer = LayerResult("mps_lsoa", [path], frame, rows_read=len(frame))
    apply_where(layer, spec.options.get("where"), path)
    years = _year_columns(frame, path)
    span = f"{years[0]} to {years[-1]}"
    _check_whole_years(context.period, path, span)
    wanted = [y for y in years if context.months is None or _months_of(y) <= set(context.months)]
    if not wanted:
        raise InputError(f"no year column falls in the study period (the file has calendar years {span}); change "
                         "[study] period", path)
    area_column = spec.columns.get("lsoa_code") or small_area_column(layer.table)
    if area_column is None or area_column not in layer.table:
        raise InputError("no small-area code column (LSOA11CD, LSOA21CD ... holding E01... codes); map it as "
                         "columns = {lsoa_code = \"...\"} under [layers.mps_lsoa]", path, column="LSOA11CD")
    major = find_columns(layer.table, path, "mps_lsoa", {"major": MPS_COLUMNS["major"]}, spec.columns,
                         optional=("major",))["major"]
    everything = layer.table
    if major:  # a file of several major categories: drug offences only
        category = layer.table[major].astype(str).str.strip().str.lower()
        layer.exclude(layer.table[category != DRUG_MAJOR], "crime category not analysed")
    drop_duplicate_rows(layer, years, path)
    counts = reject_bad_numbers(layer, layer.table[wanted], "count", integer=True)
    layer.table = layer.table.drop(columns=years).join(counts)
    summed, mapping = aggregate_areas(layer, area_column, wanted, spec.options, context)
    layer.paths = [*layer.paths, *mapping.paths]
    layer.warnings.extend(mapping.warnings)
    # Coverage is every study ward holding one of the file's small areas (any row, as the MPS
    # ward file's is any listed ward): a ward none of whose areas is in the file has no data.
    covered = everything[area_column].astype(str).str.strip().map(mapping.ward_of).dropna()
    layer.wards = frozenset(covered) & context.ward_codes
    long = summed.melt(id_vars="ward_code", value_vars=wanted, var_name="year", value_name="count")
    long = long.assign(measure=MEASURE, count=long["count"].astype("int64"))
    layer.table = long[["ward_code", "year", "measure", "count"]].sort_values(
        ["ward_code", "year"], kind="stable").reset_index(drop=True)
    layer.years = wanted
    return layer


def _year_columns(frame: pd.DataFrame, path: Path) -> list[str]:
    """The file's calendar-year columns (``YYYY``), in order."""
    columns = sorted(c for c in frame.columns if _YEAR_COLUMN.match(str(c)))
    if not columns:
        raise InputError("no year columns (YYYY, e.g. 2019); is this the MPS LSOA-level annual file? (the "
                         "monthly MPS files have YYYYMM columns: read a ward file with [layers.mps_ward])", path)
    return columns


def _months_of(year: str) -> set[str]:
    return {f"{year}-{m:02d}" for m in range(1, 13)}


def _check_whole_years(period: tuple[str, str] | None, path: Path, span: str) -> None:
    """Refuse a study period that is not whole calendar years: an annual count cannot be cut
    to months, and counting a whole year for part of one would overstate it."""
    if period is None or (period[0].endswith("-01") and period[1].endswith("-12")):
        return
    first = period[0][:4] if period[0].endswith("-01") else str(int(period[0][:4]) + 1)
    last = period[1][:4] if period[1].endswith("-12") else str(int(period[1][:4]) - 1)
    hint = (f'period = ["{first}-01", "{last}-12"]' if first <= last else
            f'period = ["{period[0][:4]}-01", "{period[1][:4]}-12"]')
    raise InputError(f"its counts are calendar-year totals ({span}) and [study] period {period[0]} to {period[1]} "
                     f"is not whole years; give whole calendar years, e.g. {hint}, or leave this layer out", path)


__all__ = ["MEASURE", "load_mps_lsoa"]
