"""The interactive map (first version: ward choropleth of the drug offence rate, services,
needle exchanges and estates)."""

from __future__ import annotations

from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .escaping import safe_text
from .run import StudyRun
from .settings import MAP_CRS

_COLOURS = ["#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704"]


def write_map(run: StudyRun, published: pd.DataFrame, path: Path, settings) -> None:
    """Write ``map.html`` for a run.

    Parameters
    ----------
    run
        The analysed study (sites and estates are read from its layers).
    published
        The published (suppressed) ward table: only these values reach the page.
    path
        Output file.
    settings
        :class:`geomisuse.publish.PublishSettings` (tiles, suppression).
    """
    wards = gpd.GeoDataFrame(published, geometry="geometry", crs=run.wards.crs)
    measure = next((m for m in ("drug_offences", "possession", "asb") if m in run.measures), None)
    lonlat = wards.to_crs(MAP_CRS)
    minx, miny, maxx, maxy = lonlat.total_bounds
    tiles = None if str(settings.tiles).lower() == "none" else settings.tiles
    fmap = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], tiles=tiles, control_scale=True)
    fmap.fit_bounds([[miny, minx], [maxy, maxx]])
    title = safe_text(run.study.name) + (" — DEMO DATA (fictional)" if run.study.demo else "")
    fmap.get_root().html.add_child(folium.Element(
        f'<div style="position:fixed;top:8px;left:50px;z-index:1000;background:white;padding:4px 8px;'
        f'font:14px sans-serif">{title}</div>'))

    rate_column = f"{measure}_rate_per_1000" if measure else None
    rates = pd.to_numeric(wards[rate_column], errors="coerce") if rate_column else pd.Series(np.nan, index=wards.index)
    breaks = np.nanquantile(rates, [0.2, 0.4, 0.6, 0.8]) if rates.notna().any() else []
    features = []
    for i, row in lonlat.iterrows():
        rate = rates[i]
        colour = "#cccccc" if np.isnan(rate) else _COLOURS[int(np.searchsorted(breaks, rate, side="right"))]
        tooltip = (f"<b>{safe_text(row['ward_name'])}</b> ({safe_text(row['ward_code'])})<br>"
                   + (f"{safe_text(measure.replace('_', ' '))}: {safe_text(row[f'{measure}_count'])}, "
                      f"rate {'' if np.isnan(rate) else f'{rate:.1f}'} per 1,000" if measure else ""))
        features.append({"type": "Feature", "geometry": shapely.geometry.mapping(row.geometry),
                         "properties": {"colour": colour, "tooltip": tooltip}})
    layer = folium.GeoJson({"type": "FeatureCollection", "features": features}, name="Wards: drug offence rate",
                           style_function=lambda f: {"fillColor": f["properties"]["colour"], "color": "#444",
                                                     "weight": 1, "fillOpacity": 0.7},
                           tooltip=folium.GeoJsonTooltip(fields=["tooltip"], labels=False))
    layer.add_to(fmap)
    for kind, label, colour in (("treatment_services", "Treatment services", "#1b7837"),
                                ("needle_exchanges", "Needle exchanges", "#2166ac"),
                                ("estates", "Estates", "#762a83")):
        table = run.needle_exchanges() if kind == "needle_exchanges" else run.layer_table(kind)
        if table is None or table.empty:
            continue
        group = folium.FeatureGroup(name=label)
        for _, site in table.to_crs(MAP_CRS).iterrows():
            point = site.geometry.representative_point()
            folium.CircleMarker([point.y, point.x], radius=6, color=colour, fill=True,
                                tooltip=safe_text(site["name"])).add_to(group)
        group.add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.save(str(path))
