"""The outreach map: ``map.html``, one self-contained page per run.

What it shows, each as a layer in the layer control (with a legend while it is shown):

- a choropleth of each rate per 1,000 residents (quantile classes; suppressed rates grey);
- LISA clusters and Getis-Ord Gi* hot/cold spots of each analysed measure, and its emerging
  hot spot categories (new, intensifying, ... with ArcGIS's legend);
- outreach gap wards (outlined), treatment services (icon by type), needle exchanges, their
  walk-threshold catchments, suggested satellite sites, estates;
- heat maps of police.uk offence points (aggregated to a grid).

How the page is built (see DESIGN.md, "Performance notes"): folium makes the map, the layer
control, the tiles and the scale bar; the data go into the page once, as one JSON block, and
a small script of ours (``geomisuse/static/map.js``) builds each layer from it the first time
the layer is shown. Every ward layer shares one copy of the ward geometry, which is simplified
as a coverage in EPSG:27700 (:func:`shapely.coverage_simplify`, so that neighbouring wards keep
their shared edge) and rounded to 5 decimal places of a degree (about 1 m).

Safety: every text from input data is escaped with :func:`geomisuse.escaping.safe_text`
before it is written, and the JSON block is written with :func:`geomisuse.escaping.script_json`.
folium's own tooltip and popup classes (which do not escape) are not used.

Offline (``PublishSettings.offline``): Leaflet and the plugins are embedded in the page, read
from installed packages: ``xstatic-leaflet`` (Leaflet 1.9.3, the version folium links),
``xstatic-leaflet-markercluster`` (Leaflet.markercluster 1.4.1) and folium's own copy of
Leaflet.heat. Otherwise the page links the same versions on a CDN.
"""

from __future__ import annotations

import base64
import math
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from folium.template import Template

from ...errors import InputError
from ..briefings.pages import page_names
from ..escaping import safe_text, script_json
from ..places import ward_centres
from ..published import study_protection
from ..text import (count_text, distance_text, gi_bin_text, period_text, rate_text, share_percent,
                    vintage_text, walk_text)
from ...vocabulary import EHSA_CATEGORIES, EHSA_NO_PATTERN, GI_BINS, LISA_CLUSTERS, LISA_LABELS, NOT_SIGNIFICANT
from ...config import ANALYSIS_CRS, MAP_CRS, MEASURE_LABELS, MEASURES
from ...layers.heat_cells import HEAT_CELL_M, cell_keys, coarsen_cells

if TYPE_CHECKING:  # publishing reads a run's results; it never drives the pipeline
    from ...pipeline import StudyRun

#: Default coverage simplification tolerance in metres (EPSG:27700); see :func:`simplify_wards`.
SIMPLIFY_M = 10.0
#: Decimal places kept of longitude/latitude (5 places is about 1 m).
COORD_DECIMALS = 5
#: Heat map points are aggregated to grid cells, coarser until there are at most this many.
HEAT_MAX_POINTS = 10_000
#: Point layers with more markers than this are clustered (Leaflet.markercluster).
CLUSTER_ABOVE = 150
#: Choropleth classes.
CLASSES = 5

#: Sequential palette of the rate choropleths (ColorBrewer OrRd, 5 classes).
RATE_PALETTE = ["#fef0d9", "#fdcc8a", "#fc8d59", "#e34a33", "#b30000"]
#: Fill of a ward whose rate is hidden (suppressed count) or missing.
SUPPRESSED_COLOUR = "#bdbdbd"
NO_DATA_COLOUR = "#f0f0f0"
#: LISA cluster colours, as GeoDa draws them, in the legend's order (geomisuse.vocabulary.LISA_LABELS).
LISA_COLOURS = dict(zip(LISA_LABELS, ("#e31a1c", "#1f4fd8", "#f4a3b4", "#9ecae1", "#d9d9d9")))
#: Gi* bin colours, as ArcGIS's hot spot analysis draws them, hottest first (geomisuse.vocabulary.GI_BINS).
GI_COLOURS = dict(zip(GI_BINS, ("#d62f27", "#ed7551", "#fab984", "#f7f7f7", "#c0ccbe", "#849eba", "#4575b5")))
#: Emerging hot spot colours in the legend's order (geomisuse.vocabulary.EHSA_CATEGORIES), after
#: ArcGIS's Emerging Hot Spot Analysis legend: reds for hot spots (darkest where it is
#: intensifying or new), blues for the cold ones in the same order, no pattern pale.
EHSA_COLOURS = dict(zip(EHSA_CATEGORIES, (
    "#ff4d4d", "#a80000", "#ff7f7f", "#e60000", "#ffbebe", "#d7b09e", "#f5a27a", "#e8d4cc",
    "#73b2ff", "#00397a", "#97dbf2", "#0070ff", "#bed2ff", "#9eaad7", "#7aa6f5", "#ccd4e8",
    "#f2f2f2")))
#: Marker colours of treatment service types, in order of first appearance.
SERVICE_COLOURS = ["#1b7837", "#762a83", "#e08214", "#b2182b", "#35978f", "#8c510a", "#01665e", "#4d4d4d"]
NEEDLE_EXCHANGE_COLOUR = "#2166ac"
SATELLITE_COLOUR = "#ffd92f"
ESTATE_COLOUR = "#6a3d9a"
GAP_COLOUR = "#000000"
CATCHMENT_COLOURS = {"treatment": "#1b7837", "needle_exchange": "#2166ac"}

_CDN = {
    "leaflet_js": "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js",
    "leaflet_css": "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css",
    "markercluster_js": "https://cdn.jsdelivr.net/npm/leaflet.markercluster@1.4.1/dist/leaflet.markercluster.js",
    "markercluster_css": "https://cdn.jsdelivr.net/npm/leaflet.markercluster@1.4.1/dist/MarkerCluster.css",
    "markercluster_default_css":
        "https://cdn.jsdelivr.net/npm/leaflet.markercluster@1.4.1/dist/MarkerCluster.Default.css",
    "heat_js": "https://cdn.jsdelivr.net/gh/python-visualization/folium@v0.20.0/folium/templates/leaflet_heat.min.js",
}
_DATA_ID = "geomisuse-data"


# --------------------------------------------------------------------------------------------
# public entry points


def write_map(run: StudyRun, published: pd.DataFrame, path: Path, settings) -> None:
    """Write ``map.html`` for a run.

    Parameters
    ----------
    run
        The analysed study (layers, satellites, study title and period are read from it;
        its ward counts are not: they may be unsuppressed).
    published
        The published (suppressed) ward table, same rows and geometry as ``run.wards``: only
        these values reach the page.
    path
        Output file.
    settings
        :class:`geomisuse.publish.PublishSettings` (``tiles``, ``offline``, ``unsuppressed``,
        ``suppression_threshold`` and optionally ``map_simplify_m``).
    """
    fmap = build_map(run, published, settings)
    root = fmap.get_root()
    number_elements(root)
    Path(path).write_text(root.render(), encoding="utf-8")


def number_elements(root: Element) -> None:
    """Give every element of a page an id from its place in the page (``0000...0001``, ...).

    folium draws each element's id (``map_<id>``, ``geomisuse_layer_<id>`` in the page's
    script) from ``os.urandom``; numbering them in document order makes the same run give the
    same page byte for byte (``geomisuse map RUN_DIR`` rebuilds exactly what the run wrote).
    """
    count = 0

    def visit(element: Element) -> None:
        nonlocal count
        element._id = f"{count:032x}"
        count += 1
        for child in element._children.values():
            visit(child)

    visit(root)


#: Fill of the context wards: grey, outside the study.
CONTEXT_COLOUR = "#9e9e9e"


def build_map(run: StudyRun, published: pd.DataFrame, settings) -> folium.Map:
    """The folium map of :func:`write_map` (not yet rendered)."""
    wards = gpd.GeoDataFrame(published, geometry="geometry", crs=run.wards.crs)
    if wards.crs is None:
        wards = wards.set_crs(ANALYSIS_CRS)
    wards = wards.to_crs(ANALYSIS_CRS).reset_index(drop=True)
    try:
        tolerance = float(getattr(settings, "map_simplify_m", SIMPLIFY_M))
    except (TypeError, ValueError):
        raise InputError("[publish] map_simplify_m must be a number of metres (0 keeps every vertex)") from None
    lonlat = simplify_wards(wards.geometry, tolerance)
    measures = [m for m in MEASURES if f"{m}_rate_per_1000" in wards]
    # Possession first: it is the measure analysts map, and disclosure control hides totals before it.
    default_measure = next((m for m in ("possession", "drug_offences", "trafficking", "asb")
                            if m in measures and _numeric(wards[f"{m}_rate_per_1000"]).notna().any()),
                           measures[0] if measures else None)

    layers: list[dict] = []
    _rate_layers(layers, wards, measures, default_measure)
    _cluster_layers(layers, wards, measures)
    _emerging_layers(layers, wards, measures, run.manifest.get("clusters", {}).get("emerging", {}))
    _gap_layer(layers, wards)
    minutes, radius = walk_catchment(run)
    _service_layers(layers, run, minutes, radius)
    _satellite_layer(layers, run.satellites)
    _estate_layer(layers, run.layer_table("estates"))
    _heat_layers(layers, run, settings)
    _context_layer(layers, run, tolerance)

    minx, miny, maxx, maxy = lonlat.total_bounds
    data = {
        "wards": {"type": "FeatureCollection",
                  "features": [{"type": "Feature", "properties": {"i": i}, "geometry": _geometry(g)}
                               for i, g in enumerate(lonlat)]},
        "ward": _ward_info(run, wards, measures, settings),
        "defaultMeasure": default_measure,
        "bounds": [[round(float(miny), 5), round(float(minx), 5)], [round(float(maxy), 5), round(float(maxx), 5)]],
        "layers": [{**layer, "show": bool(layer.get("show", False)),
                    # Ward colourings are one exclusive choice (radio); everything else overlays.
                    "group": "ward" if layer["kind"] == "fill" else "overlay"} for layer in layers],
        "vintage": safe_text(vintage_text(run)),
        "boroughs": _borough_bounds(wards, lonlat),
    }

    fmap = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=12, tiles=None,
                      control_scale=True)
    fmap.default_js = []
    fmap.default_css = []
    figure = fmap.get_root()
    figure.title = _page_title(run)
    uses = {layer["kind"] for layer in layers}
    for name, tag in asset_tags(bool(settings.offline),
                                cluster=any(layer.get("cluster") for layer in layers),
                                heat="heat" in uses):
        figure.header.add_child(Element(tag), name=name)
    tiles = tile_layer(getattr(settings, "tiles", "none"))
    if tiles is not None:
        tiles.add_to(fmap)
    figure.html.add_child(Element(_title_html(run, settings)), name="geomisuse_title")
    _App(script_json(data)).add_to(fmap)
    for i in range(len(layers)):
        _DataLayer(i).add_to(fmap)
    _Ready().add_to(fmap)
    return fmap


# --------------------------------------------------------------------------------------------
# geometry


def _borough_bounds(wards: gpd.GeoDataFrame, lonlat: gpd.GeoSeries) -> list[dict]:
    """Each borough's name and bounds for the map's borough filter (empty for one borough)."""
    boroughs = _column(wards, "borough_name").astype(object)
    if boroughs.isna().any() or boroughs.nunique() < 2:
        return []
    out = []
    for name in sorted(boroughs.astype(str).unique()):
        minx, miny, maxx, maxy = lonlat[(boroughs.astype(str) == name).to_numpy()].total_bounds
        out.append({"name": safe_text(name), "wards": [int(i) for i in np.flatnonzero(boroughs.astype(str) == name)],
                    "bounds": [[round(float(miny), 5), round(float(minx), 5)],
                               [round(float(maxy), 5), round(float(maxx), 5)]]})
    return out


def _context_layer(layers: list[dict], run: StudyRun, tolerance: float) -> None:
    """The context wards (``[boundaries] context_km``), greyed: the statistics saw them, the
    study's outputs do not include them."""
    context = run.context_wards
    if context is None or not len(context):
        return
    lonlat = simplify_wards(context.geometry, tolerance)
    features = [{"type": "Feature", "geometry": _geometry(geom),
                 "properties": {"t": _tip(("", name), ("", code), ("", "context ward: in the statistics only"))}}
                for geom, code, name in zip(lonlat, context["ward_code"], context["ward_name"])
                if geom is not None and not geom.is_empty]
    layers.append({
        "kind": "context", "name": "Context wards", "show": True, "colour": CONTEXT_COLOUR,
        "geojson": {"type": "FeatureCollection", "features": features},
        "legend": {"title": "Context wards", "items": [[CONTEXT_COLOUR, "around the study: statistics only"]]},
    })


def simplify_wards(geometry: gpd.GeoSeries, tolerance_m: float = SIMPLIFY_M,
                   decimals: int = COORD_DECIMALS) -> gpd.GeoSeries:
    """Ward polygons made light for the page, as longitude/latitude.

    The wards are simplified together as a coverage in EPSG:27700
    (:func:`shapely.coverage_simplify`, Visvalingam–Whyatt with ``tolerance_m`` roughly the
    square root of the largest triangle area removed), so a shared edge is simplified once and
    stays shared: no gaps or slivers open between neighbours. Coordinates are then rounded to
    ``decimals`` places; a vertex two wards share rounds to the same point in both.

    Parameters
    ----------
    geometry
        Ward polygons (any CRS; transformed to EPSG:27700 first).
    tolerance_m
        Simplification tolerance in metres; 0 keeps every vertex.
    decimals
        Decimal places of longitude/latitude kept.
    """
    series = geometry.to_crs(ANALYSIS_CRS) if geometry.crs is not None else geometry.set_crs(ANALYSIS_CRS)
    values = series.to_numpy()
    if tolerance_m > 0:
        try:
            simplified = shapely.coverage_simplify(values, tolerance_m, simplify_boundary=True)
        except shapely.errors.GEOSException:
            simplified = shapely.simplify(values, tolerance_m, preserve_topology=True)
        bad = shapely.is_empty(simplified) | ~shapely.is_valid(simplified)
        simplified = np.where(bad, values, simplified)
    else:
        simplified = values
    out = gpd.GeoSeries(simplified, index=geometry.index, crs=ANALYSIS_CRS).to_crs(MAP_CRS)
    rounded = shapely.transform(out.to_numpy(), lambda xy: np.round(xy, decimals))
    rounded = shapely.remove_repeated_points(rounded, 0.0)
    return gpd.GeoSeries(rounded, index=geometry.index, crs=MAP_CRS)


def _geometry(geom) -> dict | None:
    if geom is None or geom.is_empty:
        return None
    return shapely.geometry.mapping(geom)


def _lonlat_points(table: gpd.GeoDataFrame) -> np.ndarray:
    """``(n, 2)`` latitude, longitude of a layer's representative points, rounded."""
    if table.crs is None:
        table = table.set_crs(ANALYSIS_CRS)
    points = shapely.point_on_surface(table.to_crs(MAP_CRS).geometry.to_numpy())
    xy = shapely.get_coordinates(points)
    return np.round(xy[:, ::-1], COORD_DECIMALS)


# --------------------------------------------------------------------------------------------
# classes and formatting


def class_breaks(values, k: int = CLASSES) -> list[float]:
    """Upper bounds of quantile classes (the last class is open), duplicates removed.

    A value ``v`` is in class ``searchsorted(breaks, v, side="left")``: class ``i`` holds the
    values above ``breaks[i-1]`` up to and including ``breaks[i]``.
    """
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return []
    inner = np.quantile(v, np.linspace(0, 1, k + 1)[1:-1], method="inverted_cdf")
    breaks = sorted({float(b) for b in inner if b < v.max()})
    return breaks


def _classes(values: pd.Series, breaks: list[float]) -> np.ndarray:
    v = _numeric(values).to_numpy(dtype=float)
    cls = np.searchsorted(np.asarray(breaks, dtype=float), v, side="left")
    return np.where(np.isfinite(v), cls, -1).astype(int)


def _palette(n: int) -> list[str]:
    if n <= 0:
        return []
    if n == 1:
        return [RATE_PALETTE[2]]
    return [RATE_PALETTE[int(round(j))] for j in np.linspace(0, len(RATE_PALETTE) - 1, n)]


def _numeric(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce").astype(float)


def _range_labels(breaks: list[float], values: pd.Series) -> list[str]:
    v = _numeric(values)
    lo, hi = v.min(), v.max()
    decimals = 1
    edges = [lo, *breaks, hi]
    while decimals < 3 and len({rate_text(e, decimals) for e in edges}) < len(edges):
        decimals += 1
    # Classes are (previous break, break]: a class after the first starts one step of the shown
    # precision above the previous break, so no two labels share an end point.
    step = 10.0 ** -decimals
    labels = []
    for i in range(len(breaks) + 1):
        a = lo if i == 0 else breaks[i - 1] + step
        b = hi if i == len(breaks) else breaks[i]
        labels.append(f"{rate_text(min(a, b), decimals)} – {rate_text(b, decimals)}")
    return labels


# --------------------------------------------------------------------------------------------
# layers (each a dict: kind, name, show, legend and the kind's data; see static/map.js)


def _label(measure: str) -> str:
    text = MEASURE_LABELS.get(measure, measure.replace("_", " "))
    return text[:1].upper() + text[1:]


def _rate_layers(layers: list[dict], wards: pd.DataFrame, measures: list[str], default: str | None) -> None:
    for m in measures:
        rates = _numeric(wards[f"{m}_rate_per_1000"])
        count = wards.get(f"{m}_count")
        hidden = (count.astype(str).str.strip().isin(["c"]) | count.astype(str).str.startswith("<")) \
            if count is not None else pd.Series(False, index=wards.index)
        if rates.isna().all() and not hidden.any():
            continue
        breaks = class_breaks(rates)
        n = len(breaks) + 1 if rates.notna().any() else 0
        cls = _classes(rates, breaks)
        cls = np.where((cls < 0) & hidden.to_numpy(), -2, cls)
        colours = _palette(n)
        items = [[c, safe_text(label)] for c, label in zip(colours, _range_labels(breaks, rates))] if n else []
        if (cls == -2).any():
            items.append([SUPPRESSED_COLOUR, "rate not shown: count suppressed"])
        if (cls == -1).any():
            items.append([NO_DATA_COLOUR, "no data"])
        # JS knows one missing colour; suppressed wards get their own class at the end.
        if (cls == -2).any():
            colours = colours + [SUPPRESSED_COLOUR]
            cls = np.where(cls == -2, len(colours) - 1, cls)
        layers.append({
            "kind": "fill", "family": "Rates per 1,000 residents",
            "name": safe_text(f"Rate: {_label(m).lower()} per 1,000 residents"),
            "show": m == default, "measure": m, "cls": cls.tolist(), "colours": colours,
            "missing": NO_DATA_COLOUR,
            "legend": {"title": safe_text(f"{_label(m)} per 1,000 residents (quantile classes)"),
                       "items": items},
        })


def _cluster_layers(layers: list[dict], wards: pd.DataFrame, measures: list[str]) -> None:
    for m in measures:
        column = f"{m}_lisa_label"
        if column not in wards or wards[column].isna().all():
            continue
        cls, items = _label_classes(wards[column], LISA_COLOURS, (*LISA_CLUSTERS, NOT_SIGNIFICANT))
        layers.append(_class_layer("Clusters (local Moran, LISA)", f"Clusters (LISA): {_label(m).lower()}", m, cls,
                                   LISA_COLOURS, f"Local Moran clusters: {_label(m).lower()}", items))
    gi_order = list(GI_COLOURS)
    for m in measures:
        column = f"{m}_gi_bin"
        if column not in wards or _numeric(wards[column]).isna().all():
            continue
        bins = _numeric(wards[column])
        cls = np.array([gi_order.index(int(b)) if np.isfinite(b) and int(b) in GI_COLOURS else -1 for b in bins],
                       dtype=int)
        items = [[GI_COLOURS[b], gi_bin_text(b, "legend")] for b in gi_order]
        layers.append(_class_layer("Hot and cold spots (Getis-Ord Gi*)", f"Hot/cold spots (Gi*): {_label(m).lower()}",
                                   m, cls, GI_COLOURS, f"Getis-Ord Gi* hot and cold spots: {_label(m).lower()}",
                                   items))


def _class_layer(family: str, name: str, measure: str, cls: np.ndarray, colours: dict, title: str,
                 items: list) -> dict:
    """A ward fill layer of LISA labels or Gi* bins in the layer control's ``family``: ``cls``
    indexes ``colours`` (-1: not assessed, which the legend then lists too); text escaped."""
    if (cls < 0).any():
        items = [*items, [NO_DATA_COLOUR, "not assessed"]]
    return {"kind": "fill", "family": family, "name": safe_text(name), "measure": measure, "cls": cls.tolist(),
            "colours": list(colours.values()), "missing": NO_DATA_COLOUR, "opacity": 0.8,
            "legend": {"title": safe_text(title), "items": items}}


def _label_classes(labels: pd.Series, colours: dict[str, str], always: tuple[str, ...]) -> tuple[np.ndarray, list]:
    """Class index of each ward's label (order of ``colours``; -1 for none) and the legend items:
    the labels present plus ``always``."""
    order = list(colours)
    cls = np.array([order.index(x) if x in colours else -1 for x in labels.astype(object)], dtype=int)
    return cls, [[colours[k], safe_text(k)] for k in order if (cls == order.index(k)).any() or k in always]


def _emerging_layers(layers: list[dict], wards: pd.DataFrame, measures: list[str], emerging: dict) -> None:
    """One layer per measure with emerging hot spot categories; the legend lists those present."""
    step = emerging.get("time_step", "month")
    for m in measures:
        column = f"{m}_ehsa_category"
        if column not in wards or wards[column].isna().all():
            continue
        cls, items = _label_classes(wards[column], EHSA_COLOURS, (EHSA_NO_PATTERN,))
        record = emerging.get("by_measure", {}).get(m, {})
        span = f", {record['first_step']} to {record['last_step']}" if record else ""
        layers.append(_class_layer("Emerging hot spots (space-time Gi*)", f"Emerging hot spots: {_label(m).lower()}",
                                   m, cls, EHSA_COLOURS, f"Emerging hot spots ({step}ly{span}): {_label(m).lower()}",
                                   items))


def _is_gap(wards: pd.DataFrame) -> np.ndarray:
    flags = wards["is_outreach_gap"]
    if flags.dtype == object or str(flags.dtype) in ("str", "string"):
        flags = flags.astype(str).str.strip().str.lower().isin(["true", "1", "yes"])
    return flags.fillna(False).astype(bool).to_numpy()


def _gap_layer(layers: list[dict], wards: pd.DataFrame) -> None:
    if "is_outreach_gap" not in wards:
        return
    gaps = np.flatnonzero(_is_gap(wards))
    layers.append({
        "kind": "outline", "name": "Outreach gap wards", "wards": gaps.tolist(), "colour": GAP_COLOUR,
        "measure": None,
        "legend": {"title": "Outreach gaps", "items": [[GAP_COLOUR, f"outreach gap ward ({len(gaps)}); "
                                                                     "hover for the reason", "line"]]},
    })


def walk_catchment(run: StudyRun) -> tuple[float, float]:
    """Walk threshold (minutes) and the straight-line radius (metres) it reaches, from the
    run's walking settings (:attr:`StudyRun.walking`, which the gap stage used)."""
    walking = run.walking
    return float(walking.walk_threshold_min), float(walking.walk_radius_m)


def _site_popup(row: pd.Series) -> str:
    """A satellite site's click popup: where it is and a link to it on OpenStreetMap (escaped),
    or ``""`` when the site has no map link."""
    url = row.get("map_url")
    if not (isinstance(url, str) and url.startswith("https://")):
        return ""
    where = safe_text(row.get("location") or row.get("name") or "")
    return (f"<b>{where}</b><br><a href=\"{safe_text(url)}\" target=\"_blank\" rel=\"noopener\">"
            "Open on OpenStreetMap</a>")


def _first_char(text: str) -> str:
    match = re.search(r"[A-Za-z0-9]", text)
    return match.group(0).upper() if match else "?"


def _tip(*parts: tuple[str, object]) -> str:
    """A marker tooltip: the first part bold, the others as 'label: value' lines (escaped)."""
    lines = []
    for i, (label, value) in enumerate(parts):
        text = safe_text(value).strip()
        if not text:
            continue
        if i == 0:
            lines.append(f"<b>{text}</b>")
        else:
            lines.append(f"{safe_text(label)}: {text}" if label else text)
    return "<br>".join(lines)


def _count_text(value) -> str:
    """A published count as the CSV has it (``<5``, ``c``, blank), escaped for the page."""
    return safe_text(count_text(value, style="as published"))


def _column(table: pd.DataFrame, name: str) -> pd.Series:
    return table[name] if name in table else pd.Series([None] * len(table), index=table.index)


def _service_layers(layers: list[dict], run: StudyRun, minutes: float, radius: float) -> None:
    walk = f"{walk_text(minutes, 'label')} (≈{distance_text(radius)} straight line)"
    services = run.layer_table("treatment_services")
    if services is not None and len(services):
        types_raw = _column(services, "service_type").fillna("").astype(str).str.strip()
        types_raw = types_raw.where(types_raw != "", "Treatment service")
        kinds = list(dict.fromkeys(types_raw))
        types = [{"colour": SERVICE_COLOURS[i % len(SERVICE_COLOURS)], "glyph": safe_text(_first_char(t)),
                  "shape": "square", "size": 22} for i, t in enumerate(kinds)]
        xy = _lonlat_points(services)
        items = [[float(xy[j, 0]), float(xy[j, 1]), kinds.index(types_raw.iloc[j]),
                  _tip(("", row.get("name")), ("", types_raw.iloc[j]), ("", row.get("address")))]
                 for j, (_, row) in enumerate(services.iterrows())]
        layers.append({
            "kind": "markers", "name": "Treatment services", "show": True, "types": types, "items": items,
            "cluster": len(items) > CLUSTER_ABOVE,
            "legend": {"title": "Treatment services",
                       "items": [[t["colour"], safe_text(k), "icon", t] for t, k in zip(types, kinds)]},
        })
        layers.append(_catchment_layer(run, "treatment", "Treatment services", minutes, walk,
                                       [[p[0], p[1]] for p in items], radius))
    nsp = run.needle_exchanges()
    if nsp is not None and len(nsp):
        xy = _lonlat_points(nsp)
        nx_type = {"colour": NEEDLE_EXCHANGE_COLOUR, "glyph": "N", "shape": "circle", "size": 18}
        items = []
        for j, (_, row) in enumerate(nsp.iterrows()):
            sc = row.get("supervised_consumption")
            items.append([float(xy[j, 0]), float(xy[j, 1]), 0,
                          _tip(("", row.get("name")), ("", "Needle exchange"), ("", row.get("address")),
                               ("NSP level", row.get("nsp_level")), ("Supervised consumption", sc))])
        layers.append({
            "kind": "markers", "name": "Needle exchanges", "show": True, "types": [nx_type], "items": items,
            "cluster": len(items) > CLUSTER_ABOVE,
            "legend": {"title": "Needle exchanges",
                       "items": [[NEEDLE_EXCHANGE_COLOUR, "needle exchange (pharmacy or service)", "icon",
                                  nx_type]]},
        })
        layers.append(_catchment_layer(run, "needle_exchange", "Needle exchanges", minutes, walk,
                                       [[p[0], p[1]] for p in items], radius))


def _catchment_layer(run: StudyRun, kind: str, what: str, minutes: float, walk: str,
                     centres: list[list[float]], radius: float) -> dict:
    """The walk catchments of one service kind: the gap stage's network isochrones when it
    walked over a street network (``run.catchments``), else straight-line circles."""
    colour = CATCHMENT_COLOURS[kind]
    title = "Treatment service catchment" if kind == "treatment" else "Needle exchange catchment"
    catchments = getattr(run, "catchments", None)
    if catchments is not None and len(catchments):
        mine = catchments[(catchments["kind"] == kind) & (catchments["method"] == "network isochrone")]
        if len(mine):
            geoms = mine.to_crs(MAP_CRS).geometry.to_numpy()
            geoms = shapely.transform(geoms, lambda xy: np.round(xy, COORD_DECIMALS))
            features = [{"type": "Feature", "geometry": _geometry(g), "properties": {}}
                        for g in geoms if g is not None and not g.is_empty]
            return {"kind": "areas", "name": safe_text(f"{what}: {walk_text(minutes, 'label')}"),
                    "geojson": {"type": "FeatureCollection", "features": features}, "colour": colour,
                    "legend": {"title": title, "items": [[colour, safe_text(
                        f"{walk_text(minutes, 'label')} over the streets (© OpenStreetMap contributors)"), "circle"]]}}
    return {"kind": "circles", "name": safe_text(f"{what}: {walk_text(minutes, 'label')}"),
            "items": centres, "radius": round(radius, 1), "colour": colour,
            "legend": {"title": title, "items": [[colour, safe_text(walk), "circle"]]}}


def _satellite_layer(layers: list[dict], satellites: pd.DataFrame | None) -> None:
    if satellites is None or len(satellites) == 0 or not {"longitude", "latitude"} <= set(satellites):
        return
    items, types = [], []
    for j, (_, row) in enumerate(satellites.reset_index(drop=True).iterrows()):
        lat, lon = _numeric(pd.Series([row["latitude"]]))[0], _numeric(pd.Series([row["longitude"]]))[0]
        if not (math.isfinite(lat) and math.isfinite(lon)):
            continue
        rank = row.get("rank", j + 1)
        share = row.get("share_of_unmet_need_covered", row.get("share_of_gap_need_covered"))
        share_text = (f"adds {share_percent(float(share))} of the unmet need within a walk"
                      if share is not None and pd.notna(share) else "")
        newly = row.get("residents_newly_within_walk")
        types.append({"colour": SATELLITE_COLOUR, "glyph": safe_text(_count_text(rank)), "shape": "star",
                      "size": 24})
        items.append([round(float(lat), COORD_DECIMALS), round(float(lon), COORD_DECIMALS), len(types) - 1,
                      _tip(("", f"Suggested satellite site {_count_text(rank)}: {row.get('name', '')}"),
                           ("Site type", row.get("site_type")), ("Ward", row.get("ward_name")),
                           ("Near", row.get("location")),
                           ("", share_text),
                           ("Residents newly within a walk", _count_text(newly) if newly is not None else None),
                           ("", "click for a map link" if _site_popup(row) else "")),
                      _site_popup(row)])
    if not items:
        return
    layers.append({
        "kind": "markers", "name": "Suggested satellite sites", "types": types, "items": items, "cluster": False,
        "legend": {"title": "Suggested satellite outreach sites",
                   "items": [[SATELLITE_COLOUR, "site, numbered by rank", "icon",
                              {"colour": SATELLITE_COLOUR, "glyph": "1", "shape": "star", "size": 18}]]},
    })


def _estate_layer(layers: list[dict], estates: gpd.GeoDataFrame | None) -> None:
    if estates is None or len(estates) == 0:
        return
    table = estates if estates.crs is not None else estates.set_crs(ANALYSIS_CRS)
    geoms = table.to_crs(MAP_CRS).geometry.to_numpy()
    geoms = shapely.transform(geoms, lambda xy: np.round(xy, COORD_DECIMALS))
    features = []
    for geom, (_, row) in zip(geoms, table.iterrows()):
        if geom is None or geom.is_empty:
            continue
        homes = row.get("homes")
        features.append({"type": "Feature", "geometry": _geometry(geom),
                         "properties": {"t": _tip(("", row.get("name")), ("", "Estate"),
                                                  ("Homes", _count_text(homes) if homes is not None else None),
                                                  ("Landlord", row.get("landlord")))}})
    layers.append({
        "kind": "polygons", "name": "Estates", "colour": ESTATE_COLOUR,
        "geojson": {"type": "FeatureCollection", "features": features},
        "legend": {"title": "Estates", "items": [[ESTATE_COLOUR, "estate (hotspot housing estate list)"]]},
    })


def heat_points(points: gpd.GeoSeries, max_points: int = HEAT_MAX_POINTS,
                cell_m: float = HEAT_CELL_M) -> tuple[np.ndarray, float]:
    """Points aggregated to square grid cells in EPSG:27700 for a heat map.

    The cell starts at ``cell_m`` metres and doubles until at most ``max_points`` cells hold
    points (police.uk points are already snapped to street points, so there are usually far
    fewer cells than points).

    Returns
    -------
    (cells, cell_m)
        ``cells``: ``(n, 3)`` latitude, longitude (cell centre, rounded) and the number of points;
        ``cell_m``: the cell size used.
    """
    series = points if points.crs is not None else points.set_crs(ANALYSIS_CRS)
    xy = shapely.get_coordinates(series.to_crs(ANALYSIS_CRS).to_numpy())
    xy = xy[np.isfinite(xy).all(axis=1)]
    return heat_of_cells(cell_keys(xy[:, 0], xy[:, 1], cell_m), None, max_points, cell_m)


def heat_of_cells(keys: np.ndarray, counts: np.ndarray | None, max_points: int = HEAT_MAX_POINTS,
                  cell_m: float = HEAT_CELL_M) -> tuple[np.ndarray, float]:
    """:func:`heat_points` of points already counted by cell (the Dask engine's table).

    Parameters
    ----------
    keys
        Cell keys at ``cell_m`` (:func:`~geomisuse.layers.heat_cells.cell_keys`).
    counts
        Points in each keyed cell; ``None``: one point per key.
    max_points, cell_m
        As for :func:`heat_points`.
    """
    if len(keys) == 0:
        return np.empty((0, 3)), cell_m
    cells, totals, cell_m = coarsen_cells(keys, counts, max_points, cell_m)
    centres = (cells + 0.5) * cell_m
    lonlat = gpd.GeoSeries(shapely.points(centres), crs=ANALYSIS_CRS).to_crs(MAP_CRS)
    ll = np.round(shapely.get_coordinates(lonlat.to_numpy())[:, ::-1], COORD_DECIMALS)
    return np.column_stack([ll, totals]), cell_m


def _heat_layers(layers: list[dict], run: StudyRun, settings) -> None:
    """Heat maps of the police.uk points of the study period (never the previous period the
    layer also holds). Where police.uk counts are protected, a heat cell is a count an
    attacker could subtract from published ward counts, so the heat map is not drawn."""
    police = run.layer_table("police_uk")
    # Points (local engine), or points counted by ward, month, measure and heat cell (Dask).
    counted = police is not None and "cell" in police and "count" in police
    if police is None or len(police) == 0 or "measure" not in police or \
            not (counted or isinstance(police, gpd.GeoDataFrame)):
        return
    protection = None if getattr(settings, "unsuppressed", False) else study_protection(run, settings)
    if "month" in police and run.months:
        police = police[police["month"].isin(set(run.months))]
    for measure, title, column in (("drug_offences", "drug offences", "police_uk_drugs_count"),
                                   ("asb", "anti-social behaviour", "police_uk_asb_count")):
        subset = police[police["measure"] == measure]
        if len(subset) == 0 or (protection is not None and protection.protected(column)):
            continue
        if counted:
            cells, cell = heat_of_cells(subset["cell"].to_numpy(), subset["count"].to_numpy())
            points = int(subset["count"].sum())
        else:
            cells, cell = heat_points(subset.geometry)
            points = len(subset)
        weights = cells[:, 2]
        flat = [float(x) if k % 3 != 2 else int(x) for row in cells for k, x in enumerate(row)]
        layers.append({
            "kind": "heat", "name": safe_text(f"Heat map: {title} (police.uk points)"), "points": flat,
            "max": float(max(1.0, np.quantile(weights, 0.98))), "radius": 18, "blur": 15, "maxZoom": 15,
            "legend": {"title": safe_text(f"Heat map of {title}"),
                       "items": [["linear-gradient(90deg, #0000ff, #00ff00, #ffff00, #ff0000)",
                                  "fewer → more points", "gradient"],
                                 ["", safe_text(f"{points:,} police.uk points (approximate locations) "
                                                       f"in {cell:g} m cells")]]},
        })


# --------------------------------------------------------------------------------------------
# ward tooltips


def _nearest(wards: gpd.GeoDataFrame, sites: gpd.GeoDataFrame | None) -> tuple[list[str], np.ndarray]:
    """Name of the nearest site to each ward's centre, and the straight-line distance (m)."""
    n = len(wards)
    if sites is None or len(sites) == 0:
        return [""] * n, np.full(n, np.nan)
    pts = sites if sites.crs is not None else sites.set_crs(ANALYSIS_CRS)
    geoms = shapely.point_on_surface(pts.to_crs(ANALYSIS_CRS).geometry.to_numpy())
    centres = ward_centres(wards.geometry).to_numpy()
    tree = shapely.STRtree(geoms)
    (ward_idx, site_idx), dist = tree.query_nearest(centres, return_distance=True, all_matches=False)
    names = [""] * n
    distance = np.full(n, np.nan)
    site_names = _column(sites, "name").astype(object).to_numpy()
    for w, s, d in zip(ward_idx, site_idx, dist):
        names[w] = safe_text(site_names[s])
        distance[w] = d
    return names, distance


def _ward_info(run: StudyRun, wards: gpd.GeoDataFrame, measures: list[str], settings) -> dict:
    """Column-wise tooltip data: every value escaped and formatted as shown."""
    n = len(wards)
    centres = ward_centres(wards.geometry).to_crs(MAP_CRS)
    ll = np.round(shapely.get_coordinates(centres.to_numpy()), COORD_DECIMALS)
    info: dict = {
        "code": [safe_text(c) for c in wards["ward_code"]],
        "name": [safe_text(c) for c in _column(wards, "ward_name")],
        "lat": ll[:, 1].tolist(), "lon": ll[:, 0].tolist(),
        "pop": ([_count_text(p) for p in wards["population"]] if "population" in wards else None),
        # Many-borough studies (London) name each ward's borough in its tooltip.
        "borough": ([safe_text(b) for b in _column(wards, "borough_name")]
                    if _column(wards, "borough_name").nunique() > 1 else None),
        # Relative links from map.html to each ward's briefing page (when briefings are written).
        "page": ([f"briefings/{name}.html" for name in page_names([str(c) for c in wards["ward_code"]])]
                 if getattr(settings, "briefings", False) else None),
        "measures": [], "nearest": [], "gap": None,
    }
    for m in measures:
        entry = {"key": m, "label": safe_text(_label(m)),
                 "count": [_count_text(v) for v in _column(wards, f"{m}_count")],
                 "rate": [rate_text(v) for v in _column(wards, f"{m}_rate_per_1000")],
                 "lisa": None, "gi": None, "ehsa": None}
        if f"{m}_ehsa_category" in wards:
            entry["ehsa"] = [safe_text(v) if isinstance(v, str) else "" for v in wards[f"{m}_ehsa_category"]]
        if f"{m}_lisa_label" in wards:
            entry["lisa"] = [safe_text(v) for v in wards[f"{m}_lisa_label"]]
        if f"{m}_gi_bin" in wards:
            entry["gi"] = [safe_text(_gi_text(v)) for v in wards[f"{m}_gi_bin"]]
        info["measures"].append(entry)
    for label, sites, dist_col, walk_col in (
            ("Nearest treatment service", run.layer_table("treatment_services"), "nearest_treatment_service_m",
             "treatment_walk_min"),
            ("Nearest needle exchange", run.needle_exchanges(), "nearest_needle_exchange_m",
             "needle_exchange_walk_min")):
        names, distance = _nearest(wards, sites)
        texts = []
        for i in range(n):
            parts = []
            if names[i]:
                parts.append(f"{names[i]}, {distance_text(distance[i])} from the ward centre")
            if dist_col in wards and distance_text(wards[dist_col].iloc[i]):
                walk = wards[walk_col].iloc[i] if walk_col in wards else None
                walked = f", {walk_text(float(walk))}" if walk is not None and pd.notna(walk) else ""
                parts.append(f"residents on average {distance_text(wards[dist_col].iloc[i])}{walked}")
            texts.append("; ".join(parts) if parts else ("none in the study" if sites is None or not len(sites)
                                                         else ""))
        if any(texts):
            info["nearest"].append({"label": safe_text(label), "text": texts})
    if "is_outreach_gap" in wards:
        flags = _is_gap(wards)
        reasons = _column(wards, "gap_reason")
        ranks = _column(wards, "gap_rank")
        texts = []
        for i in range(n):
            reason = safe_text(reasons.iloc[i])
            if flags[i]:
                rank = _count_text(ranks.iloc[i])
                texts.append(f"<b>Outreach gap{' (rank ' + rank + ')' if rank else ''}</b>"
                             + (f": {reason}" if reason else ""))
            else:
                texts.append(reason)
        info["gap"] = {"flag": [int(f) for f in flags], "text": texts}
    protection = study_protection(run, settings)
    threshold = protection.threshold
    info["note"] = ("UNSUPPRESSED figures: internal use only" if getattr(settings, "unsuppressed", False)
                    else safe_text(f"<{threshold}: count from 1 to {threshold - 1}; c: hidden to protect "
                                   "another count. " + "; ".join(protection.rules_text())))
    return info


def _gi_text(value) -> str:
    try:
        b = int(float(value))
    except (TypeError, ValueError):
        return ""
    return gi_bin_text(b, "short")


# --------------------------------------------------------------------------------------------
# page furniture


def _page_title(run: StudyRun) -> str:
    title = str(run.study.name)
    if run.study.demo:
        title += " (DEMO DATA)"
    return safe_text(title)


def _title_html(run: StudyRun, settings) -> str:
    study = run.study
    boroughs = [study.borough] if study.borough else sorted({str(b) for b in run.wards.get(
        "borough_name", pd.Series(dtype=object)).dropna().unique()})
    borough = ", ".join(boroughs[:3]) + (f" and {len(boroughs) - 3} more" if len(boroughs) > 3 else "")
    sub = " · ".join(x for x in (safe_text(borough), safe_text(period_text(run.months)),
                                 f"{len(run.wards)} wards") if x)
    parts = ['<div class="gm-title" id="gm-title">',
             '<button type="button" class="gm-collapse" id="gm-title-toggle" aria-expanded="true" '
             'title="Hide or show the details">–</button>',
             f"<h1>{safe_text(study.name)}</h1>",
             '<form class="gm-search" id="gm-search" role="search" autocomplete="off">'
             '<input type="search" id="gm-search-input" list="gm-ward-list" placeholder="Find a ward (name or code)" '
             'aria-label="Find a ward by name or code"><datalist id="gm-ward-list"></datalist>'
             '<span class="gm-search-msg" id="gm-search-msg" role="status"></span></form>',
             ]
    # The banners stay visible when the details are folded away.
    if study.demo:
        parts.append('<div class="gm-banner gm-demo" id="gm-demo">DEMO DATA: a fictional borough, '
                     "not a real place</div>")
    if getattr(settings, "unsuppressed", False):
        parts.append('<div class="gm-banner gm-unsuppressed" id="gm-unsuppressed">UNSUPPRESSED – internal '
                     "use only: real small counts, do not publish</div>")
    parts += ['<div class="gm-details" id="gm-details">', f'<div class="gm-sub">{sub}</div>']
    if not getattr(settings, "unsuppressed", False):
        protection = study_protection(run, settings)
        threshold = protection.threshold
        parts.append(f'<div class="gm-sources">{safe_text(f"Protected counts from 1 to {threshold - 1} show as <{threshold}")};'
                     " c = hidden to protect another count; no rate is shown for a hidden count."
                     f' {safe_text("; ".join(protection.rules_text()))}</div>')
    sources = [safe_text(s) for s in (study.sources or [])]
    if sources:
        parts.append(f'<div class="gm-sources">Sources: {"; ".join(sources)}</div>')
    parts.append(f'<div class="gm-sources gm-vintage" id="gm-vintage">{safe_text(vintage_text(run))}</div>')
    if getattr(settings, "briefings", False):
        parts.append('<div class="gm-sources"><a href="briefings/index.html">Ward briefings and borough '
                     "overview</a></div>")
    parts.append('<div class="gm-sources">Download the ward table: <a href="wards.csv" download>CSV</a> · '
                 '<a href="wards.gpkg" download>GeoPackage</a></div>')
    parts.append('<div class="gm-sources gm-tiles-note" id="gm-tiles-note" hidden>The basemap could not be '
                 "loaded (no network?): every data layer is complete without it.</div>")
    parts.append("</div></div>")
    return "".join(parts)


def tile_layer(tiles) -> folium.TileLayer | None:
    """The basemap tile layer for a ``tiles`` setting, or ``None`` for ``"none"``.

    Raises
    ------
    InputError
        Unknown provider name (names are xyzservices', e.g. ``OpenStreetMap``, ``OpenTopoMap``).
    """
    if tiles is None or str(tiles).strip().lower() in ("", "none", "off", "false"):
        return None
    name = str(tiles).strip()
    import xyzservices

    lookup = "OpenStreetMap Mapnik" if name.lower() == "openstreetmap" else name
    try:
        xyzservices.providers.query_name(lookup)
    except ValueError:
        raise InputError(f"unknown basemap tiles '{name}'; use OpenStreetMap, OpenTopoMap, another "
                         "xyzservices provider name (e.g. Esri.WorldGrayCanvas), or none") from None
    return folium.TileLayer(name, control=False)


def _read(package: str, *parts: str) -> str:
    return resources.files(package).joinpath(*parts).read_text(encoding="utf-8")


def _script(code: str) -> str:
    code = re.sub(r"//# sourceMappingURL=\S*", "", code)
    code = re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE)
    return f"<script>{code}</script>"


def _inline_images(css: str, package: str) -> str:
    def data_uri(match: re.Match) -> str:
        ref = match.group(1)
        if not ref.startswith("images/"):
            return match.group(0)
        blob = resources.files(package).joinpath("data", *ref.split("/")).read_bytes()
        return f"url(data:image/png;base64,{base64.b64encode(blob).decode('ascii')})"
    return re.sub(r"url\(([^)#]+)\)", data_uri, css)


def asset_tags(offline: bool, cluster: bool = False, heat: bool = False) -> list[tuple[str, str]]:
    """``(name, html)`` of the page's ``<head>`` assets: Leaflet, the plugins used, our script
    and style. Offline, everything is inline (read from the installed packages)."""
    tags: list[tuple[str, str]] = []
    if offline:
        leaflet = "xstatic.pkg.leaflet"
        cl = "xstatic.pkg.leaflet_markercluster"
        tags.append(("leaflet_css", f"<style>{_inline_images(_read(leaflet, 'data', 'leaflet.css'), leaflet)}</style>"))
        tags.append(("leaflet", _script(_read(leaflet, "data", "leaflet.js"))))
        if cluster:
            tags.append(("markercluster_css", f"<style>{_read(cl, 'data', 'MarkerCluster.css')}\n"
                                              f"{_read(cl, 'data', 'MarkerCluster.Default.css')}</style>"))
            tags.append(("markercluster", _script(_read(cl, "data", "leaflet.markercluster.js"))))
        if heat:
            tags.append(("leaflet_heat", _script(_read("folium", "templates", "leaflet_heat.min.js"))))
    else:
        tags.append(("leaflet_css", f'<link rel="stylesheet" href="{_CDN["leaflet_css"]}"/>'))
        tags.append(("leaflet", f'<script src="{_CDN["leaflet_js"]}"></script>'))
        if cluster:
            tags.append(("markercluster_css", f'<link rel="stylesheet" href="{_CDN["markercluster_css"]}"/>'
                                              f'<link rel="stylesheet" href="{_CDN["markercluster_default_css"]}"/>'))
            tags.append(("markercluster", f'<script src="{_CDN["markercluster_js"]}"></script>'))
        if heat:
            tags.append(("leaflet_heat", f'<script src="{_CDN["heat_js"]}"></script>'))
    tags.append(("geomisuse_css", f"<style>{_read('geomisuse.publish.maps', 'static', 'map.css')}</style>"))
    tags.append(("geomisuse_js", _script(_read("geomisuse.publish.maps", "static", "map.js"))))
    return tags


class _App(MacroElement):
    """The page's data block, and the call that reads it once the map exists."""

    _template = Template("""
        {% macro html(this, kwargs) %}
        <script type="application/json" id="{{ this.data_id }}">{{ this.data_json }}</script>
        {% endmacro %}
        {% macro script(this, kwargs) %}
            geomisuse.init({{ this._parent.get_name() }}, {{ this.data_id|tojson }});
        {% endmacro %}
    """)

    def __init__(self, data_json: str):
        super().__init__()
        self._name = "GeomisuseData"
        self.data_id = _DATA_ID
        self.data_json = data_json


class _DataLayer(MacroElement):
    """One layer of the data block; ``static/map.js`` lists it in its layer control (ward
    colourings as one exclusive choice, overlays as check boxes) and shows it when asked."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = geomisuse.layer({{ this.layer_id|tojson }});
        {% endmacro %}
    """)

    def __init__(self, layer_id: int):
        super().__init__()
        self._name = "GeomisuseLayer"
        self.layer_id = layer_id


class _Ready(MacroElement):
    """Legend, ``#ward=`` link handling and the render timestamp, after every layer exists."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            geomisuse.ready();
        {% endmacro %}
    """)
