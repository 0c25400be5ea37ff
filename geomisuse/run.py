"""The state of one study run as it passes from stage to stage.

``load -> ward table -> clusters -> gaps -> publish``: each stage is a plain function over
data frames; :class:`StudyRun` only carries their results so that the publishing stages
(map, briefings, exports) can read everything the analysis produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd

from .layers.base import LayerResult
from .study import Study


@dataclass
class StudyRun:
    """Everything a run has produced so far.

    Attributes
    ----------
    study
        The study settings.
    wards
        The ward table: one row per ward in ``ward_code`` order, EPSG:27700, with the
        columns of the output contract (README, "Outputs"). Each stage adds its columns.
    monthly
        ``ward_code``, ``month`` (``YYYY-MM``) and one ``M_count`` column per measure present.
    months
        The months of the period, in order.
    measures
        The measures with data in this study (subset of ``settings.MEASURES``).
    layers
        Loaded inputs by layer kind. Point and polygon tables carry ``ward_code`` once joined.
    global_moran
        One row per analysed measure (cluster stage), else ``None``.
    satellites
        Suggested satellite sites (gap stage), else ``None``.
    manifest
        Stage sections for ``manifest.json`` (``clusters``, ``gaps`` ...).
    warnings
        Everything a user should read, in the order it was found.
    """

    study: Study
    wards: gpd.GeoDataFrame
    monthly: pd.DataFrame
    months: list[str]
    measures: list[str]
    layers: dict[str, LayerResult]
    global_moran: pd.DataFrame | None = None
    satellites: pd.DataFrame | None = None
    manifest: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def layer_table(self, kind: str) -> gpd.GeoDataFrame | None:
        """The canonical table of a loaded layer, or ``None`` when the study has no such layer."""
        layer = self.layers.get(kind)
        return None if layer is None else layer.table

    def needle_exchanges(self) -> gpd.GeoDataFrame | None:
        """Needle exchanges: flagged pharmacies and the needle-exchange layer together (or ``None``)."""
        parts = []
        pharmacies = self.layer_table("pharmacies")
        if pharmacies is not None:
            parts.append(pharmacies[pharmacies["is_needle_exchange"]])
        if self.layer_table("needle_exchanges") is not None:
            parts.append(self.layer_table("needle_exchanges"))
        if not parts:
            return None
        return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=parts[0].crs)

    def other_pharmacies(self) -> gpd.GeoDataFrame | None:
        """Pharmacies that are not needle exchanges (default satellite candidates), or ``None``."""
        pharmacies = self.layer_table("pharmacies")
        return None if pharmacies is None else pharmacies[~pharmacies["is_needle_exchange"]].reset_index(drop=True)
