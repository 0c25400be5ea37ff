"""The demo borough through the real loaders: accounting and the planted structure in the ward table."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest

from geomisuse.demo import borough as demo

from conftest import ROOT, demo_run_copy

DEMO = ROOT / "data" / "demo"


@pytest.fixture(scope="module")
def demo_run():
    return demo_run_copy()


def test_every_layer_accounts_for_every_row(demo_run):
    for kind, layer in demo_run.layers.items():
        acc = layer.accounting()
        total = acc["rows_used"] + sum(acc["rows_excluded"].values()) + sum(acc["rows_rejected"].values())
        assert acc["rows_read"] == total, kind
        assert all(f["sha256"] and len(f["sha256"]) == 64 for f in acc["files"])


def test_police_uk_rows_read_match_the_files(demo_run):
    files = sorted((DEMO / "police_uk").glob("*.csv"))
    raw = pd.concat([pd.read_csv(p) for p in files], ignore_index=True)
    acc = demo_run.layers["police_uk"].accounting()
    # The study period and the year before it (read for the previous-period comparison).
    in_period = raw[raw["Month"].between("2024-01", "2025-12")]
    analysed = in_period[in_period["Crime type"].isin(["Drugs", "Anti-social behaviour"])]
    assert acc["rows_read"] == len(raw)
    assert acc["rows_rejected"]["no coordinates"] == analysed["Longitude"].isna().sum()
    # Independent join of the analysed rows with coordinates.
    located = analysed[analysed["Longitude"].notna()]
    points = gpd.GeoDataFrame(located, geometry=gpd.points_from_xy(located["Longitude"], located["Latitude"]),
                              crs="EPSG:4326").to_crs("EPSG:27700")
    wards = demo_run.wards[["ward_code", "geometry"]]
    joined = gpd.sjoin(points, wards, predicate="intersects").groupby(level=0).first()
    assert acc["rows_rejected"]["outside the study area"] == len(located) - len(joined)
    drugs = joined[(joined["Crime type"] == "Drugs") & (joined["Month"] >= "2025-01")].groupby("ward_code").size()
    counted = demo_run.wards.set_index("ward_code")["police_uk_drugs_count"]
    assert (counted == drugs.reindex(counted.index).fillna(0)).all()


def test_planted_possession_counts_equal_the_mps_source(demo_run):
    raw = pd.read_csv(DEMO / "mps_ward_level_crime.csv")
    months = [c for c in raw.columns if c.startswith("2025")]
    possession = raw[raw["MinorText"] == "Possession of Drugs"].set_index("WardCode")[months].sum(axis=1)
    wards = demo_run.wards.set_index("ward_code")
    for code in demo.PLANTED_POSSESSION_CLUSTER + demo.PLANTED_LOW_CLUSTER + demo.PLANTED_GAP_WARDS:
        assert wards.loc[code, "possession_count"] == possession[code]
    # The planted structure is in the rates: the town centre high, the north-east low.
    cluster = wards.loc[list(demo.PLANTED_POSSESSION_CLUSTER), "possession_rate_per_1000"]
    low = wards.loc[list(demo.PLANTED_LOW_CLUSTER), "possession_rate_per_1000"]
    others = wards.drop(index=list(demo.PLANTED_POSSESSION_CLUSTER + demo.PLANTED_LOW_CLUSTER))
    assert cluster.min() > others["possession_rate_per_1000"].max() * 0.9
    assert low.max() < others["possession_rate_per_1000"].min()


def test_planted_estate_ward_has_the_trafficking_hotspot(demo_run):
    wards = demo_run.wards.set_index("ward_code")
    assert wards["trafficking_rate_per_1000"].idxmax() == demo.PLANTED_ESTATE_WARD
    estates = demo_run.layer_table("estates")
    hotspot = estates[estates["name"] == demo.PLANTED_HOTSPOT_ESTATE]
    assert hotspot["ward_code"].tolist() == [demo.PLANTED_ESTATE_WARD]


def test_gap_ward_has_no_services_and_high_need(demo_run):
    wards = demo_run.wards.set_index("ward_code")
    for code in demo.PLANTED_GAP_WARDS:
        assert wards.loc[code, "treatment_services_count"] == 0
        assert wards.loc[code, "needle_exchanges_count"] == 0
        assert wards.loc[code, "asb_rate_per_1000"] == wards["asb_rate_per_1000"].max()


def test_site_counts(demo_run):
    wards = demo_run.wards
    services = pd.read_csv(DEMO / "treatment_services.csv")
    pharmacies = pd.read_csv(DEMO / "pharmacies.csv")
    assert wards["treatment_services_count"].sum() == len(services)
    assert wards["needle_exchanges_count"].sum() == (pharmacies["needle_exchange"] == "Yes").sum()
    assert wards["estates_count"].sum() == 8


@pytest.mark.parametrize("seed", [demo.DEMO_SEED, 1, 2, 3])
def test_default_cluster_settings_recover_exactly_the_planted_clusters(demo_run, seed):
    """The issue's requirement, at the defaults (queen, FDR 5 %, default permutations) and
    whatever the permutation seed: exactly the planted cluster is High-High for possession,
    exactly the planted low cluster is Low-Low, and the estate ward is a Gi* hot spot for
    trafficking."""
    from geomisuse.clusters import ClusterSettings, find_clusters

    result = find_clusters(demo_run.wards, ClusterSettings.from_options({}), seed)
    wards = demo_run.wards[["ward_code"]].join(result.columns).set_index("ward_code")
    labels = wards["possession_lisa_label"]
    assert set(labels.index[labels == "High-High"]) == set(demo.PLANTED_POSSESSION_CLUSTER)
    assert set(labels.index[labels == "Low-Low"]) == set(demo.PLANTED_LOW_CLUSTER)
    assert set(labels) == {"High-High", "Low-Low", "Not significant"}
    assert wards.loc[demo.PLANTED_ESTATE_WARD, "trafficking_gi_bin"] >= 2
