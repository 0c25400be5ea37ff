"""Where a ward "is" on a page: one definition of a ward's centre for the map and the briefings,
so that a distance "from the ward centre" is the same number everywhere."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely


def ward_centres(geometry: gpd.GeoSeries) -> gpd.GeoSeries:
    """Each ward's centre: its centroid, or a point inside the ward when the centroid falls
    outside it (crescent or multi-part wards). Same CRS and index as ``geometry``.

    Parameters
    ----------
    geometry
        Ward polygons, in a projected CRS (EPSG:27700) so that centroids are meaningful.
    """
    values = geometry.to_numpy()
    centroids = shapely.centroid(values)
    inside = shapely.contains(values, centroids)
    points = np.where(inside, centroids, shapely.point_on_surface(values))
    return gpd.GeoSeries(points, index=geometry.index, crs=geometry.crs)
