"""Helpers for the briefing tests: the demo run with planted cluster and gap results.

The cluster and gap stages (``geomisuse.clusters``, ``geomisuse.gaps``) are used when
they are installed; otherwise :func:`plant_analysis` writes their output columns from the
demo's planted structure, so that the briefings can be checked on their own.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd

from geomisuse import demo
from geomisuse.pipeline import analyse, prepare
from geomisuse.study import load_study

from conftest import ROOT

DEMO_STUDY = ROOT / "data" / "demo" / "study.toml"


def plant_analysis(run) -> None:
    """Cluster and gap columns as the stages would write them, from the planted structure."""
    wards = run.wards
    codes = wards["ward_code"]
    for m in run.measures:
        label = pd.Series("Not significant", index=wards.index, dtype=object)
        p = pd.Series(0.4, index=wards.index)
        gi_bin = pd.Series(0, index=wards.index, dtype="int64")
        if m == "possession":
            high = codes.isin(demo.PLANTED_POSSESSION_CLUSTER)
            low = codes.isin(demo.PLANTED_LOW_CLUSTER)
            label[high], label[low] = "High-High", "Low-Low"
            p[high | low] = 0.002
            gi_bin[high] = 3
        if m == "trafficking":
            gi_bin[codes == demo.PLANTED_ESTATE_WARD] = 3
        wards[f"{m}_lisa_i"] = np.where(label == "Not significant", 0.1, 1.5)
        wards[f"{m}_lisa_p"] = p
        wards[f"{m}_lisa_label"] = label
        wards[f"{m}_gi_z"] = gi_bin * 1.1
        wards[f"{m}_gi_p"] = np.where(gi_bin != 0, 0.005, 0.5)
        wards[f"{m}_gi_bin"] = gi_bin
    gap = codes.isin(demo.PLANTED_GAP_WARDS)
    centres = wards.geometry.representative_point()
    for column, sites in (("nearest_treatment_service_m", run.layer_table("treatment_services")),
                          ("nearest_needle_exchange_m", run.needle_exchanges())):
        wards[column] = [float(sites.distance(c).min()) for c in centres]
    wards["gap_score"] = np.where(gap, 2.5, 0.1)
    wards["gap_rank"] = np.where(gap, 1, np.arange(2, len(wards) + 2)).astype("int64")
    wards["is_outreach_gap"] = gap
    wards["gap_reason"] = np.where(gap, "top-fifth possession and ASB; no treatment service or needle exchange "
                                        "within 2.5 km", "")
    pharmacies = run.other_pharmacies()
    target = centres[gap].iloc[0]
    pick = pharmacies.iloc[int(np.argmin(pharmacies.distance(target).to_numpy()))]
    run.satellites = pd.DataFrame([{
        "rank": 1, "name": pick["name"], "easting": pick.geometry.x, "northing": pick.geometry.y,
        "longitude": 0.0, "latitude": 0.0, "ward_code": pick["ward_code"],
        "ward_name": wards.loc[codes == pick["ward_code"], "ward_name"].iloc[0],
        "need_covered": 100.0, "share_of_gap_need_covered": 0.8}])
    run.manifest["clusters"] = {"planted": True}
    run.manifest["gaps"] = {"planted": True, "walk_speed_kmh": 4.8, "detour_factor": 1.3, "walk_threshold_min": 20}


def stages_available() -> bool:
    """Whether the cluster and gap stages are installed (they arrive from other branches)."""
    return importlib.util.find_spec("geomisuse.clusters") is not None and \
        importlib.util.find_spec("geomisuse.gaps") is not None


def demo_run(planted: bool = True):
    """The demo borough through the real loaders, with cluster and gap results: from the real
    stages when they are installed, else planted (:func:`plant_analysis`)."""
    study = load_study(DEMO_STUDY)
    if planted and stages_available():
        return analyse(study)[0]
    run = prepare(study)
    if planted:
        plant_analysis(run)
    return run
