"""Ward boundaries: GeoJSON, GeoPackage or Shapefile, any CRS, any common ONS column vintage."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import InputError
from ..config import LayerSpec
from .base import LayerResult, apply_where, is_vector_file, read_vector

#: Ward code / name / borough column patterns across ONS, GLA and council vintages.
CODE_PATTERNS = [r"wd\d\dcd", r"gss_code", r"ward\d\d_code", r"wardcode", r"ward_code", r"wd_code", r"code"]
NAME_PATTERNS = [r"wd\d\dnm", r"name", r"ward\d\d_name", r"wardname", r"ward_name", r"wd_name"]
BOROUGH_PATTERNS = [r"lad\d\dnm", r"borough", r"district", r"borough_name", r"lad_name", r"lb_name"]


def load_boundaries(spec: LayerSpec) -> LayerResult:
    """Read ward boundaries into the canonical ward table skeleton.

    Parameters
    ----------
    spec
        The ``[boundaries]`` entry: ``path``, and optionally ``layer`` (GeoPackage layer),
        ``code_column``, ``name_column``, ``borough_column`` and ``where`` (a column -> value
        filter such as ``{LAD22CD = "E09000030"}`` to take one borough from a London file).

    Returns
    -------
    LayerResult
        ``table``: GeoDataFrame in EPSG:27700 with ``ward_code``, ``ward_name``,
        ``borough_name`` (or None), ``area_km2`` and polygon geometry, sorted by ``ward_code``.

    Raises
    ------
    InputError
        Unreadable file, no code or name column, duplicate or empty ward codes, empty geometry.
    """
    path = spec.paths[0]
    if not is_vector_file(path):
        raise InputError("ward boundaries must be a GeoJSON, GeoPackage or Shapefile (a CSV has no shapes); "
                         "export them from QGIS or download them from the ONS Open Geography Portal", path)
    frame = read_vector(path, "boundaries", spec.options.get("layer"))
    layer = LayerResult("boundaries", [path], frame, rows_read=len(frame))
    apply_where(layer, spec.options.get("where"), path)
    if layer.table.empty:
        raise InputError("no wards left after the 'where' filter; check its column and values", path)
    context_index = _context_wards(frame, layer, spec.options, path)
    frame = layer.table

    code = spec.options.get("code_column") or _match(frame.columns, CODE_PATTERNS)
    name = spec.options.get("name_column") or _match(frame.columns, NAME_PATTERNS)
    borough = spec.options.get("borough_column") or _match(frame.columns, BOROUGH_PATTERNS)
    columns = [c for c in frame.columns if c not in ("geometry", "source_file", "source_row")]
    for role, column in (("ward code", code), ("ward name", name)):
        if column is None or column not in frame.columns:
            raise InputError(f"no {role} column found among {', '.join(columns)}; set "
                             f"{role.replace(' ', '_').replace('ward_', '')}_column under [boundaries]", path)

    codes = frame[code].astype(str).str.strip()
    if (codes == "").any() or frame[code].isna().any():
        row = int(frame.loc[(codes == "") | frame[code].isna(), "source_row"].iloc[0])
        raise InputError("empty ward code; every ward needs its GSS code", path, row=row, column=code)
    duplicated = codes[codes.duplicated(keep=False)]
    if len(duplicated):
        first = duplicated.iloc[0]
        rows = frame.loc[codes == first, "source_row"].tolist()
        raise InputError(f"duplicate ward code {first} (features {', '.join(map(str, rows))}); "
                         "dissolve multi-part wards into one feature per code", path, column=code)
    geometry = frame.geometry
    if geometry.isna().any() or geometry.is_empty.any():
        row = int(frame.loc[geometry.isna() | geometry.is_empty, "source_row"].iloc[0])
        raise InputError("ward has no geometry", path, row=row)

    polygonal = geometry.geom_type.isin(["Polygon", "MultiPolygon"])
    if not polygonal.all():
        row = int(frame.loc[~polygonal, "source_row"].iloc[0])
        raise InputError(f"ward is a {geometry[~polygonal].iloc[0].geom_type}, not a polygon; ward boundaries must "
                         "be polygons (check that this is the boundary file)", path, row=row)

    invalid = ~geometry.is_valid
    if invalid.any():
        names = ", ".join(frame.loc[invalid, name].astype(str).head(5))
        layer.warnings.append(f"{path}: repaired {int(invalid.sum())} invalid ward polygon(s) ({names})")
        geometry = geometry.where(~invalid, _polygonal(shapely.make_valid(geometry[invalid].to_numpy())))

    wards = gpd.GeoDataFrame({
        "ward_code": codes.to_numpy(),
        "ward_name": frame[name].astype(str).str.strip().to_numpy(),
        "borough_name": (frame[borough].astype(str).str.strip().to_numpy() if borough in frame.columns
                         else np.full(len(frame), None, dtype=object)),
    }, geometry=geometry.to_numpy(), crs=frame.crs)
    wards["area_km2"] = wards.geometry.area / 1e6
    if context_index is not None:
        wards["is_context"] = frame.index.isin(context_index)
    _check_areas(wards, frame["source_row"].to_numpy(), path, layer.warnings)
    layer.table = wards.sort_values("ward_code", kind="stable").reset_index(drop=True)
    year = re.search(r"(?:wd|ward)(\d\d)", str(code).lower())
    layer.vintage = f"20{year.group(1)}" if year else None
    return layer


def _context_wards(everything: gpd.GeoDataFrame, layer: LayerResult, options: dict, path) -> pd.Index | None:
    """Add the context wards of ``[boundaries] context_km = N`` or ``context = "neighbours"`` to
    ``layer.table`` (the study's wards): the other wards of the same file within N km of the
    study's wards, or sharing a boundary point with them. Returns their index (``None`` when
    no context is asked for).

    Context wards are taken out of the where-filter's excluded rows and counted under
    ``context ward (statistics only)``.
    """
    context_km, context = options.get("context_km"), options.get("context")
    if context_km is None and context is None:
        return None
    if context is not None and context != "neighbours":
        raise InputError(f'[boundaries] context = "{context}" is not known; use context = "neighbours" or '
                         "context_km = N", path)
    if context_km is not None and (isinstance(context_km, bool) or not isinstance(context_km, (int, float))
                                   or context_km <= 0):
        raise InputError("[boundaries] context_km must be a distance in km above 0", path)
    study = layer.table
    others = everything.drop(index=study.index)
    if others.empty or not options.get("where"):
        raise InputError("[boundaries] context needs a boundary file wider than the study, with where = {...} "
                         "selecting the study's wards (e.g. a London file and where = {LAD22NM = \"Camden\"})", path)
    area = shapely.union_all(study.geometry.to_numpy())
    reach = float(context_km) * 1000 if context_km is not None else 1.0  # neighbours: touching, within 1 m
    near = others.index[others.geometry.distance(area).to_numpy() <= reach]
    if len(near):
        # The study's wards are the rows used; context wards are read, then used as context only.
        layer.excluded = {k: v for k, v in layer.excluded.items() if not k.startswith("not selected by where")}
        layer.excluded["not in the study or its context"] = len(everything) - len(study) - len(near)
        layer.excluded["context ward (statistics only)"] = len(near)
        layer.table = everything.loc[study.index.union(near)].sort_index()
    described = f"within {context_km:g} km" if context_km is not None else "neighbouring the study"
    layer.warnings.append(f"{path}: {len(near)} context ward(s) {described}: the statistics see them, the outputs "
                          "are the study's wards only")
    return near
#: Wards smaller than this (km²) are warned about as slivers: no real ward is, a digitising
#: or clipping artefact can be.
SLIVER_KM2 = 0.001
#: Two wards sharing more than this share of the smaller one's area overlap (the tolerance
#: allows for boundaries digitised at different scales).
OVERLAP_SHARE = 0.01


def _check_areas(wards: gpd.GeoDataFrame, rows, path, warnings: list[str]) -> None:
    """Refuse wards without area; warn about slivers and overlapping wards (a point in an
    overlap is counted once, in the ward whose code sorts first)."""
    empty = wards["area_km2"] <= 0
    if empty.any():
        i = int(np.flatnonzero(empty.to_numpy())[0])
        raise InputError(f"ward {wards['ward_code'].iloc[i]} has no area (a line or a point drawn as a polygon); "
                         "fix its boundary", path, row=int(rows[i]))
    slivers = wards[wards["area_km2"] < SLIVER_KM2]
    if len(slivers):
        warnings.append(f"{path}: {len(slivers)} ward(s) smaller than {SLIVER_KM2 * 1e6:,.0f} m² (slivers?): "
                        + ", ".join(f"{c} {n}" for c, n in zip(slivers["ward_code"].head(5), slivers["ward_name"])))
    geoms = wards.geometry.to_numpy()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    # Neighbours that only share their edge (most pairs) have no area in common: only pairs
    # whose interiors meet are intersected (a predicate costs less than the shape it would make).
    inner = shapely.relate_pattern(geoms[left], geoms[right], "T********")
    left, right = left[inner], right[inner]
    if len(left):
        shared = shapely.area(shapely.intersection(geoms[left], geoms[right]))
        smaller = np.minimum(shapely.area(geoms[left]), shapely.area(geoms[right]))
        overlapping = shared > OVERLAP_SHARE * smaller
        if overlapping.any():
            codes = wards["ward_code"].to_numpy()
            named = [f"{codes[a]}/{codes[b]}" for a, b in zip(left[overlapping][:5], right[overlapping][:5])]
            warnings.append(f"{path}: {int(overlapping.sum())} pair(s) of wards overlap ({', '.join(named)}); a "
                            "point in an overlap is counted once, in the ward whose code sorts first")


def _match(columns, patterns: list[str]) -> str | None:
    """The first column whose lower-cased name fully matches a pattern, in pattern order."""
    for pattern in patterns:
        for column in columns:
            if re.fullmatch(pattern, str(column).lower()):
                return column
    return None


def _polygonal(geometries: np.ndarray) -> np.ndarray:
    """Keep the polygonal part of repaired geometries (make_valid may add stray lines)."""
    out = []
    for geom in geometries:
        if geom.geom_type == "GeometryCollection":
            parts = [g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
            geom = shapely.union_all(parts)
        out.append(geom)
    return np.array(out, dtype=object)
