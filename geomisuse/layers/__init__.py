"""One loader per input layer kind; each turns a source file into a canonical table in
EPSG:27700 with the accounting of its rows (see :mod:`geomisuse.layers.base`)."""

from __future__ import annotations

from typing import Callable

from ..config import LayerSpec
from .asb import load_asb_warnings
from .base import LayerResult, LoadContext
from .boundaries import load_boundaries
from .estates import load_estates
from .mps_lsoa import load_mps_lsoa
from .mps_ward import load_mps_ward
from .police_uk import load_police_uk
from .population import load_population, load_residents
from .sites import load_sites

#: Layer kind -> loader. Every loader takes ``(spec, context)`` and returns a LayerResult.
LOADERS: dict[str, Callable[[LayerSpec, LoadContext], LayerResult]] = {
    "police_uk": load_police_uk,
    "mps_ward": load_mps_ward,
    "mps_lsoa": load_mps_lsoa,
    "asb_warnings": load_asb_warnings,
    "treatment_services": load_sites,
    "pharmacies": load_sites,
    "needle_exchanges": load_sites,
    "candidate_sites": load_sites,
    "estates": load_estates,
    "population": load_population,
    "residents": load_residents,
}

__all__ = ["LOADERS", "LayerResult", "LoadContext", "load_boundaries"]
