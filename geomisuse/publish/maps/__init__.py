"""The interactive map (folium and one escaped JSON block read by ``static/map.js``)."""

from .page import build_map, write_map

__all__ = ["build_map", "write_map"]
