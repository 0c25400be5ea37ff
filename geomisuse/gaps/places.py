"""Where a suggested site is, in words a team can use: the nearest named street (from the OSM
walking network), the nearest postcode (from a postcode file), else (a grid point with neither)
its distance and direction from its ward's centre, and a link to the map."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from scipy.spatial import cKDTree

from ..config import ANALYSIS_CRS, MAP_CRS
from ..layers.postcodes import Postcodes
from ..publish.text import distance_text
from .network import WalkingNetwork

#: A street farther than this (metres) from a site is not used to name it.
STREET_SEARCH_M = 150.0

#: Columns :func:`describe_places` returns.
PLACE_COLUMNS = ["street_name", "postcode", "postcode_distance_m", "location", "map_url"]

_TO_LONLAT = Transformer.from_crs(ANALYSIS_CRS, MAP_CRS, always_xy=True)


def nearest_street_names(network: WalkingNetwork, xy: np.ndarray,
                         search_m: float = STREET_SEARCH_M) -> list[str]:
    """The name of the nearest named way within ``search_m`` of each point (``""`` if none).

    Parameters
    ----------
    network
        The walking graph (segments carry their way's ``name`` or ``ref``).
    xy
        ``(n, 2)`` points in EPSG:27700 metres.
    search_m
        Search distance in metres.

    Returns
    -------
    list[str]
        One name per point; ties go to the lowest segment position.
    """
    named = np.flatnonzero(network.segment_name > 0)
    result = [""] * len(xy)
    if not len(named) or not len(xy):
        return result
    tree = shapely.STRtree(network.segment_lines()[named])
    point_idx, line_idx = tree.query_nearest(shapely.points(xy), max_distance=search_m,
                                             all_matches=True)
    order = np.lexsort((line_idx, point_idx))
    point_idx, line_idx = point_idx[order], line_idx[order]
    first = np.r_[True, point_idx[1:] != point_idx[:-1]] if len(point_idx) else point_idx
    for p, s in zip(point_idx[first], line_idx[first]):
        result[int(p)] = network.names[int(network.segment_name[named[s]])]
    return result


def map_url(lon: float, lat: float) -> str:
    """An OpenStreetMap link centred on a point at street zoom, with a marker."""
    return (f"https://www.openstreetmap.org/?mlat={lat:.5f}&mlon={lon:.5f}"
            f"#map=18/{lat:.5f}/{lon:.5f}")


#: Compass points, clockwise from north, for :func:`from_ward_centre`.
_COMPASS = ("north", "north-east", "east", "south-east", "south", "south-west", "west", "north-west")


def from_ward_centre(xy: np.ndarray, centres: np.ndarray, ward_names: list[str]) -> list[str]:
    """Where each point is from its ward's centre, in words a reader can find on a map.

    Parameters
    ----------
    xy, centres
        ``(n, 2)`` points and their wards' centres (:func:`geomisuse.publish.places.ward_centres`),
        EPSG:27700 metres.
    ward_names
        Each point's ward name.

    Returns
    -------
    list[str]
        E.g. "about 600 m north-east of the centre of Saltmarsh" (distances to 100 m), or "at
        the centre of Saltmarsh" within 50 m of it.
    """
    out = []
    for (x, y), (cx, cy), name in zip(np.asarray(xy, float), np.asarray(centres, float), ward_names):
        distance = float(np.hypot(x - cx, y - cy))
        if distance < 50:
            out.append(f"at the centre of {name}")
            continue
        bearing = (np.degrees(np.arctan2(x - cx, y - cy)) + 360.0) % 360.0
        out.append(f"about {distance_text(round(distance, -2))} {_COMPASS[int((bearing + 22.5) // 45) % 8]} "
                   f"of the centre of {name}")
    return out


def describe_places(xy: np.ndarray, network: WalkingNetwork | None,
                    postcodes: Postcodes | None, fallback: list[str] | None = None) -> pd.DataFrame:
    """Street, postcode, a one-line location and a map link for each point.

    Parameters
    ----------
    xy
        ``(n, 2)`` points in EPSG:27700 metres.
    network
        The walking graph for street names, or ``None`` (no street names).
    postcodes
        Postcode points, or ``None`` (no postcodes).
    fallback
        Per point, the location to give when neither a street nor a postcode is known (e.g.
        :func:`from_ward_centre`; ``""`` for none).

    Returns
    -------
    pandas.DataFrame
        :data:`PLACE_COLUMNS`: ``location`` reads e.g. "Malden Road, NW5 3HS" (what is known),
        else the fallback; ``postcode_distance_m`` is the straight line to the postcode's position.
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    streets = nearest_street_names(network, xy) if network is not None else [""] * len(xy)
    codes, code_distance = [""] * len(xy), np.full(len(xy), np.nan)
    if postcodes is not None and len(postcodes.code) and len(xy):
        distance, nearest = cKDTree(postcodes.xy).query(xy, k=1)
        codes = [str(postcodes.code[i]) for i in nearest]
        code_distance = np.round(distance, 0)
    lon, lat = _TO_LONLAT.transform(xy[:, 0], xy[:, 1]) if len(xy) else ([], [])
    return pd.DataFrame({
        "street_name": streets, "postcode": codes, "postcode_distance_m": code_distance,
        "location": [", ".join(p for p in (s, c) if p) or f
                     for s, c, f in zip(streets, codes, fallback or [""] * len(xy))],
        "map_url": [map_url(float(a), float(b)) for a, b in zip(np.atleast_1d(lon),
                                                                np.atleast_1d(lat))],
    })
