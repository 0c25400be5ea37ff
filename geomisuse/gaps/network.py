"""Walking over real streets: the walking graph, snapping to it, and network walking distances.

* **The graph** (:func:`load_walking_network`): the walkable ways of an OSM extract
  (:mod:`geomisuse.layers.osm_network`) as node-to-node segments in EPSG:27700, each weighted by
  its length in metres, cleaned to its largest connected component (islands such as a
  private courtyard's paths would otherwise trap the points snapped to them). It is cached in a
  ``.npz`` file keyed by the input's sha256, so a second run reads it in milliseconds.
* **Snapping** (:meth:`WalkingNetwork.snap`): each resident point, service or candidate site
  joins the network at the nearest point of the nearest segment; the snap distance (the walk
  from the door to the street) is walked in a straight line at the same speed and reported.
* **Distances** (:func:`nearest_network_distance`, :func:`network_distances_within`):
  multi-source Dijkstra (``scipy.sparse.csgraph.dijkstra``). Each site becomes an extra graph
  node joined to both ends of its segment by the distance along it (plus its snap distance),
  so one run with ``min_only=True`` from all the sites gives every node's distance to its
  nearest site. A point on a segment then reaches its nearest site through either end of the
  segment, or directly along it when a site sits on the same segment.

Every network distance is the length of a polyline from the point to the site (snap leg,
segments, snap leg), so it is never shorter than the straight line between them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer
from scipy import sparse
from scipy.sparse.csgraph import connected_components, dijkstra

from ..config import ANALYSIS_CRS, MAP_CRS
from ..errors import InputError
from ..layers.base import sha256
from ..layers.osm_network import read_walkable_ways

#: Bumped whenever the graph built from the same file would change (rules, cleaning, format).
CACHE_VERSION = 1
#: Folder, next to the study file, holding the cached graphs.
CACHE_FOLDER = ".geomisuse-cache"
#: Sites handled per limited Dijkstra run (rows of a dense block of node distances).
_CHUNK = 64
# Weight of a zero-length link: csgraph reads an explicit zero as "no edge".
_TINY_M = 1e-6

_TO_BNG = Transformer.from_crs(MAP_CRS, ANALYSIS_CRS, always_xy=True)


@dataclass
class Snap:
    """Where points join the network.

    Attributes
    ----------
    segment : numpy.ndarray
        Position of the nearest segment of each point.
    along_m : numpy.ndarray
        Distance (metres) along that segment from its first node to the joining point.
    offset_m : numpy.ndarray
        Straight-line snap distance (metres) from the point to the joining point.
    xy : numpy.ndarray
        ``(n, 2)`` joining points on the network (EPSG:27700).
    """

    segment: np.ndarray
    along_m: np.ndarray
    offset_m: np.ndarray
    xy: np.ndarray


@dataclass
class WalkingNetwork:
    """A walking graph: segments between OSM nodes, in EPSG:27700 metres.

    Attributes
    ----------
    node_xy : numpy.ndarray
        ``(n, 2)`` node coordinates.
    segment_nodes : numpy.ndarray
        ``(s, 2)`` node positions of each segment's ends.
    segment_length_m : numpy.ndarray
        Length of each segment (metres).
    segment_name : numpy.ndarray
        Position into ``names`` of each segment's street name.
    names : list[str]
        Street names (OSM ``name``, else ``ref``); position 0 is ``""`` (no name).
    report : dict
        How it was built: source file and sha256, ways read / kept / excluded by reason,
        nodes, segments, km, the largest component's share, cache use, seconds.
    """

    node_xy: np.ndarray
    segment_nodes: np.ndarray
    segment_length_m: np.ndarray
    segment_name: np.ndarray
    names: list[str]
    report: dict = field(default_factory=dict)
    _tree: shapely.STRtree | None = field(default=None, repr=False)
    _graph: sparse.csr_matrix | None = field(default=None, repr=False)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_xy)

    def segment_lines(self) -> np.ndarray:
        """The segments as shapely LineStrings (first node to second)."""
        ends = self.node_xy[self.segment_nodes]            # (s, 2, 2)
        return shapely.linestrings(ends)

    def tree(self) -> shapely.STRtree:
        """An STRtree over the segments (built once)."""
        if self._tree is None:
            self._tree = shapely.STRtree(self.segment_lines())
        return self._tree

    def graph(self) -> sparse.csr_matrix:
        """The segments as a sparse (upper, undirected) adjacency matrix of lengths."""
        if self._graph is None:
            u, v = self.segment_nodes[:, 0], self.segment_nodes[:, 1]
            self._graph = sparse.csr_matrix(
                (np.maximum(self.segment_length_m, _TINY_M), (u, v)),
                shape=(self.n_nodes, self.n_nodes))
        return self._graph

    def snap(self, xy: np.ndarray) -> Snap:
        """Join points to the nearest point of the nearest segment.

        Parameters
        ----------
        xy
            ``(n, 2)`` coordinates in EPSG:27700 metres.

        Returns
        -------
        Snap
            Segment, position along it, snap distance and joining point of each point
            (ties go to the lowest segment position).
        """
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        if len(xy) == 0:
            return Snap(np.empty(0, np.int64), np.empty(0), np.empty(0), np.empty((0, 2)))
        points = shapely.points(xy)
        (point_idx, segment_idx), _ = self.tree().query_nearest(
            points, all_matches=True, return_distance=True)
        # all_matches keeps every equally near segment; the lowest position wins, deterministically.
        order = np.lexsort((segment_idx, point_idx))
        point_idx, segment_idx = point_idx[order], segment_idx[order]
        first = np.r_[True, point_idx[1:] != point_idx[:-1]]
        segment = np.empty(len(xy), dtype=np.int64)
        segment[point_idx[first]] = segment_idx[first]
        lines = self.tree().geometries[segment]
        along = shapely.line_locate_point(lines, points)
        joined = shapely.get_coordinates(shapely.line_interpolate_point(lines, along))
        offset = np.hypot(*(xy - joined).T)
        return Snap(segment, np.minimum(along, self.segment_length_m[segment]), offset, joined)

    def with_sites(self, sites: Snap) -> sparse.csr_matrix:
        """The graph with one extra node per site (numbered from :attr:`n_nodes`), joined to
        both ends of its segment by its snap distance plus the distance along the segment."""
        n, m = self.n_nodes, len(sites.segment)
        ends = self.segment_nodes[sites.segment]
        length = self.segment_length_m[sites.segment]
        site_ids = n + np.arange(m)
        rows = np.r_[self.segment_nodes[:, 0], site_ids, site_ids]
        cols = np.r_[self.segment_nodes[:, 1], ends[:, 0], ends[:, 1]]
        weights = np.r_[self.segment_length_m, sites.offset_m + sites.along_m,
                        sites.offset_m + (length - sites.along_m)]
        return sparse.csr_matrix((np.maximum(weights, _TINY_M), (rows, cols)),
                                 shape=(n + m, n + m))


def _through_ends(node_distance: np.ndarray, network: WalkingNetwork, points: Snap) -> np.ndarray:
    """Distance from each point to the sources of ``node_distance`` (``(..., nodes)``) through
    either end of its segment, its snap leg included."""
    ends = network.segment_nodes[points.segment]
    length = network.segment_length_m[points.segment]
    via_first = node_distance[..., ends[:, 0]] + points.along_m
    via_second = node_distance[..., ends[:, 1]] + (length - points.along_m)
    return np.minimum(via_first, via_second) + points.offset_m


def _same_segment(points: Snap, sites: Snap) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (point, site) on the same segment, and the distance between them along it."""
    if len(points.segment) == 0 or len(sites.segment) == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0)
    order = np.argsort(sites.segment, kind="stable")
    sorted_segments = sites.segment[order]
    low = np.searchsorted(sorted_segments, points.segment, side="left")
    high = np.searchsorted(sorted_segments, points.segment, side="right")
    counts = high - low
    point_idx = np.repeat(np.arange(len(points.segment)), counts)
    if len(point_idx) == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0)
    offsets = np.arange(len(point_idx)) - np.repeat(np.cumsum(counts) - counts, counts)
    site_idx = order[np.repeat(low, counts) + offsets]
    direct = (np.abs(points.along_m[point_idx] - sites.along_m[site_idx])
              + points.offset_m[point_idx] + sites.offset_m[site_idx])
    return point_idx, site_idx, direct


def nearest_network_distance(network: WalkingNetwork, points: Snap, sites: Snap) -> np.ndarray:
    """Network walking distance (metres) from each point to its nearest site.

    Parameters
    ----------
    network
        The walking graph.
    points, sites
        Snapped points and sites (:meth:`WalkingNetwork.snap`).

    Returns
    -------
    numpy.ndarray
        Per point, snap leg + streets + the site's snap leg, in metres; ``inf`` with no sites.
    """
    if len(sites.segment) == 0:
        return np.full(len(points.segment), np.inf)
    graph = network.with_sites(sites)
    sources = network.n_nodes + np.arange(len(sites.segment))
    node_distance = dijkstra(graph, directed=False, indices=sources, min_only=True)
    distance = _through_ends(node_distance, network, points)
    point_idx, _, direct = _same_segment(points, sites)
    np.minimum.at(distance, point_idx, direct)
    return distance


def network_distances_within(network: WalkingNetwork, points: Snap, sites: Snap,
                             limit_m: float) -> sparse.csr_matrix:
    """Network distances from every site to every point, kept where within ``limit_m``.

    Parameters
    ----------
    network
        The walking graph.
    points, sites
        Snapped points and sites.
    limit_m
        Largest distance kept (metres).

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(points, sites)`` distances in metres; absent entries are beyond ``limit_m``. A
        distance of exactly 0 is stored as 1e-6 m so that it is not taken for "absent".
    """
    n_points, n_sites = len(points.segment), len(sites.segment)
    if n_points == 0 or n_sites == 0:
        return sparse.csr_matrix((n_points, n_sites))
    graph = network.with_sites(sites)
    rows, cols, values = [], [], []
    for start in range(0, n_sites, _CHUNK):
        block = np.arange(start, min(start + _CHUNK, n_sites))
        node_distance = dijkstra(graph, directed=False, indices=network.n_nodes + block,
                                 limit=limit_m)
        distance = _through_ends(node_distance, network, points)      # (block, points)
        site_in_block, point_idx = np.nonzero(distance <= limit_m)
        rows.append(point_idx)
        cols.append(block[site_in_block])
        values.append(distance[site_in_block, point_idx])
    point_idx, site_idx, direct = _same_segment(points, sites)
    near = direct <= limit_m
    rows.append(point_idx[near])
    cols.append(site_idx[near])
    values.append(direct[near])
    # A same-segment pair is also found through the segment's ends: the shorter is kept.
    return _min_duplicates(np.concatenate(rows), np.concatenate(cols),
                           np.maximum(np.concatenate(values), _TINY_M), (n_points, n_sites))


def _min_duplicates(rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
                    shape: tuple[int, int]) -> sparse.csr_matrix:
    """A CSR matrix keeping the smallest value of each repeated (row, column)."""
    order = np.lexsort((values, cols, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    first = np.r_[True, (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])] if len(rows) else \
        np.zeros(0, dtype=bool)
    return sparse.csr_matrix((values[first], (rows[first], cols[first])), shape=shape)


def build_walking_network(path: Path) -> WalkingNetwork:
    """Build the walking graph of an OSM file (no cache).

    Parameters
    ----------
    path
        OSM PBF or XML file.

    Returns
    -------
    WalkingNetwork
        Its largest connected component, with the build report.
    """
    start = time.perf_counter()
    ways = read_walkable_ways(path)
    x, y = _TO_BNG.transform(ways.node_lonlat[:, 0], ways.node_lonlat[:, 1])
    node_xy = np.column_stack([x, y])
    ends = ways.segment_nodes
    # One segment per node pair (two ways drawn over each other count once); no self-loops.
    pair = np.sort(ends, axis=1)
    pair_key = pair[:, 0].astype(np.int64) * len(node_xy) + pair[:, 1]
    _, unique = np.unique(pair_key, return_index=True)
    unique = np.sort(unique)
    unique = unique[pair[unique, 0] != pair[unique, 1]]
    ends, segment_way = ends[unique], ways.segment_way[unique]
    length = np.hypot(*(node_xy[ends[:, 0]] - node_xy[ends[:, 1]]).T)

    adjacency = sparse.csr_matrix((np.ones(len(ends)), (ends[:, 0], ends[:, 1])),
                                  shape=(len(node_xy),) * 2)
    n_components, label = connected_components(adjacency, directed=False)
    sizes = np.bincount(label)
    largest = int(np.argmax(sizes))
    keep_node = label == largest
    keep_segment = keep_node[ends[:, 0]]
    new_position = np.cumsum(keep_node) - 1
    ends = new_position[ends[keep_segment]]
    length, segment_way = length[keep_segment], segment_way[keep_segment]

    names = [""] + sorted({n for n in ways.way_name if n})
    name_position = {n: i for i, n in enumerate(names)}
    way_name_position = np.array([name_position[n] for n in ways.way_name], dtype=np.int64)
    report = {
        "path": str(path), "sha256": sha256(path), "reader": _reader_version(),
        "highway_ways_read": ways.highway_ways,
        "ways_kept": ways.highway_ways - sum(ways.excluded.values()),
        "ways_excluded": ways.excluded,
        "segments_dropped_missing_nodes": ways.segments_missing_nodes,
        "components": int(n_components),
        "nodes": int(keep_node.sum()), "nodes_outside_largest_component": int((~keep_node).sum()),
        "segments": int(len(ends)), "km": round(float(length.sum()) / 1000.0, 1),
        "build_seconds": round(time.perf_counter() - start, 3),
    }
    return WalkingNetwork(node_xy=node_xy[keep_node], segment_nodes=ends.astype(np.int64),
                          segment_length_m=length, segment_name=way_name_position[segment_way],
                          names=names, report=report)


def _reader_version() -> str:
    from importlib.metadata import version

    return f"pyosmium {version('osmium')}"


def cache_path(path: Path, cache_dir: Path, digest: str) -> Path:
    """The cache file of a network input: its name, hash and the cache version."""
    stem = path.name.split(".")[0] or "network"
    return cache_dir / f"{stem}-{digest[:16]}-walking-v{CACHE_VERSION}.npz"


def load_walking_network(path: str | Path, cache_dir: str | Path | None,
                         write_cache: bool = True) -> WalkingNetwork:
    """The walking graph of an OSM file, from the cache when it holds this file's graph.

    Parameters
    ----------
    path
        OSM PBF or XML file.
    cache_dir
        Folder of cached graphs (created when missing); ``None`` -> no cache.
    write_cache
        ``False``: use a cached graph but never write one (``geomisuse validate`` writes nothing).

    Returns
    -------
    WalkingNetwork
        ``report["cache"]`` says ``hit``, ``written`` or why not (``off``, ``not writable``).

    Raises
    ------
    InputError
        File missing or not OSM data, or with no walkable way.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("walking network file not found; give an OSM .osm.pbf or .osm file",
                         path)
    start = time.perf_counter()
    digest = sha256(path)
    cached = cache_path(path, Path(cache_dir), digest) if cache_dir is not None else None
    if cached is not None and cached.is_file():
        try:
            network = _read_cache(cached)
        except (OSError, ValueError, KeyError):
            network = None  # a damaged cache is rebuilt, not trusted
        if network is not None and network.report.get("sha256") == digest:
            network.report.update(cache="hit", cache_file=str(cached), path=str(path),
                                  load_seconds=round(time.perf_counter() - start, 3))
            return network
    network = build_walking_network(path)
    network.report["cache"] = "off" if write_cache or cached is None else "not written (validate)"
    if cached is not None and write_cache:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            _write_cache(network, cached)
            network.report.update(cache="written", cache_file=str(cached))
        except OSError as err:
            network.report["cache"] = f"not written ({err.strerror or err})"
    network.report["load_seconds"] = round(time.perf_counter() - start, 3)
    return network


def _write_cache(network: WalkingNetwork, target: Path) -> None:
    """Write the graph to ``target`` atomically (a temporary file renamed into place)."""
    import json

    partial = target.with_name(target.name + ".partial")
    with open(partial, "wb") as handle:
        np.savez(handle, node_xy=network.node_xy, segment_nodes=network.segment_nodes,
                 segment_length_m=network.segment_length_m, segment_name=network.segment_name,
                 names=np.array(network.names, dtype=object).astype(str),
                 report=np.array(json.dumps(network.report)))
    partial.replace(target)


def _read_cache(source: Path) -> WalkingNetwork:
    """Read a graph written by :func:`_write_cache`."""
    import json

    with np.load(source, allow_pickle=False) as data:
        return WalkingNetwork(node_xy=data["node_xy"], segment_nodes=data["segment_nodes"],
                              segment_length_m=data["segment_length_m"],
                              segment_name=data["segment_name"], names=data["names"].tolist(),
                              report=json.loads(str(data["report"])))


@dataclass
class NetworkAccess:
    """What walking over the network measured, beyond the per-kind access.

    Attributes
    ----------
    network_mean_m : dict[str, numpy.ndarray]
        Per kind, each ward's residents' mean network walking distance (metres) to the
        nearest service (NaN: no service).
    snap_m : numpy.ndarray
        Per resident point, its straight-line walk to the street (metres).
    far_points : numpy.ndarray
        Per resident point, is it farther than the snap limit from any walkable way?
    detour : dict[str, dict]
        Per kind, the measured detour factor (network / straight-line distance to the nearest
        service) over the resident points: ``median``, ``p10``, ``p25``, ``p75``, ``p90``,
        ``points``.
    report : dict
        The manifest section (network build report, snapping, detour factors, far points).
    """

    network_mean_m: dict[str, np.ndarray]
    snap_m: np.ndarray
    far_points: np.ndarray
    detour: dict[str, dict]
    report: dict


def detour_summary(network_m: np.ndarray, straight_m: np.ndarray) -> dict:
    """Median and spread of network / straight-line distance over points with both finite.

    Points closer than 1 m in a straight line are left out (the ratio means nothing there).

    Parameters
    ----------
    network_m, straight_m
        Per point, network and straight-line distance to the nearest service (metres).

    Returns
    -------
    dict
        ``median``, ``p10``, ``p25``, ``p75``, ``p90`` (rounded to 0.01) and ``points``;
        ``points = 0`` and no figures when nothing qualifies.
    """
    usable = np.isfinite(network_m) & np.isfinite(straight_m) & (straight_m >= 1.0)
    if not usable.any():
        return {"points": 0}
    ratio = network_m[usable] / straight_m[usable]
    p10, p25, median, p75, p90 = np.percentile(ratio, [10, 25, 50, 75, 90])
    return {"median": round(float(median), 2), "p10": round(float(p10), 2),
            "p25": round(float(p25), 2), "p75": round(float(p75), 2),
            "p90": round(float(p90), 2), "points": int(usable.sum())}


def uncovered_wards(sample_ward: np.ndarray, far: np.ndarray, n_wards: int) -> np.ndarray:
    """Positions of wards where more than half of the resident points are far from any way."""
    points = np.bincount(sample_ward, minlength=n_wards)
    far_count = np.bincount(sample_ward, weights=far.astype(float), minlength=n_wards)
    return np.flatnonzero((points > 0) & (far_count > points / 2))


def network_access(network: WalkingNetwork, sample, wards, services_xy: dict[str, np.ndarray],
                   straight_m: dict[str, np.ndarray], limit_m: float, speed_m_per_min: float,
                   max_snap_m: float) -> tuple[dict[str, dict], NetworkAccess, list[str]]:
    """Per-ward access to each kind of service over the walking network.

    Parameters
    ----------
    network
        The walking graph.
    sample
        Resident sample points (:class:`geomisuse.gaps.walking.ResidentSample`).
    wards
        The ward table (``ward_code``, ``ward_name``), in the sample's ward order.
    services_xy
        Per kind, ``(m, 2)`` service coordinates (EPSG:27700 metres).
    straight_m
        Per kind, each resident point's straight-line distance to the nearest service (m).
    limit_m
        Network distance the walk threshold reaches (metres, no detour factor).
    speed_m_per_min
        Walking speed (metres per minute).
    max_snap_m
        A resident point farther than this from any walkable way is reported as far from the
        network; a ward with more than half its points so is outside the network's coverage.

    Returns
    -------
    tuple
        ``(kinds, NetworkAccess, warnings)``: ``kinds`` maps each kind to ``share_within``
        (per ward), ``services_within`` (per ward), ``point_within`` (per point) over the
        network and ``minutes`` (each ward's mean network walking minutes).

    Raises
    ------
    InputError
        When the network does not cover some wards (named, with what to do).
    """
    n_wards = len(wards)
    points = network.snap(sample.xy)
    far = points.offset_m > max_snap_m
    outside = uncovered_wards(sample.ward, far, n_wards)
    if len(outside):
        named = ", ".join(f"{wards['ward_name'].iloc[w]} ({wards['ward_code'].iloc[w]})"
                          for w in outside[:10]) + (" ..." if len(outside) > 10 else "")
        raise InputError(f"the walking network does not cover {len(outside)} ward(s): {named} "
                         f"(most of their residents are over {max_snap_m:g} m from any walkable "
                         "way); use an OSM extract covering the whole study area",
                         network.report.get("path"))

    def per_ward(values: np.ndarray) -> np.ndarray:
        return np.bincount(sample.ward, weights=sample.weight * values, minlength=n_wards)

    kinds, network_mean, detour = {}, {}, {}
    for kind, xy in services_xy.items():
        straight = straight_m[kind]
        sites = network.snap(xy)
        distance = nearest_network_distance(network, points, sites)
        within = distance <= limit_m
        count = np.zeros(n_wards, dtype=np.int64)
        if len(xy):
            reach = network_distances_within(network, points, sites, limit_m).tocoo()
            pairs = np.unique(sample.ward[reach.row] * len(xy) + reach.col)
            count = np.bincount(pairs // len(xy), minlength=n_wards)
            mean_network = per_ward(distance)
        else:
            mean_network = np.full(n_wards, np.nan)
        kinds[kind] = {"share_within": per_ward(within), "services_within": count,
                       "point_within": within, "minutes": mean_network / speed_m_per_min}
        network_mean[kind] = mean_network
        detour[kind] = detour_summary(distance, straight)

    warnings = []
    far_wards = np.unique(sample.ward[far])
    if far.any():
        warnings.append(
            f"gaps: {int(far.sum())} resident point(s) in {len(far_wards)} ward(s) are over "
            f"{max_snap_m:g} m from any walkable way; their walk to the street is counted as a "
            "straight line (see the manifest)")
    report = {
        "method": "street network",
        "network": dict(network.report),
        "walk_limit_m": round(limit_m, 1),
        "snap_m": {"mean": round(float(points.offset_m.mean()), 1) if len(points.offset_m) else None,
                   "p95": round(float(np.percentile(points.offset_m, 95)), 1)
                   if len(points.offset_m) else None,
                   "max": round(float(points.offset_m.max()), 1) if len(points.offset_m) else None},
        "max_snap_m": max_snap_m,
        "points_far_from_network": int(far.sum()),
        "wards_with_points_far_from_network": [
            {"ward_code": str(wards["ward_code"].iloc[w]),
             "points": int((sample.ward[far] == w).sum())} for w in far_wards],
        "detour_factor_measured": detour,
    }
    return kinds, NetworkAccess(network_mean, points.offset_m, far, detour, report), warnings
