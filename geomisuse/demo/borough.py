"""The demo borough: a fictional place, generated from a seed, in the real source formats.

Northmere (LAD code ``E09999999``) does not exist. It sits in the North Sea off the Suffolk
coast (British National Grid eastings about 661,000-669,000, northings about 241,500-248,000),
so that a basemap shows open water under it and nobody can mistake it for a real borough.
Every code is in a range ONS does not use (wards ``E05999001``..., LSOAs ``E01999...``), every
name is invented and every file says "demo" or "fictional" where the format has room for it.

The files are written in the formats of the real sources (ONS ward GeoJSON, police.uk
street-level CSVs, the MPS ward-level wide CSV, ...), so the demo exercises the real loaders
rather than a shortcut.

The demo also plants a story that the analysis must recover (tests import these constants):

* :data:`PLANTED_POSSESSION_CLUSTER` - the town centre and the three wards around it on the
  harbour headland have drug possession rates of 18-24 per 1,000 a year (1-4.5 in most other
  wards): Local Moran's High-High at the default settings (FDR 5 %);
* :data:`PLANTED_LOW_CLUSTER` - four wards in the north-east with low possession,
  trafficking and ASB: Low-Low at the default settings;
* :data:`PLANTED_ESTATE_WARD` / :data:`PLANTED_HOTSPOT_ESTATE` - one estate where trafficking
  concentrates (police.uk Drugs points pile up on it, the MPS trafficking count is many times
  the borough norm), with a spill-over into the neighbouring wards: a Getis-Ord Gi* hot spot;
* :data:`PLANTED_GAP_WARDS` - a ward on the western edge with top-quintile possession and ASB
  but no treatment service or needle exchange within 2.5 km: an outreach gap;
* :data:`PLANTED_EMERGING` - emerging hot spots in 2025's months: a new possession hot spot
  west of the harbour (a December surge), an intensifying one in the harbour (a steady
  climb) and a diminishing trafficking hot spot on the Lanternhill estate (a steady decline).

The files cover two years: the study period :data:`MONTHS` (2025) and the twelve months before
it, :data:`PREVIOUS_MONTHS` (2024), which the briefings compare against. 2024 has the same
layout at the same rates (the cluster, estate hotspot and gap were already there), except for a
planted change:

* :data:`PLANTED_RISING_WARDS` - two harbour cluster wards whose possession rate in 2024
  was :data:`RISING_POSSESSION_FACTOR` times lower (2025 is about +80 % on 2024);
* :data:`PLANTED_FALLING_WARDS` - a ward outside the cluster whose possession rate in 2024 was
  :data:`FALLING_POSSESSION_FACTOR` times its 2025 rate (2025 is about -50 % on 2024). The fall
  is planted in possession rather than ASB because ward ASB warning counts (~10-40 a year) are
  too small for a halving to stand out from Poisson noise.

2024 is drawn from generators of its own, so the 2025 numbers are the same as when the demo
covered 2025 only.

The ward layout (anchor points, names, rates) is fixed in :data:`WARDS`; the seed only jitters
the anchors and draws the counts, so the planted rates and roles hold for any seed. That the
analysis recovers them at its default settings (exactly the planted clusters, whatever the
permutation seed) is checked for the committed files, :data:`DEMO_SEED`; most other seeds
recover them too, but a seed whose jitter moves a ward junction may lose a ward.

Entry points: :func:`generate_demo` writes every file; :func:`regenerate` rewrites the committed
files in a project checkout and says which changed.
"""

from __future__ import annotations

import csv
import filecmp
import hashlib
import io
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPoint, Polygon

from ..config import DEFAULT_SEED

#: Seed the committed demo files were generated with.
DEMO_SEED = DEFAULT_SEED

#: Fictional local authority code and name (ONS never issues E09999999).
LAD_CODE = "E09999999"
LAD_NAME = "Northmere (demo)"
#: Police force name written in the police.uk files.
FORCE_NAME = "Northmere Constabulary (demo)"
#: The fictional neighbouring borough whose rows every loader must filter out.
NEIGHBOUR_NAME = "Southmere (demo)"

#: The demo's study period (``period`` in ``study.toml``).
MONTHS: tuple[str, ...] = tuple(f"2025-{m:02d}" for m in range(1, 13))
#: The twelve months before the study period, the "previous period" the briefings compare with.
PREVIOUS_MONTHS: tuple[str, ...] = tuple(f"2024-{m:02d}" for m in range(1, 13))
#: Every month in the demo files (police.uk files, MPS columns, ASB warnings), chronological.
ALL_MONTHS: tuple[str, ...] = PREVIOUS_MONTHS + MONTHS

#: Borough centre in British National Grid metres (open sea east of Orford Ness).
ORIGIN = (665_000.0, 245_000.0)

#: Files written by :func:`generate_demo`, relative to the project root.
BOUNDARY_FILE = Path("boundaries/northmere_wards.geojson")
DEMO_DIR = Path("data/demo")

POLICE_UK_HEADER = ["Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude",
                    "Location", "LSOA code", "LSOA name", "Crime type", "Last outcome category",
                    "Context"]

#: Share of police.uk rows written without coordinates ("No Location").
NO_LOCATION_SHARE = 0.02
#: Share of police.uk rows snapped to points outside the borough.
OUTSIDE_SHARE = 0.01


@dataclass(frozen=True)
class WardSpec:
    """One ward of the demo borough and the rates planted in it.

    Attributes
    ----------
    code, name
        Fictional GSS-style ward code and name.
    x_km, y_km
        Voronoi anchor, kilometres east/north of :data:`ORIGIN` (before jitter).
    population
        Target mid-year population (residents); the seed varies it by up to 4 %.
    possession, trafficking
        Expected MPS drug possession / trafficking offences per 1,000 residents a year.
    asb
        Expected police.uk anti-social behaviour incidents per 1,000 residents a year.
    """

    code: str
    name: str
    x_km: float
    y_km: float
    population: int
    possession: float
    trafficking: float
    asb: float


# The story lives in this table. Normal wards: possession 2.5-4.5, trafficking 0.4-0.6,
# ASB 7-9. With 24 wards, a ward's conditional-permutation p-value is only small enough to
# survive FDR when nearly all its neighbours share its extreme value, so the layout makes the
# clusters compact:
# * the harbour headland holds the four cluster wards: the town centre in the middle, enclosed
#   by Ropewalk, Quayside and Harbour Quarter, which all touch each other; only Ropewalk and
#   Quayside reach the mainland, whose wards there (Fathom Green, Netmakers, Gullhaven,
#   Spindrift) sit a little above the borough mean so they add to the cluster's neighbourhood
#   without becoming High-High themselves;
# * the north-east corner holds the low cluster; the wards around it (Kittiwake Heights,
#   Tidewell, Seawold) are lowish so the corner's neighbourhood is low, while their own other
#   neighbours (Lanternhill, Beaconsway, Netmakers, Spindrift) keep them from being Low-Low.
WARDS: tuple[WardSpec, ...] = (
    # north row
    WardSpec("E05999001", "Shingle End", -3.3, 2.2, 7_400, 2.8, 0.5, 8.0),
    WardSpec("E05999002", "Marram Fields", -2.0, 2.3, 8_900, 3.0, 9.6, 8.0),
    WardSpec("E05999003", "Lanternhill", -0.7, 2.2, 11_800, 4.5, 18.0, 11.0),
    WardSpec("E05999004", "Kittiwake Heights", 0.6, 2.4, 9_600, 1.2, 8.4, 6.0),
    WardSpec("E05999005", "Ternwick", 1.9, 2.3, 8_200, 0.5, 0.15, 3.0),
    WardSpec("E05999006", "Fogwell Point", 3.2, 1.9, 6_800, 0.5, 0.15, 3.0),
    # second row
    WardSpec("E05999007", "Saltmarsh", -3.5, 0.6, 12_300, 10.5, 1.0, 24.0),
    WardSpec("E05999008", "Brackenfleet", -2.2, 1.0, 10_400, 3.0, 1.2, 8.0),
    WardSpec("E05999009", "Cormorant Rise", -0.9, 0.9, 12_900, 3.2, 9.6, 9.0),
    WardSpec("E05999010", "Beaconsway", 0.4, 1.1, 10_100, 3.0, 9.6, 8.0),
    WardSpec("E05999011", "Dunlin Green", 2.2, 1.4, 9_300, 0.6, 0.2, 3.5),
    WardSpec("E05999012", "Skerry Common", 3.1, 0.5, 7_900, 0.5, 0.15, 3.0),
    # third row
    WardSpec("E05999013", "Wrackham", -3.0, -0.9, 9_800, 2.8, 0.5, 8.0),
    WardSpec("E05999014", "Pennyfleet", -1.7, -0.4, 11_200, 4.0, 0.5, 9.0),
    WardSpec("E05999015", "Fathom Green", -0.4, -0.4, 12_600, 6.5, 0.6, 12.0),
    WardSpec("E05999016", "Netmakers", 0.8, -0.8, 11_900, 6.5, 0.6, 12.0),
    WardSpec("E05999017", "Tidewell", 2.4, -0.2, 10_700, 2.0, 0.4, 7.0),
    WardSpec("E05999018", "Seawold", 3.3, -1.1, 8_600, 1.2, 0.3, 5.0),
    # the harbour: town centre and its neighbours
    WardSpec("E05999019", "Ropewalk", -0.3, -2.6, 8_700, 19.0, 0.8, 16.0),
    WardSpec("E05999020", "Northmere Town Centre", 0.45, -3.1, 7_600, 24.0, 0.9, 20.0),
    WardSpec("E05999021", "Harbour Quarter", 0.45, -4.0, 6_900, 21.0, 0.8, 18.0),
    WardSpec("E05999022", "Quayside", 1.2, -2.6, 7_800, 18.5, 0.7, 15.0),
    WardSpec("E05999023", "Gullhaven", -2.0, -1.9, 9_500, 5.5, 0.5, 10.0),
    WardSpec("E05999024", "Spindrift", 2.4, -1.8, 9_100, 5.5, 0.5, 10.0),
)

#: High possession rates around the town centre: Local Moran's High-High.
PLANTED_POSSESSION_CLUSTER: tuple[str, ...] = ("E05999019", "E05999020", "E05999021", "E05999022")
#: Low possession, trafficking and ASB in the north-east: Local Moran's Low-Low.
PLANTED_LOW_CLUSTER: tuple[str, ...] = ("E05999005", "E05999006", "E05999011", "E05999012")
#: The ward holding the trafficking hotspot estate: Getis-Ord Gi* hot spot.
PLANTED_ESTATE_WARD = "E05999003"
#: The estate (``name`` in ``estates.geojson``) where trafficking concentrates.
PLANTED_HOTSPOT_ESTATE = "Lanternhill Estate"
#: High need (top-quintile possession, drug offences and ASB rates), far from every
#: treatment service and needle exchange, not next to the possession cluster.
PLANTED_GAP_WARDS: tuple[str, ...] = ("E05999007",)
#: Minimum straight-line distance (metres) from a gap ward's centroid to any treatment
#: service or needle-exchange pharmacy.
GAP_MIN_DISTANCE_M = 2_500.0
#: Harbour cluster wards whose possession rose from 2024 to 2025 (the cluster was weaker
#: in 2024): their 2024 possession rate is the :data:`WARDS` rate / :data:`RISING_POSSESSION_FACTOR`.
PLANTED_RISING_WARDS: tuple[str, ...] = ("E05999019", "E05999021")
#: 2025 possession rate over 2024 possession rate in :data:`PLANTED_RISING_WARDS`.
RISING_POSSESSION_FACTOR = 1.8
#: A ward (not in the cluster, not a gap ward) whose possession halved from 2024 to 2025: its
#: 2024 possession rate is the :data:`WARDS` rate x :data:`FALLING_POSSESSION_FACTOR`.
PLANTED_FALLING_WARDS: tuple[str, ...] = ("E05999014",)
#: 2024 possession rate over 2025 possession rate in :data:`PLANTED_FALLING_WARDS`.
FALLING_POSSESSION_FACTOR = 2.0
#: Emerging hot spots planted in 2025's monthly MPS counts: category -> (measure, wards). The
#: emerging hot spot analysis at the default settings (monthly steps, ``time_k`` 1, FDR 5 %)
#: gives each of these wards that category for that measure. The monthly profiles behind them
#: average 1, so the annual rates stay the :data:`WARDS` rates.
PLANTED_EMERGING: dict[str, tuple[str, tuple[str, ...]]] = {
    "new hot spot": ("possession", ("E05999023",)),
    "intensifying hot spot": ("possession", ("E05999020",)),
    "diminishing hot spot": ("trafficking", ("E05999003",)),
}
# Month-by-month multipliers of 2025's MPS counts (each averages 1) behind PLANTED_EMERGING.
# Gi* judges a ward with its neighbours, so each pattern is planted over a neighbourhood:
# * new: a quiet year, then a December surge in Gullhaven, Wrackham and Pennyfleet (west of
#   the harbour; Pennyfleet's fall on 2024 is unchanged, its year total keeps its rate);
# * intensifying: the four harbour wards climb steadily from 75 % to 125 % of their rate;
# * diminishing: trafficking on and around the Lanternhill estate declines steadily from
#   4/3 to 2/3 of its rate, and is still well above the borough in December.
_DECLINE = np.linspace(4 / 3, 2 / 3, 12)
_PROFILES: dict[tuple[str, str], np.ndarray] = {
    ("possession", "E05999023"): np.array([0.3] * 11 + [8.7]),
    ("possession", "E05999013"): np.array([0.3] * 11 + [8.7]),
    ("possession", "E05999014"): np.array([0.3] * 11 + [8.7]),
    ("possession", "E05999019"): np.linspace(0.75, 1.25, 12),
    ("possession", "E05999020"): np.linspace(0.75, 1.25, 12),
    ("possession", "E05999021"): np.linspace(0.75, 1.25, 12),
    ("possession", "E05999022"): np.linspace(0.75, 1.25, 12),
    ("trafficking", "E05999003"): _DECLINE,
    ("trafficking", "E05999002"): _DECLINE,
    ("trafficking", "E05999009"): _DECLINE,
    ("trafficking", "E05999004"): _DECLINE,
    ("trafficking", "E05999010"): _DECLINE,
}

# Irregular borough outline, km from ORIGIN, clockwise from the west. The southern headland
# holds the harbour wards and the town centre.
_OUTLINE_KM = (
    (-4.3, 0.2), (-4.0, 1.4), (-3.6, 2.8), (-2.2, 3.1), (-0.6, 2.9), (1.2, 3.2), (2.8, 3.0),
    (4.0, 2.4), (4.2, 0.6), (3.9, -1.0), (3.1, -2.3), (1.9, -2.5), (2.0, -3.5), (1.3, -4.3),
    (0.4, -4.5), (-0.5, -4.2), (-1.1, -3.5), (-1.0, -2.6), (-1.6, -2.5), (-3.0, -2.4), (-4.1, -1.2),
)

# Neighbouring fictional borough: its wards only appear in the MPS file (and must be dropped).
_NEIGHBOUR_WARDS = (
    ("E05998001", "Southmere Sands", 14_000),
    ("E05998002", "Fennwick Marsh", 9_000),
    ("E05998003", "Southmere Quay", 11_000),
)

# Other police.uk crime types (to be filtered out) and their share of "other" crime.
_OTHER_CRIME_TYPES = (
    ("Violence and sexual offences", 0.34), ("Other theft", 0.16), ("Shoplifting", 0.14),
    ("Criminal damage and arson", 0.14), ("Vehicle crime", 0.12), ("Burglary", 0.10),
)
# Expected "other" police.uk crimes per 1,000 residents a year.
_OTHER_CRIME_RATE = 6.0
# police.uk Drugs records per MPS drug offence: a different source, so not equal.
_POLICE_UK_DRUGS_FACTOR = 0.85
# ASB warnings issued per police.uk ASB incident.
_ASB_WARNING_FACTOR = 0.12
# Share of the estate ward's police.uk Drugs records snapped to points on the hotspot estate.
_ESTATE_DRUGS_SHARE = 0.7
# Mild seasonality (summer peak) so months differ in more than noise.
_SEASON = 1.0 + 0.12 * np.sin((np.arange(12) - 3) / 12 * 2 * np.pi)

_OUTCOMES_DRUGS = (
    ("Offender given a drugs possession warning", 0.25), ("Local resolution", 0.20),
    ("Awaiting court outcome", 0.15), ("Investigation complete; no suspect identified", 0.10),
    ("Unable to prosecute suspect", 0.12), ("Offender given a caution", 0.08),
    ("Under investigation", 0.10),
)
_OUTCOMES_OTHER = (
    ("Investigation complete; no suspect identified", 0.45), ("Unable to prosecute suspect", 0.25),
    ("Under investigation", 0.12), ("Awaiting court outcome", 0.06), ("Local resolution", 0.06),
    ("Further investigation is not in the public interest", 0.06),
)

# MPS ward-level categories written besides the drug rows (filtered out by the loader), with
# expected offences per 1,000 residents a year. One minor text holds a comma, as in the real file.
_MPS_OTHER = (
    ("Arson and Criminal Damage", "Criminal Damage", 6.0),
    ("Burglary", "Domestic Burglary", 4.0),
    ("Public Order Offences", "Other Offences Against the State, or Public Order", 0.6),
    ("Theft", "Shoplifting", 5.0),
    ("Vehicle Offences", "Theft from a Motor Vehicle", 4.5),
    ("Violence Against the Person", "Violence with Injury", 8.0),
)
_MPS_DRUGS = (("Drug Offences", "Drug Trafficking"), ("Drug Offences", "Possession of Drugs"))

_STREET_WORDS = (
    "Anchor", "Bladderwrack", "Bollard", "Breakwater", "Brine", "Capstan", "Cockle", "Curlew",
    "Dunlin", "Foghorn", "Gannet", "Herring", "Jetty", "Kelp", "Lantern", "Lugger", "Mackerel",
    "Marram", "Netloft", "Oyster", "Plover", "Ropery", "Samphire", "Sanderling", "Saltpan",
    "Seaholly", "Sprat", "Slipway", "Spindle", "Tiller", "Trawler", "Turnstone", "Whelk",
    "Wrack", "Driftwood", "Sealavender", "Shearwater", "Sandpiper", "Pebble", "Tidemill",
)
_STREET_KINDS = ("Road", "Street", "Lane", "Way", "Close", "Crescent", "Avenue", "Walk",
                 "Terrace", "Drive", "Row", "Place", "Gardens", "Parade", "Hill")
# police.uk snaps some crimes to points of interest rather than streets.
_POI_NAMES = ("Parking Area", "Supermarket", "Sports/Recreation Area", "Petrol Station",
              "Shopping Area", "Nightclub", "Further/Higher Educational Building", "Bus/Coach Station")

_TO_WGS84 = Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)


@dataclass
class Borough:
    """The generated geography, in British National Grid metres.

    Attributes
    ----------
    outline
        Borough outline polygon.
    wards
        Ward polygons in :data:`WARDS` order, already rounded to the published 6-decimal
        lon/lat grid and projected back, so analysis here sees what the loaders will see.
    population
        Residents per ward, :data:`WARDS` order.
    """

    outline: Polygon
    wards: list[Polygon]
    population: np.ndarray


@dataclass
class StreetPoints:
    """The fixed snap points police.uk records are placed on.

    Attributes
    ----------
    xy
        ``(n, 2)`` BNG metres.
    name
        ``"On or near ..."`` location text.
    ward
        Index into :data:`WARDS`, or ``-1`` for points outside the borough.
    lsoa_code, lsoa_name
        Fictional LSOA of the point (Southmere LSOAs for points outside).
    weight
        Relative popularity: how often crimes in the ward are snapped to this point.
    on_hotspot_estate
        Whether the point lies on :data:`PLANTED_HOTSPOT_ESTATE`.
    """

    xy: np.ndarray
    name: list[str]
    ward: np.ndarray
    lsoa_code: list[str]
    lsoa_name: list[str]
    weight: np.ndarray
    on_hotspot_estate: np.ndarray


# --------------------------------------------------------------------------------------------
# geography


def make_outline() -> Polygon:
    """The borough outline, an irregular polygon of about 8.5 km x 6.8 km.

    Returns
    -------
    shapely.Polygon
        In British National Grid metres.
    """
    ox, oy = ORIGIN
    return Polygon([(ox + x * 1000.0, oy + y * 1000.0) for x, y in _OUTLINE_KM])


def make_wards(outline: Polygon, rng: np.random.Generator) -> list[Polygon]:
    """Ward polygons: Voronoi cells of the jittered :data:`WARDS` anchors, clipped to the outline.

    Voronoi cells of one diagram share their edges exactly, so the wards form a clean
    coverage. The coverage is then rounded to the published grid (see :func:`round_coverage`).

    Parameters
    ----------
    outline
        Borough outline (BNG metres).
    rng
        Random generator; jitters each anchor by up to 150 m so different seeds give
        different (but equally planted) shapes.

    Returns
    -------
    list of shapely.Polygon
        One polygon per ward, :data:`WARDS` order, BNG metres.
    """
    ox, oy = ORIGIN
    anchors = np.array([(ox + w.x_km * 1000.0, oy + w.y_km * 1000.0) for w in WARDS])
    anchors += rng.uniform(-150.0, 150.0, size=anchors.shape)
    cells = shapely.voronoi_polygons(MultiPoint(anchors), extend_to=outline.buffer(2000.0),
                                     ordered=True)
    wards = [shapely.intersection(cell, outline) for cell in shapely.get_parts(cells)]
    for spec, ward in zip(WARDS, wards):
        if ward.geom_type != "Polygon":
            raise RuntimeError(f"demo ward {spec.code} is not a single polygon; adjust the anchors")
    return round_coverage(wards)


def round_coverage(wards: Sequence[Polygon]) -> list[Polygon]:
    """Round ward polygons to 6-decimal lon/lat and project back to BNG.

    Rounding each shared vertex the same way keeps neighbours' edges identical, so doing it
    once here (rather than when writing) guarantees the published file is still a coverage
    and that every later step sees exactly the published shapes.

    Parameters
    ----------
    wards
        Polygons in BNG metres.

    Returns
    -------
    list of shapely.Polygon
        Counter-clockwise exterior rings, BNG metres, vertices on the 1e-6 degree grid.
    """
    out = []
    for ward in wards:
        ward = shapely.orient_polygons(shapely.normalize(ward), exterior_cw=False)
        lonlat = np.round(_to_lonlat(np.asarray(ward.exterior.coords)), 6)
        out.append(Polygon(_to_bng(lonlat)))
    return out


def make_population(rng: np.random.Generator) -> np.ndarray:
    """Ward populations: each :data:`WARDS` target varied by up to 4 %, rounded to residents.

    Returns
    -------
    numpy.ndarray
        Integer residents per ward, :data:`WARDS` order.
    """
    target = np.array([w.population for w in WARDS], dtype=float)
    return np.round(target * rng.uniform(0.96, 1.04, size=len(WARDS))).astype(int)


def make_borough(rng: np.random.Generator) -> Borough:
    """Outline, wards and population of the demo borough (see :class:`Borough`)."""
    outline = make_outline()
    wards = make_wards(outline, rng)
    return Borough(outline=outline, wards=wards, population=make_population(rng))


def _to_lonlat(xy: np.ndarray) -> np.ndarray:
    lon, lat = _TO_WGS84.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([lon, lat])


def _to_bng(lonlat: np.ndarray) -> np.ndarray:
    x, y = _TO_WGS84.transform(lonlat[:, 0], lonlat[:, 1], direction="INVERSE")
    return np.column_stack([x, y])


def _random_points_in(poly: Polygon, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform random points inside ``poly`` (rejection sampling in its bounding box)."""
    minx, miny, maxx, maxy = poly.bounds
    found: list[np.ndarray] = []
    count = 0
    while count < n:
        cand = rng.uniform((minx, miny), (maxx, maxy), size=(4 * n, 2))
        cand = cand[shapely.contains_xy(poly, cand[:, 0], cand[:, 1])]
        found.append(cand)
        count += len(cand)
    return np.concatenate(found)[:n]


# --------------------------------------------------------------------------------------------
# estates, services, pharmacies


@dataclass(frozen=True)
class EstateSpec:
    """A housing estate: name, landlord, homes, ward and position (km offset from the
    ward's centroid), and its half-size in metres."""

    name: str
    landlord: str
    homes: int
    ward: str
    dx_km: float
    dy_km: float
    half_m: float


_COUNCIL = "Northmere Council (demo)"
ESTATES: tuple[EstateSpec, ...] = (
    EstateSpec(PLANTED_HOTSPOT_ESTATE, _COUNCIL, 1_240, PLANTED_ESTATE_WARD, 0.05, -0.10, 230.0),
    EstateSpec("Gannet Court", _COUNCIL, 420, "E05999020", -0.10, 0.15, 110.0),
    EstateSpec("Ropery Buildings", "Tidewater Homes (fictional)", 380, "E05999019", 0.10, -0.05, 110.0),
    EstateSpec("Kelp Street Estate", _COUNCIL, 610, "E05999016", 0.00, 0.10, 150.0),
    EstateSpec("Saltpan Gardens", "Tidewater Homes (fictional)", 520, "E05999007", 0.20, 0.10, 140.0),
    EstateSpec("Curlew Park", "Harbourside Housing Trust (fictional)", 700, "E05999014", -0.10, 0.00, 160.0),
    EstateSpec("Marram Towers", _COUNCIL, 350, "E05999009", 0.15, 0.20, 100.0),
    EstateSpec("Shearwater Estate", "Harbourside Housing Trust (fictional)", 460, "E05999024", 0.00, 0.00, 130.0),
)

# Treatment services: (name, type, address, ward, km offset from the ward centroid). Every
# one is > GAP_MIN_DISTANCE_M from the gap ward (checked by make_services).
_SERVICES = (
    ("Northmere Drug and Alcohol Hub", "Drug and alcohol treatment hub",
     "1 Capstan Street, Northmere", "E05999020", 0.05, 0.05),
    ("Harbourside Recovery Centre", "Recovery service",
     "14 Jetty Row, Northmere", "E05999021", 0.10, 0.10),
    ("Lanternhill Recovery Point", "Recovery service",
     "3 Lantern Parade, Northmere", PLANTED_ESTATE_WARD, 0.45, -0.05),
    ("Northmere Young People's Service", "Young people's substance misuse service",
     "22 Plover Avenue, Northmere", "E05999015", 0.00, 0.00),
    ("Tidewell Recovery Café", "Recovery service",
     "7 Tidemill Lane, Northmere", "E05999017", 0.00, 0.10),
)

# Pharmacy names are "<ward> <kind>"; the n-th pharmacy in a ward takes the n-th kind.
_PHARMACY_KINDS = ("Pharmacy", "Chemist", "Late Pharmacy", "Healthcare Pharmacy")
#: Number of community pharmacies in the demo borough.
N_PHARMACIES = 26


def ward_centroids(borough: Borough) -> np.ndarray:
    """Ward centroids, ``(n, 2)`` BNG metres, :data:`WARDS` order."""
    return np.array([(w.centroid.x, w.centroid.y) for w in borough.wards])


def _ward_index(code: str) -> int:
    return next(i for i, w in enumerate(WARDS) if w.code == code)


def make_estates(borough: Borough) -> list[tuple[EstateSpec, Polygon]]:
    """Estate polygons: small irregular quadrilaterals, each wholly inside its ward.

    Returns
    -------
    list of (EstateSpec, shapely.Polygon)
        BNG metres, :data:`ESTATES` order.

    Raises
    ------
    RuntimeError
        If an estate would cross its ward boundary (the layout needs adjusting).
    """
    centroids = ward_centroids(borough)
    out = []
    for spec in ESTATES:
        i = _ward_index(spec.ward)
        cx, cy = centroids[i] + np.array([spec.dx_km, spec.dy_km]) * 1000.0
        h = spec.half_m
        # Skewed corners so estates do not look like map tiles.
        poly = Polygon([(cx - h, cy - 0.8 * h), (cx + 1.1 * h, cy - h), (cx + 0.9 * h, cy + 0.9 * h),
                        (cx - 0.9 * h, cy + 1.05 * h)])
        poly = round_coverage([poly])[0]
        if not borough.wards[i].contains(poly):
            raise RuntimeError(f"estate {spec.name} crosses the boundary of ward {spec.ward}")
        out.append((spec, poly))
    return out


def make_services(borough: Borough) -> list[dict[str, object]]:
    """Treatment services at fixed offsets from ward centroids, integer BNG metres.

    Returns
    -------
    list of dict
        Keys ``name, service_type, address, easting, northing``.
    """
    centroids = ward_centroids(borough)
    rows = []
    for name, kind, address, ward, dx, dy in _SERVICES:
        x, y = centroids[_ward_index(ward)] + np.array([dx, dy]) * 1000.0
        rows.append({"name": name, "service_type": kind, "address": address,
                     "easting": int(round(x)), "northing": int(round(y))})
    _check_far_from_gaps(borough, [(r["easting"], r["northing"]) for r in rows], "treatment service")
    return rows


def make_pharmacies(borough: Borough, rng: np.random.Generator) -> list[dict[str, object]]:
    """Community pharmacies, a third of them needle exchanges (NSP).

    Pharmacies sit in wards roughly in proportion to population. Only pharmacies more than
    :data:`GAP_MIN_DISTANCE_M` + 500 m from every gap ward's centroid may be NSP, so the gap
    wards are planted far from needle exchanges while ordinary pharmacies can be close.

    Returns
    -------
    list of dict
        Keys ``name, address, postcode, longitude, latitude, needle_exchange, nsp_level,
        supervised_consumption``; lon/lat as 6-decimal strings. Postcodes use the
        non-existent "NM" area.
    """
    n = N_PHARMACIES
    gaps = [_ward_index(c) for c in PLANTED_GAP_WARDS]
    # Every gap ward gets exactly one (non-NSP) pharmacy, so "nearest pharmacy" and "nearest
    # needle exchange" differ there; the rest follow population.
    weights = borough.population.astype(float)
    weights[gaps] = 0.0
    wards = np.concatenate([gaps, rng.choice(len(WARDS), size=n - len(gaps), p=weights / weights.sum())])
    wards = np.sort(wards)
    xy = np.array([_random_points_in(borough.wards[w].buffer(-120.0), 1, rng)[0] for w in wards])
    far = _distance_to_gaps(borough, xy) > GAP_MIN_DISTANCE_M + 500.0
    # A third of pharmacies run a needle exchange, chosen among those far from the gap wards.
    eligible = np.flatnonzero(far)
    nsp = np.zeros(n, dtype=bool)
    nsp[rng.choice(eligible, size=min(len(eligible), round(n / 3)), replace=False)] = True
    lonlat = _to_lonlat(xy)
    rows = []
    for k in range(n):
        nth = int(np.sum(wards[:k] == wards[k]))
        level = ("Level 2" if rng.uniform() < 0.4 else "Level 1") if nsp[k] else ""
        street = f"{_STREET_WORDS[(7 * k) % len(_STREET_WORDS)]} {_STREET_KINDS[k % len(_STREET_KINDS)]}"
        rows.append({
            "name": f"{WARDS[wards[k]].name} {_PHARMACY_KINDS[nth % len(_PHARMACY_KINDS)]}",
            "address": f"{10 + 3 * k} {street}, Northmere",
            # "NM" is not a UK postcode area, so these can never geocode to a real place.
            "postcode": f"NM{1 + wards[k] % 9} {k % 10}{'ABDEFGHJLN'[k % 10]}{'PQRSTUWXYZ'[(3 * k) % 10]}",
            "longitude": f"{lonlat[k, 0]:.6f}",
            "latitude": f"{lonlat[k, 1]:.6f}",
            "needle_exchange": "Yes" if nsp[k] else "No",
            "nsp_level": level,
            "supervised_consumption": "Yes" if rng.uniform() < 0.6 else "No",
        })
    nsp_xy = _to_bng(np.array([[float(r["longitude"]), float(r["latitude"])]
                               for r in rows if r["needle_exchange"] == "Yes"]))
    _check_far_from_gaps(borough, nsp_xy, "needle exchange")
    return rows


def _distance_to_gaps(borough: Borough, xy: np.ndarray) -> np.ndarray:
    """Distance (m) from each point to the nearest gap-ward centroid."""
    centroids = ward_centroids(borough)[[_ward_index(c) for c in PLANTED_GAP_WARDS]]
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    return np.min(np.linalg.norm(xy[:, None, :] - centroids[None, :, :], axis=2), axis=1)


def _check_far_from_gaps(borough: Borough, xy, what: str) -> None:
    if len(xy) and _distance_to_gaps(borough, np.asarray(xy)).min() < GAP_MIN_DISTANCE_M:
        raise RuntimeError(f"a {what} is within {GAP_MIN_DISTANCE_M:.0f} m of a planted gap ward")


# --------------------------------------------------------------------------------------------
# rates and counts


def expected_monthly(population: np.ndarray, rate_per_1000_year: np.ndarray) -> np.ndarray:
    """Expected monthly counts, ``(wards, 12)``: population x annual rate / 12, seasonal.

    Parameters
    ----------
    population
        Residents per ward.
    rate_per_1000_year
        Annual rate per 1,000 residents per ward.
    """
    per_month = population * rate_per_1000_year / 1000.0 / 12.0
    return per_month[:, None] * _SEASON[None, :]


def ward_rates(previous: bool = False) -> dict[str, np.ndarray]:
    """Planted annual rates per 1,000 residents, :data:`WARDS` order.

    Parameters
    ----------
    previous
        False for the study period (the :data:`WARDS` rates), True for the previous period:
        the same rates except possession in :data:`PLANTED_RISING_WARDS` (divided by
        :data:`RISING_POSSESSION_FACTOR`) and in :data:`PLANTED_FALLING_WARDS` (times
        :data:`FALLING_POSSESSION_FACTOR`).

    Returns
    -------
    dict
        ``"possession"``, ``"trafficking"``, ``"asb"``: float arrays, one value per ward.
    """
    rates = {
        "possession": np.array([w.possession for w in WARDS]),
        "trafficking": np.array([w.trafficking for w in WARDS]),
        "asb": np.array([w.asb for w in WARDS]),
    }
    if previous:
        for code in PLANTED_RISING_WARDS:
            rates["possession"][_ward_index(code)] /= RISING_POSSESSION_FACTOR
        for code in PLANTED_FALLING_WARDS:
            rates["possession"][_ward_index(code)] *= FALLING_POSSESSION_FACTOR
    return rates


def make_mps_counts(borough: Borough, rng: np.random.Generator,
                    rates: dict[str, np.ndarray] | None = None,
                    profiles: dict[str, np.ndarray] | None = None,
                    profile_rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """MPS-style monthly possession and trafficking counts per ward (Poisson draws).

    Parameters
    ----------
    borough
        The generated geography (populations).
    rng
        Random generator (one per year, so one year's draws do not shift another's).
    rates
        :func:`ward_rates` of the year; the study period's by default.
    profiles
        ``(measure, ward code)`` -> 12 monthly multipliers (the planted emerging hot spots).
    profile_rng
        Generator for the profiled wards' counts (needed with ``profiles``).

    Returns
    -------
    dict
        ``"possession"`` and ``"trafficking"``: integer arrays ``(wards, 12)``.
    """
    rates = ward_rates() if rates is None else rates
    pop = borough.population.astype(float)
    counts = {
        "possession": rng.poisson(expected_monthly(pop, rates["possession"])),
        "trafficking": rng.poisson(expected_monthly(pop, rates["trafficking"])),
    }
    if profiles:
        # Redrawn from a generator of their own, so every other ward keeps its numbers.
        for (measure, code), profile in profiles.items():
            i = _ward_index(code)
            counts[measure][i] = profile_rng.poisson(expected_monthly(pop[i:i + 1], rates[measure][i:i + 1])[0]
                                                     * profile)
    return counts


# --------------------------------------------------------------------------------------------
# police.uk street-level rows


def make_street_points(borough: Borough, estates: list[tuple[EstateSpec, Polygon]],
                       rng: np.random.Generator) -> StreetPoints:
    """The fixed set of snap points: ~13 per ward, a few on every estate, and some outside.

    Parameters
    ----------
    borough
        The generated geography.
    estates
        Estates from :func:`make_estates`; each gets snap points of its own so that the
        hotspot estate can hold its concentration of Drugs records.
    rng
        Random generator.

    Returns
    -------
    StreetPoints
    """
    xy: list[np.ndarray] = []
    ward: list[int] = []
    hot: list[bool] = []
    for i, poly in enumerate(borough.wards):
        n = 10 + int(borough.population[i] // 3000)
        xy.append(_random_points_in(poly.buffer(-15.0), n, rng))
        ward += [i] * n
        hot += [False] * n
    for spec, poly in estates:
        n = 4 if spec.name == PLANTED_HOTSPOT_ESTATE else 2
        xy.append(_random_points_in(poly.buffer(-10.0), n, rng))
        ward += [_ward_index(spec.ward)] * n
        hot += [spec.name == PLANTED_HOTSPOT_ESTATE] * n
    # Points 300 m to 3 km off the edge: records police.uk attributes to the force but that
    # fall outside the study area.
    ring = borough.outline.buffer(3000.0).difference(borough.outline.buffer(300.0))
    n_out = 10
    xy.append(_random_points_in(ring, n_out, rng))
    ward += [-1] * n_out
    hot += [False] * n_out
    xy_all = np.concatenate(xy)
    ward_arr = np.array(ward)

    names = _street_names(len(xy_all), rng)
    codes, lsoa_names = _lsoas(borough, xy_all, ward_arr)
    weight = rng.gamma(1.5, 1.0, size=len(xy_all))
    return StreetPoints(xy=xy_all, name=names, ward=ward_arr, lsoa_code=codes, lsoa_name=lsoa_names,
                        weight=weight, on_hotspot_estate=np.array(hot))


def _street_names(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct "On or near ..." names; about one in eight is a point of interest."""
    streets = [f"{w} {k}" for w in _STREET_WORDS for k in _STREET_KINDS]
    picked = rng.choice(len(streets), size=n, replace=False)
    names = []
    for j, s in enumerate(picked):
        names.append(_POI_NAMES[j % len(_POI_NAMES)] if rng.uniform() < 0.125 else streets[s])
    return [f"On or near {name}" for name in names]


def _lsoas(borough: Borough, xy: np.ndarray, ward: np.ndarray) -> tuple[list[str], list[str]]:
    """Fictional LSOA per point: four per ward (quadrants about the centroid), Southmere outside."""
    centroids = ward_centroids(borough)
    codes, names = [], []
    for (x, y), w in zip(xy, ward):
        if w < 0:
            k = 1 + int(abs(x - ORIGIN[0]) // 2500) % 9
            codes.append(f"E01998{k:03d}")
            names.append(f"Southmere {k:03d}A")
            continue
        q = (x >= centroids[w, 0]) + 2 * (y < centroids[w, 1])
        codes.append(f"E01999{4 * w + q + 1:03d}")
        names.append(f"Northmere {w + 1:03d}{'ABCD'[q]}")
    return codes, names


def _crime_id(seed: int, month: str, n: int) -> str:
    """A 64-hex Crime ID, stable for a seed, month and row number (like police.uk's SHA-256)."""
    return hashlib.sha256(f"northmere-demo:{seed}:{month}:{n}".encode()).hexdigest()


def _pick(options: Sequence[tuple[str, float]], rng: np.random.Generator) -> str:
    probs = np.array([p for _, p in options])
    return options[rng.choice(len(options), p=probs / probs.sum())][0]


def police_uk_rows(borough: Borough, streets: StreetPoints, rng: np.random.Generator,
                   seed: int, months: Sequence[str] = MONTHS,
                   rates: dict[str, np.ndarray] | None = None) -> dict[str, list[list[str]]]:
    """All police.uk street-level rows of one year, per month.

    Drugs records follow the MPS possession + trafficking pattern (Poisson around
    :data:`_POLICE_UK_DRUGS_FACTOR` times the expected MPS count, not a copy of it); in the
    estate ward most go to snap points on the hotspot estate. ASB follows the ward ASB rates.
    Each record is then, with :data:`NO_LOCATION_SHARE` probability, written without
    coordinates, or with :data:`OUTSIDE_SHARE` probability snapped to a point outside the
    borough, as happens in real force files.

    Parameters
    ----------
    borough, streets
        Geography and snap points.
    rng
        Random generator.
    seed
        Seed, mixed into the Crime IDs.
    months
        The year's twelve months (:data:`MONTHS` or :data:`PREVIOUS_MONTHS`).
    rates
        :func:`ward_rates` of that year; the study period's by default.

    Returns
    -------
    dict
        Month -> rows (lists of strings in :data:`POLICE_UK_HEADER` order).
    """
    rates = ward_rates() if rates is None else rates
    pop = borough.population.astype(float)
    drugs_rate = (rates["possession"] + rates["trafficking"]) * _POLICE_UK_DRUGS_FACTOR
    expected = {
        "Drugs": expected_monthly(pop, drugs_rate),
        "Anti-social behaviour": expected_monthly(pop, rates["asb"]),
        "other": expected_monthly(pop, np.full(len(WARDS), _OTHER_CRIME_RATE)),
    }
    lonlat = np.round(_to_lonlat(streets.xy), 6)
    outside = np.flatnonzero(streets.ward < 0)
    estate_ward = _ward_index(PLANTED_ESTATE_WARD)
    by_ward = [np.flatnonzero(streets.ward == i) for i in range(len(WARDS))]
    on_estate = np.flatnonzero(streets.on_hotspot_estate)

    out: dict[str, list[list[str]]] = {}
    for m, month in enumerate(months):
        records: list[tuple[str, int]] = []  # (crime type, snap point)
        for i in range(len(WARDS)):
            pts = by_ward[i]
            p = streets.weight[pts] / streets.weight[pts].sum()
            for kind, exp in expected.items():
                for _ in range(rng.poisson(exp[i, m])):
                    ctype = kind if kind != "other" else _pick(_OTHER_CRIME_TYPES, rng)
                    if ctype == "Drugs" and i == estate_ward and rng.uniform() < _ESTATE_DRUGS_SHARE:
                        point = int(rng.choice(on_estate))
                    else:
                        point = int(pts[rng.choice(len(pts), p=p)])
                    records.append((ctype, point))
        rows = []
        for n, (ctype, point) in enumerate(records):
            u = rng.uniform()
            if u < NO_LOCATION_SHARE:
                point = -1
            elif u < NO_LOCATION_SHARE + OUTSIDE_SHARE:
                point = int(rng.choice(outside))
            rows.append(_police_uk_row(ctype, point, month, n, streets, lonlat, rng, seed))
        out[month] = rows
    return out


def _police_uk_row(ctype: str, point: int, month: str, n: int, streets: StreetPoints,
                   lonlat: np.ndarray, rng: np.random.Generator, seed: int) -> list[str]:
    """One police.uk row; ``point == -1`` means no location."""
    asb = ctype == "Anti-social behaviour"
    crime_id = "" if asb else _crime_id(seed, month, n)
    outcome = "" if asb else _pick(_OUTCOMES_DRUGS if ctype == "Drugs" else _OUTCOMES_OTHER, rng)
    if point < 0:
        lon = lat = code = name = ""
        location = "No Location"
    else:
        lon, lat = f"{lonlat[point, 0]:.6f}", f"{lonlat[point, 1]:.6f}"
        location = streets.name[point]
        code, name = streets.lsoa_code[point], streets.lsoa_name[point]
    return [crime_id, month, FORCE_NAME, FORCE_NAME, lon, lat, location, code, name, ctype, outcome, ""]


# --------------------------------------------------------------------------------------------
# tables


def mps_rows(borough: Borough, mps: Sequence[dict[str, np.ndarray]],
             rngs: Sequence[np.random.Generator]) -> list[list[str]]:
    """The MPS ward-level wide table: header then one row per ward x minor category.

    Northmere wards carry the planted drug counts; other categories and the Southmere wards
    are there to be filtered out. Rows are sorted by borough, ward name, major and minor text
    and month columns run chronologically, as in the London Datastore file.

    Parameters
    ----------
    borough
        The generated geography.
    mps
        Per year, oldest first: :func:`make_mps_counts` of that year.
    rngs
        Per year, oldest first: the generator for that year's other categories and Southmere
        rows. Each year draws in the same order from its own generator, so adding a year does
        not change the numbers of the others.

    Returns
    -------
    list of list of str
        Header (``MajorText ... LookUp_BoroughName, 202401 ... 202512``) and data rows.
    """
    header = ["MajorText", "MinorText", "WardName", "WardCode", "LookUp_BoroughName"]
    header += [m.replace("-", "") for m in ALL_MONTHS]
    wards = [(w.code, w.name, LAD_NAME, int(p)) for w, p in zip(WARDS, borough.population)]
    wards += [(c, n, NEIGHBOUR_NAME, p) for c, n, p in _NEIGHBOUR_WARDS]
    drugs_by_code = {w.code: i for i, w in enumerate(WARDS)}

    def draw(pop: int, rate: float) -> np.ndarray:
        return np.concatenate([rng.poisson(expected_monthly(np.array([pop]), np.array([rate]))[0])
                               for rng in rngs])

    rows = []
    for code, name, borough_name, pop in sorted(wards, key=lambda r: (r[2], r[1])):
        categories = []
        for major, minor in _MPS_DRUGS:
            if code in drugs_by_code:
                key = "trafficking" if minor == "Drug Trafficking" else "possession"
                counts = np.concatenate([year[key][drugs_by_code[code]] for year in mps])
            else:
                counts = draw(pop, 0.6 if minor == "Drug Trafficking" else 3.0)
            categories.append((major, minor, counts))
        for major, minor, rate in _MPS_OTHER:
            categories.append((major, minor, draw(pop, rate)))
        for major, minor, counts in sorted(categories, key=lambda c: (c[0], c[1])):
            rows.append([major, minor, name, code, borough_name] + [str(int(c)) for c in counts])
    return [header] + rows


def population_rows(borough: Borough) -> list[list[str]]:
    """``WD22CD, WD22NM, population`` rows (header first)."""
    return [["WD22CD", "WD22NM", "population"]] + [
        [w.code, w.name, str(int(p))] for w, p in zip(WARDS, borough.population)]


def asb_warning_rows(borough: Borough, rngs: Sequence[np.random.Generator],
                     rates: Sequence[dict[str, np.ndarray]]) -> list[list[str]]:
    """ASB warnings per ward per month (``ward_code, ward_name, month, warnings``).

    Parameters
    ----------
    borough
        The generated geography.
    rngs, rates
        Per year, oldest first (:data:`ALL_MONTHS` order): generator and :func:`ward_rates`.

    Returns
    -------
    list of list of str
        Header, then per ward (:data:`WARDS` order) one row per month of :data:`ALL_MONTHS`.
    """
    pop = borough.population.astype(float)
    counts = np.concatenate([rng.poisson(expected_monthly(pop, r["asb"] * _ASB_WARNING_FACTOR))
                             for rng, r in zip(rngs, rates)], axis=1)
    rows = [["ward_code", "ward_name", "month", "warnings"]]
    for i, w in enumerate(WARDS):
        rows += [[w.code, w.name, month, str(int(counts[i, m]))] for m, month in enumerate(ALL_MONTHS)]
    return rows


def study_toml(seed: int) -> str:
    """The demo study file (paths relative to ``data/demo/``)."""
    layers = (("population", "population.csv"), ("police_uk", "police_uk"),
              ("mps_ward", "mps_ward_level_crime.csv"), ("asb_warnings", "asb_warnings.csv"),
              ("treatment_services", "treatment_services.csv"), ("pharmacies", "pharmacies.csv"),
              ("estates", "estates.geojson"))
    lines = [
        "# The fictional demo borough. Generated by geomisuse.demo; regenerate, do not edit.",
        "[study]",
        'name = "Northmere (fictional demo borough)"',
        f'borough = "{LAD_NAME}"',
        f'period = ["{MONTHS[0]}", "{MONTHS[-1]}"]',
        "demo = true",
        f'sources = ["Fictional data generated by geomisuse.demo (seed {seed}); not a real place"]',
        "",
        "[boundaries]",
        'path = "../../boundaries/northmere_wards.geojson"',
        "",
    ]
    for kind, path in layers:
        lines += [f"[layers.{kind}]", f'path = "{path}"']
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# writing


def _csv_text(rows: Sequence[Sequence[str]]) -> str:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _polygon_lonlat(poly: Polygon) -> list[list[list[float]]]:
    """GeoJSON coordinates of a BNG polygon, on the 6-decimal lon/lat grid."""
    ring = np.round(_to_lonlat(np.asarray(poly.exterior.coords)), 6)
    return [[[float(x), float(y)] for x, y in ring]]


def _geojson_text(name: str, features: list[tuple[dict[str, object], Polygon]]) -> str:
    """A FeatureCollection (RFC 7946, lon/lat), one feature per line, keys sorted."""
    lines = [f'{{"type": "FeatureCollection", "name": {json.dumps(name)}, "features": [']
    for k, (props, poly) in enumerate(features):
        feature = {"type": "Feature", "properties": props,
                   "geometry": {"type": "Polygon", "coordinates": _polygon_lonlat(poly)}}
        sep = "," if k < len(features) - 1 else ""
        lines.append(json.dumps(feature, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + sep)
    lines.append("]}")
    return "\n".join(lines) + "\n"


def build_files(seed: int = DEMO_SEED) -> dict[Path, str]:
    """Generate every demo file's text, in memory.

    Parameters
    ----------
    seed
        Seed for the anchor jitter, populations, counts, points and IDs.

    Returns
    -------
    dict
        Path relative to the project root -> file text (UTF-8, ``\\n`` line ends).
    """
    # One generator per concern, so that changing how one layer draws its numbers does not
    # reshuffle all the others.
    concerns = ("borough", "mps", "streets", "police_uk", "pharmacies", "asb", "mps_other")
    rngs = {k: np.random.default_rng([seed, j]) for j, k in enumerate(concerns)}
    # The previous year draws from generators of its own: the study year's numbers are the
    # same as when the demo held the study year only.
    prev_rngs = {k: np.random.default_rng([seed, int(PREVIOUS_MONTHS[0][:4]), j])
                 for j, k in enumerate(concerns)}
    rates, prev_rates = ward_rates(), ward_rates(previous=True)
    borough = make_borough(rngs["borough"])
    estates = make_estates(borough)
    mps = make_mps_counts(borough, rngs["mps"], rates, _PROFILES,
                          np.random.default_rng([seed, len(concerns)]))
    prev_mps = make_mps_counts(borough, prev_rngs["mps"], prev_rates)
    streets = make_street_points(borough, estates, rngs["streets"])
    files: dict[Path, str] = {}
    files[BOUNDARY_FILE] = _geojson_text("northmere_wards", [
        ({"WD22CD": w.code, "WD22NM": w.name, "LAD22CD": LAD_CODE, "LAD22NM": LAD_NAME}, poly)
        for w, poly in zip(WARDS, borough.wards)])
    files[DEMO_DIR / "population.csv"] = _csv_text(population_rows(borough))
    for months, gen, year_rates in ((PREVIOUS_MONTHS, prev_rngs, prev_rates), (MONTHS, rngs, rates)):
        for month, rows in police_uk_rows(borough, streets, gen["police_uk"], seed, months, year_rates).items():
            files[DEMO_DIR / "police_uk" / f"{month}-northmere-street.csv"] = _csv_text([POLICE_UK_HEADER] + rows)
    files[DEMO_DIR / "mps_ward_level_crime.csv"] = _csv_text(
        mps_rows(borough, [prev_mps, mps], [prev_rngs["mps_other"], rngs["mps_other"]]))
    files[DEMO_DIR / "asb_warnings.csv"] = _csv_text(
        asb_warning_rows(borough, [prev_rngs["asb"], rngs["asb"]], [prev_rates, rates]))
    services = make_services(borough)
    files[DEMO_DIR / "treatment_services.csv"] = _csv_text(
        [list(services[0])] + [[str(v) for v in s.values()] for s in services])
    pharmacies = make_pharmacies(borough, rngs["pharmacies"])
    files[DEMO_DIR / "pharmacies.csv"] = _csv_text(
        [list(pharmacies[0])] + [[str(v) for v in p.values()] for p in pharmacies])
    files[DEMO_DIR / "estates.geojson"] = _geojson_text("northmere_estates", [
        ({"name": s.name, "landlord": s.landlord, "homes": s.homes}, poly) for s, poly in estates])
    files[DEMO_DIR / "study.toml"] = study_toml(seed)
    return dict(sorted(files.items()))


def generate_demo(root: Path, seed: int = DEMO_SEED) -> list[Path]:
    """Write the demo borough's files under ``root``.

    Parameters
    ----------
    root
        Project root (or any folder); files go to ``root/boundaries/`` and ``root/data/demo/``.
    seed
        Generation seed; the committed files use :data:`DEMO_SEED`.

    Returns
    -------
    list of Path
        The files written, sorted. Running twice with the same seed writes byte-identical files.
    """
    root = Path(root)
    written = []
    for rel, text in build_files(seed).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        written.append(path)
    return written


def regenerate(root: Path, seed: int = DEMO_SEED) -> list[str]:
    """Regenerate the committed demo files in a project checkout.

    Parameters
    ----------
    root
        Project root holding ``boundaries/`` and ``data/demo/``.
    seed
        Generation seed.

    Returns
    -------
    list of str
        Paths (relative to ``root``, POSIX style) whose content changed or that were new;
        empty when the committed files are already up to date.
    """
    root = Path(root)
    changed = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in generate_demo(Path(tmp), seed):
            rel = path.relative_to(tmp)
            target = root / rel
            if not target.is_file() or not filecmp.cmp(path, target, shallow=False):
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                changed.append(rel.as_posix())
    return changed


__all__ = [
    "DEMO_SEED", "LAD_CODE", "LAD_NAME", "MONTHS", "PREVIOUS_MONTHS", "ALL_MONTHS", "WARDS", "ESTATES",
    "POLICE_UK_HEADER", "PLANTED_POSSESSION_CLUSTER", "PLANTED_LOW_CLUSTER", "PLANTED_ESTATE_WARD",
    "PLANTED_HOTSPOT_ESTATE", "PLANTED_GAP_WARDS", "GAP_MIN_DISTANCE_M", "PLANTED_RISING_WARDS",
    "RISING_POSSESSION_FACTOR", "PLANTED_FALLING_WARDS", "FALLING_POSSESSION_FACTOR", "PLANTED_EMERGING",
    "ward_rates",
    "NO_LOCATION_SHARE", "OUTSIDE_SHARE", "generate_demo", "regenerate", "build_files",
]
