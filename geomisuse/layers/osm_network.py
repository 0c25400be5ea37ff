"""Read the ways a pedestrian may use from an OpenStreetMap extract (PBF or XML), or from an
osmnx GraphML file (``ox.save_graphml``: an edge's ``geometry`` is followed when it has one).

The reader is pyosmium (``osmium`` on PyPI, wheels for every platform, no system build). It was
measured against pyrosm on the real Camden extract (3.5 MB, 41,362 ways): pyosmium reads the
10,674 highway ways with their node locations in 0.46 s; pyrosm takes 1.5 s to import and 1.7 s
to its walking network (``benchmarks/bench_network.py`` prints the pyosmium figure).

What counts as walkable (the rules follow osmnx's ``walk`` network and OSM's access tags):

* any ``highway=*`` way except motorways, ways not built (``proposed``, ``construction``,
  ``planned``, ``abandoned``, ``disused``, ``razed``) and ways that are not for people
  (``raceway``, ``bus_guideway``, ``busway``, ``escape``);
* not ``foot=no`` (nor ``foot=use_sidepath``: the pavement beside it is mapped on its own);
* not private: ``access=private|no`` or ``service=private`` unless ``foot`` says people may
  walk there (``yes``, ``designated``, ``permissive``).

Every highway way read is either kept or counted under the reason it was excluded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError

#: Highway values nobody walks on (or that do not exist yet / any more).
EXCLUDED_HIGHWAYS = frozenset({
    "motorway", "motorway_link", "proposed", "construction", "planned", "abandoned", "disused",
    "razed", "raceway", "bus_guideway", "busway", "escape",
})
#: ``foot`` values that forbid walking.
FOOT_FORBIDDEN = frozenset({"no", "use_sidepath"})
#: ``foot`` values that allow walking where ``access`` alone would not.
FOOT_ALLOWED = frozenset({"yes", "designated", "permissive"})
#: ``access``/``service`` values that make a way private.
PRIVATE = frozenset({"private", "no"})

#: File name endings read as OSM data.
OSM_SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.bz2", ".osm.gz")
#: File name ending read as an osmnx graph.
GRAPHML_SUFFIX = ".graphml"


def walking_exclusion(highway: str, foot: str | None, access: str | None,
                      service: str | None) -> str | None:
    """Why a highway way is not walkable, or ``None`` when it is.

    Parameters
    ----------
    highway, foot, access, service
        The way's tag values (``None`` when absent).

    Returns
    -------
    str or None
        A reason such as ``highway=motorway``, ``foot=no`` or ``private``.
    """
    if highway in EXCLUDED_HIGHWAYS:
        return f"highway={highway}"
    if foot in FOOT_FORBIDDEN:
        return f"foot={foot}"
    if foot not in FOOT_ALLOWED and (access in PRIVATE or service == "private"):
        return "private"
    return None


@dataclass
class WalkableWays:
    """The walkable ways of an OSM file as node-to-node segments.

    Attributes
    ----------
    node_id : numpy.ndarray
        OSM ids of the nodes the segments use.
    node_lonlat : numpy.ndarray
        ``(n, 2)`` longitude/latitude (EPSG:4326) of those nodes.
    segment_nodes : numpy.ndarray
        ``(s, 2)`` positions into ``node_id`` of each segment's two ends, in way order.
    segment_way : numpy.ndarray
        Position into ``way_name`` of each segment's way.
    way_name : list[str]
        Per kept way, its ``name`` tag (else its ``ref``; ``""`` when it has neither).
    highway_ways : int
        Ways with a ``highway`` tag that were read.
    excluded : dict[str, int]
        Ways not kept, by reason (:func:`walking_exclusion`; ``missing nodes`` for a way none of
        whose segments has both node locations in the file).
    segments_missing_nodes : int
        Segments dropped because a node's location is not in the file (ways cut by the extract).
    """

    node_id: np.ndarray
    node_lonlat: np.ndarray
    segment_nodes: np.ndarray
    segment_way: np.ndarray
    way_name: list[str]
    highway_ways: int
    excluded: dict[str, int] = field(default_factory=dict)
    segments_missing_nodes: int = 0


def read_walkable_ways(path: str | Path) -> WalkableWays:
    """The walkable ways of an OSM PBF or XML file.

    Parameters
    ----------
    path
        OSM file (``.osm.pbf``, ``.osm``, optionally compressed ``.osm.gz``/``.osm.bz2``).

    Returns
    -------
    WalkableWays

    Raises
    ------
    InputError
        File missing, not OSM data, or holding no walkable way.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("walking network file not found; give an OSM .osm.pbf or .osm file",
                         path)
    if path.name.lower().endswith(GRAPHML_SUFFIX):
        return read_graphml_ways(path)
    import osmium

    refs: list[int] = []
    lons: list[float] = []
    lats: list[float] = []
    starts: list[int] = []      # per kept way, its first position in refs
    names: list[str] = []
    excluded: Counter[str] = Counter()
    highway_ways = 0
    try:
        processor = (osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
                     .with_locations()
                     .with_filter(osmium.filter.KeyFilter("highway").enable_for(osmium.osm.WAY))
                     .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY)))
        for way in processor:
            highway_ways += 1
            tags = way.tags
            reason = walking_exclusion(tags.get("highway"), tags.get("foot"),
                                       tags.get("access"), tags.get("service"))
            if reason is not None:
                excluded[reason] += 1
                continue
            starts.append(len(refs))
            names.append(tags.get("name") or tags.get("ref") or "")
            for node in way.nodes:
                location = node.location
                refs.append(node.ref)
                if location.valid():
                    lons.append(location.lon)
                    lats.append(location.lat)
                else:
                    lons.append(np.nan)
                    lats.append(np.nan)
    except RuntimeError as err:  # libosmium's errors (not OSM data, truncated file ...)
        raise InputError(f"cannot read it as OpenStreetMap data ({err}); give an OSM .osm.pbf "
                         "or .osm file", path) from None
    if not starts:
        raise InputError("holds no way a pedestrian may use (no highway=* ways); give an OSM "
                         "extract with its streets and footways", path)
    return _segments(np.asarray(refs, dtype=np.int64), np.column_stack([lons, lats]),
                     np.asarray(starts, dtype=np.int64), names, highway_ways, excluded)


def _segments(refs: np.ndarray, lonlat: np.ndarray, starts: np.ndarray, names: list[str],
              highway_ways: int, excluded: Counter) -> WalkableWays:
    """Consecutive node pairs of every kept way, dropping those with a node location missing."""
    way_of = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(refs)]))
    same_way = way_of[1:] == way_of[:-1]
    valid = np.isfinite(lonlat[:, 0])
    both = valid[1:] & valid[:-1]
    keep = same_way & both
    missing = int((same_way & ~both).sum())
    first = np.flatnonzero(keep)
    kept_ways = np.unique(way_of[first])
    lost = len(starts) - len(kept_ways)
    if lost:
        excluded = Counter(excluded)
        excluded["missing nodes"] += lost
    node_id, inverse = np.unique(refs, return_inverse=True)
    node_lonlat = np.full((len(node_id), 2), np.nan)
    node_lonlat[inverse[valid]] = lonlat[valid]
    pairs = np.column_stack([inverse[first], inverse[first + 1]])
    used, compact = np.unique(pairs, return_inverse=True)
    return WalkableWays(node_id=node_id[used], node_lonlat=node_lonlat[used],
                        segment_nodes=compact.reshape(-1, 2), segment_way=way_of[first],
                        way_name=names, highway_ways=highway_ways,
                        excluded=dict(sorted(excluded.items())), segments_missing_nodes=missing)


def read_graphml_ways(path: Path) -> WalkableWays:
    """The walkable edges of an osmnx GraphML file (nodes with ``x``/``y`` in lon/lat).

    Each edge is a way: its ``geometry`` (WKT, when osmnx simplified the graph) or the
    straight line between its nodes; the same walking rules apply to its ``highway``,
    ``foot``, ``access`` and ``service`` values when present. A projected graph (a ``crs``
    other than EPSG:4326) is refused with a message.

    Raises
    ------
    InputError
        Not GraphML, projected, or with no walkable edge.
    """
    import networkx as nx
    import shapely

    try:
        graph = nx.read_graphml(path)
    except (nx.NetworkXError, SyntaxError, ValueError, KeyError) as err:
        raise InputError(f"cannot read it as GraphML ({err}); save the osmnx graph with "
                         "ox.save_graphml", path) from None
    crs = str(graph.graph.get("crs", "epsg:4326")).lower()
    if crs not in ("epsg:4326", "wgs84", "+proj=longlat +datum=wgs84 +no_defs"):
        raise InputError(f"is a projected graph ({crs}); save the unprojected osmnx graph "
                         "(longitude/latitude)", path)
    node_lonlat = {n: (float(d["x"]), float(d["y"])) for n, d in graph.nodes(data=True)
                   if "x" in d and "y" in d}
    refs: list[int] = []
    lonlat: list[tuple[float, float]] = []
    starts: list[int] = []
    names: list[str] = []
    excluded: Counter[str] = Counter()
    node_id = {n: i for i, n in enumerate(node_lonlat, start=1)}
    inner = 0                   # inner vertices of edge geometries get ids of their own: -1, -2 ...
    highway_ways = 0
    seen: set[frozenset] = set()
    for u, v, data in graph.edges(data=True):
        pair = frozenset((u, v))
        if pair in seen and not data.get("geometry"):
            continue            # osmnx stores both directions of a two-way street
        seen.add(pair)
        highway_ways += 1
        reason = walking_exclusion(data.get("highway"), data.get("foot"), data.get("access"),
                                   data.get("service"))
        if reason is not None:
            excluded[reason] += 1
            continue
        if u not in node_lonlat or v not in node_lonlat:
            excluded["missing nodes"] += 1
            continue
        line = (shapely.get_coordinates(shapely.from_wkt(data["geometry"])).tolist()
                if data.get("geometry") else [node_lonlat[u], node_lonlat[v]])
        starts.append(len(refs))
        names.append(str(data.get("name") or data.get("ref") or ""))
        for k, point in enumerate(line):
            if k == 0 or k == len(line) - 1:
                refs.append(node_id[u if k == 0 else v])
            else:
                inner += 1
                refs.append(-inner)
            lonlat.append((float(point[0]), float(point[1])))
    if not starts:
        raise InputError("holds no edge a pedestrian may use; give an osmnx walking graph", path)
    return _segments(np.asarray(refs, dtype=np.int64), np.asarray(lonlat, dtype=float),
                     np.asarray(starts, dtype=np.int64), names, highway_ways, excluded)
