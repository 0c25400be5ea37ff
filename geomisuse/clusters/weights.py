"""Spatial weights: which wards are neighbours.

Every kind of weights built here is *binary* (a ward either is or is not a neighbour of
another), stored as a sparse 0/1 matrix with a zero diagonal, in the row order of the ward
table. The statistics then derive the two forms the analysts know from GeoDa and ArcGIS:

- **row-standardised** (each row divided by its number of neighbours) for Moran's I and the
  local Moran (LISA), so that the spatial lag is the *mean* of the neighbours;
- **binary with self-weight** (the ward counts as its own neighbour) for Getis-Ord Gi*.

Because each row of a row-standardised binary matrix has equal weights, a ward's spatial lag
under conditional permutation is the mean of a random set of other wards, which is what
:mod:`geomisuse.clusters.inference` relies on.

Wards with no neighbour ("islands": real islands, wards cut off by a river with no shared
boundary point, or wards whose neighbours all lack data) would make Moran statistics
undefined, so each is linked to its nearest ward by boundary-to-boundary distance, both ways,
and reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from ..config import WEIGHTS_KINDS
from ..errors import InputError



@dataclass
class Neighbours:
    """Binary neighbour structure of a set of wards.

    Attributes
    ----------
    adjacency
        ``(n, n)`` sparse CSR matrix of 0/1 floats, zero diagonal, rows in ward-table order.
        Symmetric for queen and distance-band weights; k-nearest neighbours need not be.
    kind
        ``"queen"``, ``"knn"`` or ``"distance"``.
    islands
        One dict per ward that had no neighbour and was linked to its nearest ward:
        ``ward_code``, ``ward_name``, ``linked_to_code``, ``linked_to_name``, ``distance_m``.
    parameters
        The options that defined the weights (``k`` or ``distance_m``), for the manifest.
    """

    adjacency: sparse.csr_array
    kind: str
    islands: list[dict] = field(default_factory=list)
    parameters: dict = field(default_factory=dict)

    def lists(self) -> list[list[int]]:
        """Each ward's neighbours as sorted ward positions, symmetrised (``j`` is a neighbour of
        ``i`` when either row names the other), for readers that walk connected groups of wards.

        Returns
        -------
        list[list[int]]
            One list per ward, in ward-table order; island links included.
        """
        both = sparse.csr_array(self.adjacency + self.adjacency.T)
        both.sort_indices()
        return [both.indices[both.indptr[i]:both.indptr[i + 1]].tolist() for i in range(both.shape[0])]

    @property
    def cardinality(self) -> np.ndarray:
        """Number of neighbours of each ward (integer array)."""
        return np.diff(self.adjacency.indptr).astype(np.int64)

    def summary(self) -> dict:
        """What the manifest records about the weights: kind, options, neighbour counts, islands."""
        card = self.cardinality
        n_components, _ = csgraph.connected_components(self.adjacency, directed=False)
        return {
            "kind": self.kind,
            **self.parameters,
            "n_wards": int(card.size),
            "mean_neighbours": round(float(card.mean()), 3) if card.size else 0.0,
            "min_neighbours": int(card.min()) if card.size else 0,
            "max_neighbours": int(card.max()) if card.size else 0,
            # Separate groups of wards with no neighbour link between them (e.g. across a river).
            "connected_groups": int(n_components),
            "islands": list(self.islands),
            "moran_weights": "row-standardised",
            "gi_star_weights": "binary with self-weight",
        }


def build_neighbours(wards: gpd.GeoDataFrame, kind: str = "queen", k: int = 6,
                     distance_m: float | None = None) -> Neighbours:
    """Build binary neighbours for the wards and link any island to its nearest ward.

    Parameters
    ----------
    wards
        Ward polygons in a metric CRS (EPSG:27700), with ``ward_code`` and ``ward_name``; the
        row order defines the matrix order.
    kind
        ``"queen"``: wards sharing at least one boundary vertex (GeoDa's and libpysal's
        default rule, see :func:`queen_adjacency`). ``"knn"``: each ward's ``k`` nearest ward centroids.
        ``"distance"``: wards whose centroids are at most ``distance_m`` metres apart. All three
        are built by ``libpysal.graph.Graph``; linking islands is this module's own.
    k
        Number of neighbours for ``"knn"``.
    distance_m
        Distance band in metres for ``"distance"``.

    Returns
    -------
    Neighbours

    Raises
    ------
    InputError
        Unknown kind, ``k`` not below the number of wards, or no positive ``distance_m``.
    """
    n = len(wards)
    geoms = wards.geometry.reset_index(drop=True)
    if kind == "queen":
        adjacency = queen_adjacency(geoms)
        parameters: dict = {}
    elif kind == "knn":
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < n:
            raise InputError(f"[clusters] k = {k} must be between 1 and the number of wards minus one ({n - 1})")
        adjacency = knn_adjacency(_centroids(geoms), k)
        parameters = {"k": int(k)}
    elif kind == "distance":
        if distance_m is None or not float(distance_m) > 0:
            raise InputError("[clusters] weights = \"distance\" needs distance_m, a distance in metres above 0")
        adjacency = distance_band_adjacency(_centroids(geoms), float(distance_m))
        parameters = {"distance_m": float(distance_m)}
    else:
        raise InputError(f"[clusters] weights = \"{kind}\" is not known; use one of {', '.join(WEIGHTS_KINDS)}")
    adjacency, islands = link_islands(adjacency, wards)
    return Neighbours(adjacency=adjacency, kind=kind, islands=islands, parameters=parameters)


def link_islands(adjacency: sparse.csr_array, wards: gpd.GeoDataFrame) -> tuple[sparse.csr_array, list[dict]]:
    """Give every ward without a neighbour one link (both ways) to its nearest other ward.

    Parameters
    ----------
    adjacency
        Binary ``(n, n)`` matrix in the row order of ``wards``.
    wards
        The same wards, with geometry, ``ward_code`` and ``ward_name``.

    Returns
    -------
    adjacency
        The matrix with the links added.
    islands
        One dict per linked ward (see :class:`Neighbours`), in ward-table order.
    """
    adjacency = sparse.csr_array(adjacency)
    lonely = np.flatnonzero(np.diff(adjacency.indptr) == 0)
    if lonely.size == 0:
        return adjacency, []
    adjacency = sparse.lil_array(adjacency)
    geoms = wards.geometry.reset_index(drop=True)
    codes = wards["ward_code"].astype(str).tolist()
    names = wards["ward_name"].astype(str).tolist() if "ward_name" in wards else codes
    islands = []
    for i in lonely:
        if adjacency.rows[i]:  # an earlier island was linked to this ward already
            continue
        distances = np.array(geoms.distance(geoms.iloc[i]), dtype=float)
        distances[i] = np.inf
        j = int(np.argmin(distances))
        adjacency[i, j] = 1.0
        adjacency[j, i] = 1.0
        islands.append({"ward_code": codes[i], "ward_name": names[i], "linked_to_code": codes[j],
                        "linked_to_name": names[j], "distance_m": round(float(distances[j]), 1)})
    return sparse.csr_array(adjacency), islands


def subset_neighbours(neighbours: Neighbours, keep: np.ndarray, wards: gpd.GeoDataFrame) -> Neighbours:
    """The neighbour structure among the kept wards only (wards with data for one measure).

    Wards whose every neighbour was dropped become islands and are linked to their nearest
    kept ward, as in :func:`build_neighbours`.

    Parameters
    ----------
    neighbours
        Weights over all wards.
    keep
        Boolean mask over the wards (ward-table order).
    wards
        All wards (the rows of ``keep``).

    Returns
    -------
    Neighbours
        Over the kept wards, in their ward-table order; ``islands`` lists only new links.
    """
    keep = np.asarray(keep, dtype=bool)
    if keep.all():
        return Neighbours(neighbours.adjacency, neighbours.kind, [], neighbours.parameters)
    index = np.flatnonzero(keep)
    adjacency = sparse.csr_array(neighbours.adjacency[index][:, index])
    adjacency, islands = link_islands(adjacency, wards.iloc[index])
    return Neighbours(adjacency, neighbours.kind, islands, neighbours.parameters)


def neighbours_within(lists: list[list[int]], keep) -> list[list[int]]:
    """Neighbour lists (ward positions) restricted to the kept wards, renumbered to their
    positions among them (for a part of a study: one borough, or the study without its
    context wards).

    Parameters
    ----------
    lists
        One sorted list of neighbour positions per ward.
    keep
        Boolean per ward: the wards kept, in order.

    Returns
    -------
    list[list[int]]
        One list per kept ward; neighbours outside the kept wards are dropped.
    """
    keep = np.asarray(keep, dtype=bool)
    position = np.cumsum(keep) - 1
    return [[int(position[k]) for k in lists[i] if keep[k]] for i in np.flatnonzero(keep)]


def row_standardised(adjacency: sparse.csr_array) -> sparse.csr_array:
    """``W`` with each row divided by its sum: the spatial lag becomes the neighbours' mean."""
    row_sums = np.asarray(adjacency.sum(axis=1)).ravel()
    return sparse.csr_array(sparse.diags_array(1.0 / row_sums) @ adjacency)


def with_self(adjacency: sparse.csr_array) -> sparse.csr_array:
    """Binary ``W*``: the neighbours plus the ward itself (weight 1 on the diagonal), for Gi*."""
    return sparse.csr_array(adjacency + sparse.eye_array(adjacency.shape[0], format="csr"))


def queen_adjacency(geoms: gpd.GeoSeries) -> sparse.csr_array:
    """Queen contiguity: wards that share at least one boundary vertex.

    ``libpysal.graph.Graph.build_contiguity(rook=False)``: vertex-based, not ``strict``, the
    rule of GeoDa and libpysal's ``Queen`` (coordinates must match exactly). When
    :func:`start_queen_adjacency` was given wards that include these, the answer is read off
    its result: sharing a vertex is a matter of two wards alone, so the contiguity of some of
    the wards is the part of the whole that is about them.

    Parameters
    ----------
    geoms
        Polygons or multipolygons, in matrix order.

    Returns
    -------
    scipy.sparse.csr_array
        Binary, symmetric, zero diagonal.
    """
    started = _started_part(geoms)
    if started is not None:
        return started
    return _queen_of(geoms)


def start_queen_adjacency(geoms: gpd.GeoSeries) -> None:
    """Begin the queen contiguity of ``geoms`` in a worker process
    (:func:`geomisuse.parallel.start`), for :func:`queen_adjacency` of these wards or any of
    them later in the run. Importing libpysal and building the contiguity take about 2 s on
    London's full-resolution wards: the loader reads the crime layers meanwhile."""
    from ..parallel import start

    keys = _geometry_keys(geoms)
    if len(set(keys)) < len(keys):  # a ward drawn twice: positions would be ambiguous
        return
    frozen = geoms.reset_index(drop=True).copy()
    for _, earlier in _STARTED:  # one study at a time (a notebook loading study after study)
        earlier.cancel()
    _STARTED[:] = [({key: k for k, key in enumerate(keys)}, start(lambda: _queen_of(frozen)))]


#: The contiguity being built by :func:`start_queen_adjacency`: (geometry key -> position, result).
_STARTED: list = []


def _queen_of(geoms: gpd.GeoSeries) -> sparse.csr_array:
    from libpysal.graph import Graph  # ~1.5 s to import: only the cluster stage pays it

    return _binary(Graph.build_contiguity(geoms.reset_index(drop=True), rook=False))


def _geometry_keys(geoms: gpd.GeoSeries) -> list[bytes]:
    """Each geometry's exact identity (its WKB, every coordinate bit for bit)."""
    return list(shapely.to_wkb(np.asarray(geoms.values, dtype=object)))


def _started_part(geoms: gpd.GeoSeries) -> sparse.csr_array | None:
    """The started contiguity restricted to ``geoms`` (in their order), or ``None`` when none
    was started or some of ``geoms`` are not among its wards."""
    if not _STARTED:
        return None
    position_of, pending = _STARTED[0]
    positions = [position_of.get(key) for key in _geometry_keys(geoms)]
    if any(p is None for p in positions):
        return None
    whole = pending.result()
    part = sparse.csr_array(whole[np.asarray(positions)][:, np.asarray(positions)])
    part.sort_indices()
    return part


def knn_adjacency(points: np.ndarray, k: int) -> sparse.csr_array:
    """Each ward's ``k`` nearest other wards by centroid distance (not symmetric in general).

    ``libpysal.graph.Graph.build_knn``. Between wards at exactly the same distance the choice
    is libpysal's.

    Parameters
    ----------
    points
        ``(n, 2)`` centroid coordinates in metres.
    k
        Number of neighbours.

    Returns
    -------
    scipy.sparse.csr_array

    Raises
    ------
    InputError
        Two wards have the same centroid (their order among each other's neighbours would be
        arbitrary).
    """
    from libpysal.graph import Graph
    from libpysal.graph._utils import CoplanarError

    try:
        graph = Graph.build_knn(np.asarray(points, dtype=float), k=k)
    except CoplanarError:
        raise InputError("[clusters] weights = \"knn\": two or more wards have the same centroid, so their "
                         "nearest neighbours are not defined; use weights = \"queen\" or \"distance\"") from None
    return _binary(graph)


def distance_band_adjacency(points: np.ndarray, distance_m: float) -> sparse.csr_array:
    """Wards whose centroids are at most ``distance_m`` apart (symmetric).

    ``libpysal.graph.Graph.build_distance_band(binary=True)``.
    """
    from libpysal.graph import Graph

    return _binary(Graph.build_distance_band(np.asarray(points, dtype=float), threshold=distance_m, binary=True))


def _binary(graph) -> sparse.csr_array:
    """A libpysal ``Graph`` as this module's 0/1 CSR matrix with a zero diagonal.

    ``Graph`` marks a ward without neighbours by a self-loop of weight 0; dropping the
    diagonal and the zeros leaves such a ward with an empty row, for :func:`link_islands`.
    """
    matrix = sparse.csr_array(graph.sparse, dtype=float)
    matrix.setdiag(0.0)
    matrix.eliminate_zeros()
    matrix.data[:] = 1.0
    matrix.sort_indices()
    return matrix


def _centroids(geoms: gpd.GeoSeries) -> np.ndarray:
    return shapely.get_coordinates(geoms.centroid.values)
