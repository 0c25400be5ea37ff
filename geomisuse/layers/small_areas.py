"""Small-area sources (LSOA or OA) aggregated to wards.

Analysts often have counts by Lower layer Super Output Area (LSOA) or Output Area (OA) rather
than by ward: Census tables, ONS small-area population estimates, the MPS LSOA file. A layer
given by small area names how its areas become wards:

* ``lookup = "lookup.csv"`` — an ONS best-fit lookup (small-area code -> ward code columns,
  e.g. ``LSOA21CD`` -> ``WD25CD``). A list may add an ONS LSOA 2011 -> 2021 lookup
  (``lsoa11cd, lsoa21cd``) when the source uses the other LSOA vintage.
* ``areas = "lsoa.gpkg"`` — the small areas' polygons: each area goes to the study ward that
  holds a point inside it (the best fit the ONS lookups also use).

Small areas whose ward is not a study ward are excluded; areas the lookup does not know are
rejected (listed in ``unmatched.csv``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..errors import InputError
from .base import NOT_IN_LOOKUP, LayerResult, LoadContext, read_table, read_vector
from .ward_join import OUTSIDE, WardLocator

#: Small-area code column names in ONS, Nomis and Census downloads, in order of preference.
AREA_CODE_COLUMNS = ["LSOA21CD", "LSOA11CD", "OA21CD", "OA11CD", "Lower layer Super Output Areas Code",
                     "Output Areas Code", "lsoa_code", "LSOA code", "oa_code", "GEOGRAPHY_CODE", "geography code"]
#: GSS prefixes of small areas: E01/W01 LSOA, E00/W00 OA.
_AREA_PREFIX = re.compile(r"^[EW]0[01]\d{6}$")
_AREA_COLUMN = re.compile(r"^(lsoa|oa)(\d\d)cd$")
_WARD_COLUMN = re.compile(r"^wd(\d\d)cd$")


def small_area_column(frame: pd.DataFrame) -> str | None:
    """The column of small-area codes (most values ``E01…``/``E00…``), or ``None``."""
    folded = {_fold(c): c for c in frame.columns}
    candidates = [folded[_fold(c)] for c in AREA_CODE_COLUMNS if _fold(c) in folded]
    candidates += [c for c in frame.columns if _AREA_COLUMN.match(str(c).lower()) and c not in candidates]
    for column in candidates:
        values = frame[column].astype(str).str.strip()
        values = values[values != ""]
        if len(values) and values.str.match(_AREA_PREFIX).mean() > 0.5:
            return column
    return None


@dataclass
class AreaWards:
    """Which study ward each small area belongs to.

    Attributes
    ----------
    ward_of
        Small-area code -> ward code (any ward the lookup names, not only the study's).
    method
        How it was found, in words, for warnings and the manifest.
    paths
        The lookup or polygon files read.
    warnings
        Messages (areas split between wards, vintages bridged).
    """

    ward_of: pd.Series
    method: str
    paths: list[Path]
    warnings: list[str] = field(default_factory=list)


def wards_of_areas(codes: pd.Series, options: dict, context: LoadContext, kind: str,
                   path: Path) -> AreaWards:
    """Map a source's small-area codes to wards through its ``lookup`` or ``areas`` option.

    Parameters
    ----------
    codes
        The source's small-area codes (one per row; repeats allowed).
    options
        The layer's study-file options; ``lookup`` (path or list of paths) or ``areas``.
    context
        The study's wards (``ward_geometry`` is needed for ``areas``).
    kind, path
        Layer kind and source file, for messages.

    Returns
    -------
    AreaWards

    Raises
    ------
    InputError
        Neither option given, a lookup without code columns, or a lookup that matches too few
        of the source's areas (another vintage without the 2011 <-> 2021 lookup).
    """
    if options.get("areas"):
        return _wards_by_polygons(Path(options["areas"]), context, kind)
    lookups = options.get("lookup")
    if not lookups:
        raise InputError(f"{kind} is given by small area (LSOA/OA codes), not by ward; add lookup = "
                         "\"<ONS LSOA to ward best-fit lookup>.csv\" or areas = \"<LSOA polygons>.gpkg\" "
                         f"under [layers.{kind}]", path)
    lookups = [Path(p) for p in (lookups if isinstance(lookups, list) else [lookups])]
    ward_lookups, vintage_lookups = [], []
    for lookup in lookups:
        frame = read_table(lookup, f"{kind} lookup")
        ward_column = next((c for c in frame.columns if _WARD_COLUMN.match(c.lower())), None)
        area_columns = [c for c in frame.columns if _AREA_COLUMN.match(c.lower())]
        if ward_column and area_columns:
            ward_lookups.append((lookup, frame, area_columns[0], ward_column))
        elif len(area_columns) >= 2:
            vintage_lookups.append((lookup, frame, area_columns))
        else:
            raise InputError("not an ONS lookup: expected small-area code columns (LSOA21CD, LSOA11CD, OA21CD "
                             "...) and a ward code column (WD22CD ... WD25CD)", lookup)
    if len(ward_lookups) != 1:
        raise InputError(f"[layers.{kind}] lookup needs exactly one small-area -> ward lookup "
                         f"(found {len(ward_lookups)})", lookups[0])
    lookup, frame, area_column, ward_column = ward_lookups[0]
    ward_of = _unique_map(frame, area_column, ward_column)
    distinct = pd.Index(codes.astype(str).str.strip().unique())
    direct = distinct.isin(ward_of.index).mean() if len(distinct) else 1.0
    method = f"{lookup.name} ({area_column} -> {ward_column})"
    warnings: list[str] = []
    bridged = None
    # Codes missing from the ward lookup may be of the other LSOA vintage: bridge through the
    # vintage lookup when that finds more of them.
    for vintage_path, vintage, columns in (vintage_lookups if direct < 1 else []):
        for source_column in columns:
            for target_column in [c for c in columns if c != source_column]:
                pairs = vintage[[source_column, target_column]].astype(str)
                pairs = pairs[pairs[target_column].isin(ward_of.index)]
                found = distinct.isin(pairs[source_column]).mean()
                if found > direct:
                    bridged, direct = (vintage_path, pairs, source_column, target_column), found
    if direct < 0.5:
        raise InputError(f"only {direct:.0%} of the small-area codes are in {lookup.name} ({area_column}); "
                         "the source uses another vintage: add the ONS LSOA 2011 -> 2021 lookup to "
                         f"[layers.{kind}] lookup = [...] or give areas = \"<its polygons>.gpkg\"", path)
    if bridged is not None:
        vintage_path, pairs, source_column, target_column = bridged
        pairs = pairs.assign(ward=pairs[target_column].map(ward_of))
        # An old area split between new areas in different wards goes to the ward holding most of
        # its new areas (ties: the ward code that sorts first), as ONS best-fit lookups do.
        votes = pairs.groupby([source_column, "ward"]).size().reset_index(name="n")
        votes = votes.sort_values([source_column, "n", "ward"], ascending=[True, False, True], kind="stable")
        parts = votes[votes[source_column].isin(distinct)].groupby(source_column).size()
        split = int((parts > 1).sum())
        ward_of = votes.drop_duplicates(source_column).set_index(source_column)["ward"]
        method = f"{vintage_path.name} ({source_column} -> {target_column}), then {method}"
        lookups = [vintage_path, lookup]
        if split:
            warnings.append(f"{kind}: {split} small area(s) of {source_column} split between wards in "
                            f"{vintage_path.name}; each counted in the ward holding most of its parts")
    return AreaWards(ward_of=ward_of, method=method, paths=lookups, warnings=warnings)


def _unique_map(frame: pd.DataFrame, key: str, value: str) -> pd.Series:
    pairs = frame[[key, value]].astype(str).apply(lambda s: s.str.strip())
    pairs = pairs[(pairs[key] != "") & (pairs[value] != "")].drop_duplicates(key)
    return pairs.set_index(key)[value]


def _wards_by_polygons(path: Path, context: LoadContext, kind: str) -> AreaWards:
    if context.ward_geometry is None:
        raise InputError(f"[layers.{kind}] areas needs the study's ward boundaries", path)
    areas = read_vector(path, f"{kind} areas")
    column = small_area_column(areas.drop(columns="geometry"))
    if column is None:
        raise InputError("no small-area code column (LSOA21CD, LSOA11CD, OA21CD ...) in the areas file", path)
    anchor = areas.geometry.representative_point()
    position = WardLocator(context.ward_geometry.geometry.to_numpy()).locate(anchor.x.to_numpy(),
                                                                                anchor.y.to_numpy())
    codes = context.ward_geometry["ward_code"].to_numpy()
    inside = position != OUTSIDE
    ward_of = pd.Series(codes[position[inside]], index=areas.loc[inside, column].astype(str).to_numpy())
    return AreaWards(ward_of=ward_of[~ward_of.index.duplicated()],
                     method=f"{path.name} (the ward holding a point inside each {column} area)", paths=[path])


def aggregate_areas(layer: LayerResult, area_column: str, value_columns: list[str], options: dict,
                    context: LoadContext, by: Sequence[str] = ()) -> tuple[pd.DataFrame, AreaWards]:
    """Sum a small-area table to study wards, accounting for every row.

    Rows whose area is in a ward outside the study are excluded (``ward not in the study
    area``); rows whose area the lookup does not know are rejected (``small area not in the
    lookup``, listed in ``unmatched.csv``: a borough's lookup leaves out the rest of a
    London-wide file, but it also leaves out areas of another vintage, which must not vanish).
    When no row's area is in the lookup at all, the file and lookup do not belong together and
    that is an error. Several rows for one area (age bands, sexes) are summed, with a warning.
    Rows of one area that differ in a ``by`` column (e.g. ``month``) are kept apart.

    Parameters
    ----------
    layer
        The layer as read; rows are excluded or rejected in place.
    area_column
        Its small-area code column.
    value_columns
        Numeric columns (already parsed, float) to sum.
    options, context
        The layer's options (``lookup``/``areas``) and the study.
    by
        Columns of ``layer.table`` to keep apart in the sums (``month`` of a monthly count table).

    Returns
    -------
    (DataFrame, AreaWards)
        ``ward_code``, the ``by`` columns and the summed ``value_columns``, one row per study
        ward (and ``by`` value) found; and how the areas were matched.
    """
    path = Path(layer.table["source_file"].iloc[0]) if len(layer.table) else layer.paths[0]
    codes = layer.table[area_column].astype(str).str.strip()
    mapping = wards_of_areas(codes, options, context, layer.kind, path)
    ward = codes.map(mapping.ward_of)
    if len(ward) and ward.isna().all():
        raise InputError(f"none of the {len(ward):,} rows' small areas ({area_column}, e.g. {codes.iloc[0]}) is "
                         "in the lookup: check that the file and the lookup are of the same vintage (LSOA 2011 "
                         "or 2021; add the ONS LSOA 2011 -> 2021 lookup) and cover the study's wards", path,
                         column=area_column)
    layer.reject(layer.table[ward.isna()], NOT_IN_LOOKUP)
    ward = ward[layer.table.index]
    layer.exclude(layer.table[~ward.isin(context.ward_codes)], "ward not in the study area")
    ward = ward[layer.table.index]
    kept = codes[layer.table.index]
    per_area = Counter(zip(kept, *(layer.table[c] for c in by)))
    rows_per_area = max(per_area.values()) if per_area else 1
    areas = kept.nunique()
    if rows_per_area > 1:
        mapping.warnings.append(f"{layer.kind}: {len(layer.table)} rows for {areas} small areas "
                                f"(up to {rows_per_area} per area{''.join(f' and {c}' for c in by)}, e.g. age "
                                "bands) were summed per area")
    keys = [pd.Series(ward.to_numpy(), name="ward_code")] + [pd.Series(layer.table[c].to_numpy(), name=c) for c in by]
    summed = layer.table[value_columns].reset_index(drop=True).groupby(keys).sum()
    mapping.warnings.append(f"{layer.kind}: {areas} small areas aggregated to "
                            f"{summed.index.get_level_values('ward_code').nunique()} wards through {mapping.method}")
    return summed.reset_index(), mapping


def _fold(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


__all__ = ["AREA_CODE_COLUMNS", "AreaWards", "aggregate_areas", "small_area_column", "wards_of_areas"]
