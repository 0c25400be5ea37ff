"""All of London on the real files (../shared/data/real): coverage ("no data" is not zero),
ward vintages, small-area populations, context wards, borough overviews and source names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control

from conftest import run_cli
from test_real_data import mps_source_sums
from geomisuse.config import load_study
from geomisuse.errors import InputError
from geomisuse.pipeline import analyse, prepare

pytestmark = pytest.mark.slow

LONDON_WARDS = "boundaries/ons_wards2022_london_bsc_simplified.gpkg"
MPS_2025 = "mps_ward/mps_ward_level_crime_2023-04_2025-03_wards2022.csv"
MPS_2018_WARDS = "mps_ward/mps_ward_level_crime_2020-09_2022-08_wards2018.csv"
CENSUS_LSOA = "population/census2021_lsoa2021_london_age5.csv"
LOOKUP = "boundaries/lookup_lsoa21_ward25_lad25_bestfit_london.csv"
LOOKUP_11_21 = "boundaries/lookup_lsoa11_lsoa21_london.csv"
CITY = "E09000001"


def write_study(folder: Path, text: str) -> Path:
    path = folder / "study.toml"
    path.write_text(text)
    return path


def london_study(real: Path, folder: Path, period=("2025-01", "2025-03"), extra: str = "") -> Path:
    return write_study(folder, f"""
[study]
name = "London"
period = ["{period[0]}", "{period[1]}"]
[boundaries]
path = "{real}/{LONDON_WARDS}"
[layers.mps_ward]
path = "{real}/{MPS_2025}"
[layers.population]
path = "{real}/{CENSUS_LSOA}"
lookup = "{real}/{LOOKUP}"
{extra}
""")


def mps_sums(real: Path, months: list[str], codes) -> pd.DataFrame:
    """Independent ward sums of the raw MPS file (possession, trafficking, all drug offences)."""
    return mps_source_sums(real / MPS_2025, codes, months)


def test_london_wide_study_city_wards_read_no_data(real, tmp_path):
    run = prepare(load_study(london_study(real, tmp_path)))
    wards = run.wards.set_index("ward_code")
    assert len(wards) == 704
    city = wards.index[wards["borough_name"] == "City of London"]
    assert len(city) == 25
    met = wards.index.difference(city)
    for measure in ("possession", "trafficking", "drug_offences"):
        # The City is not in any MPS file: its wards are no data, not zero ...
        assert wards.loc[city, f"{measure}_count"].isna().all(), measure
        assert wards.loc[city, f"{measure}_rate_per_1000"].isna().all(), measure
        # ... and the 679 Met wards carry the file's own sums.
        expected = mps_sums(real, run.months, met)[measure]
        assert (wards.loc[met, f"{measure}_count"].astype(int) == expected.astype(int)).all(), measure
    assert any("no data for 25 ward(s)" in w and "Aldersgate" in w for w in run.warnings)
    sources = run.manifest["measure_sources"]["drug_offences"]
    assert sorted(sources) == ["mps_ward", "no data"]
    assert len(sources["mps_ward"]) == 679 and sorted(sources["no data"]) == sorted(city)
    # The monthly table says the same: no month of a City ward is a zero.
    monthly = run.monthly.set_index("ward_code")
    assert monthly.loc[city, "possession_count"].isna().all()
    assert monthly.loc[met, "possession_count"].notna().all()
    # Census population by LSOA through the best-fit lookup: every LSOA lands in a ward, so the
    # total is London's official Census figure; the City's LSOAs go to 5 of its 25 wards.
    assert wards["population"].sum() == 8_799_746
    assert wards.loc[city, "population"].notna().sum() == 5


def test_city_police_uk_feeds_the_city_and_only_the_city(real, tmp_path):
    study = london_study(real, tmp_path, extra=f"""
[layers.police_uk]
path = "{real}/police_uk/city_of_london_street"
""")
    run = prepare(load_study(study))
    wards = run.wards.set_index("ward_code")
    city = wards.index[wards["borough_name"] == "City of London"]
    met = wards.index.difference(city)
    # City wards: drug offences from police.uk (ward by ward precedence), equal to its points.
    assert (wards.loc[city, "drug_offences_count"] == wards.loc[city, "police_uk_drugs_count"]).all()
    assert wards.loc[city, "drug_offences_count"].sum() > 0
    assert wards.loc[city, "possession_count"].isna().all()  # police.uk does not split possession
    # Met wards: drug offences from the MPS file; ASB and the police.uk columns are no data, not 0.
    assert (wards.loc[met, "drug_offences_count"].astype(int)
            == mps_sums(real, run.months, met)["drug_offences"]).all()
    assert wards.loc[met, "asb_count"].isna().all()
    assert wards.loc[met, "police_uk_drugs_count"].isna().all()
    assert wards.loc[city, "asb_count"].notna().all()
    fed = run.manifest["measure_sources"]
    assert sorted(fed["drug_offences"]["police_uk"]) == sorted(city)
    assert len(fed["drug_offences"]["mps_ward"]) == 679
    assert sorted(fed["asb"]["no data"]) == sorted(met)
    # The City Police's few crimes recorded in Met wards are excluded, not counted anywhere.
    acc = run.layers["police_uk"].accounting()
    assert acc["rows_excluded"]["in a ward outside the police force's area"] > 0
    assert acc["rows_read"] == acc["rows_used"] + sum(acc["rows_excluded"].values()) + sum(acc["rows_rejected"].values())
    in_period = run.layers["police_uk"].table
    assert (wards["drug_offences_count"].loc[city].sum() + wards["asb_count"].loc[city].sum()
            == in_period["month"].isin(run.months).sum())


@pytest.mark.parametrize("where, matched", [('{LAD22NM = "Harrow"}', 0), ("{}", 149)], ids=["harrow", "london"])
def test_ward_file_of_another_vintage_exits_2(real, tmp_path, where, matched):
    study = write_study(tmp_path, f"""
[boundaries]
path = "{real}/{LONDON_WARDS}"
where = {where}
[layers.mps_ward]
path = "{real}/{MPS_2018_WARDS}"
""")
    with pytest.raises(InputError) as caught:
        prepare(load_study(study))
    message = str(caught.value)
    assert f"match {matched} of the study's" in message
    assert "the boundaries are 2022 wards" in message and "2020-09 to 2022-08" in message
    result = run_cli("validate", str(study))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def tower_hamlets_population(real: Path, folder: Path, population: str) -> pd.Series:
    study = write_study(folder, f"""
[boundaries]
path = "{real}/boundaries/ons_wards2022_tower_hamlets_bfc.gpkg"
[layers.population]
{population}
""")
    run = prepare(load_study(study))
    return run.wards.set_index("ward_code")["population"], run


def test_tower_hamlets_population_from_census_lsoa_file(real, tmp_path):
    by_ward = pd.read_csv(real / "population/census2021_ward2022_tower_hamlets_usual_residents.csv")
    by_ward = by_ward.set_index("GEOGRAPHY_CODE")["OBS_VALUE"]
    lookup, run = tower_hamlets_population(real, tmp_path, f'path = "{real}/{CENSUS_LSOA}"\nlookup = "{real}/{LOOKUP}"')
    # Best fit of LSOAs to wards: the borough within 0.1 % of the ward file. A whole LSOA goes to
    # one ward, so single wards differ more (up to 18 % here: README, "London and other vintages").
    assert abs(lookup.sum() / by_ward.sum() - 1) < 0.001
    deviation = abs(lookup / by_ward.reindex(lookup.index) - 1)
    assert deviation.median() < 0.05 and deviation.max() < 0.2
    # Independent sum: the raw file's 5 age bands per LSOA, LSOAs of the lookup's 20 wards.
    raw = pd.read_csv(real / CENSUS_LSOA)
    table = pd.read_csv(real / LOOKUP)
    ward_of = table.set_index("LSOA21CD")["WD25CD"]
    raw["ward"] = raw["Lower layer Super Output Areas Code"].map(ward_of)
    assert (raw[raw["ward"].isin(lookup.index)].groupby("ward")["Observation"].sum() == lookup).all()
    assert any("up to 5 per area" in w for w in run.warnings)
    acc = run.layers["population"].accounting()
    assert acc["rows_used"] == 169 * 5 and acc["rows_read"] == 24_970
    # Through the LSOA polygons (a point inside each area, not ONS's population-weighted centroid)
    # the borough's LSOAs are the same but more land in a neighbouring ward: median 7 % off the
    # ward file against the lookup's 4 % (README: prefer the lookup for populations).
    polygons, _ = tower_hamlets_population(
        real, tmp_path, f'path = "{real}/{CENSUS_LSOA}"\nareas = "{real}/boundaries/ons_lsoa2021_london_gen20.gpkg"')
    assert polygons.sum() == lookup.sum()
    assert abs(polygons / by_ward.reindex(polygons.index) - 1).median() < 0.1


def test_lsoa_2011_population_through_the_2011_to_2021_lookup(real, tmp_path):
    source = "population/ons_mye_lsoa2011_london_mid2020.csv"
    bridged, run = tower_hamlets_population(
        real, tmp_path, f'path = "{real}/{source}"\nlookup = ["{real}/{LOOKUP}", "{real}/{LOOKUP_11_21}"]')
    polygons, _ = tower_hamlets_population(
        real, tmp_path, f'path = "{real}/{source}"\nareas = "{real}/boundaries/gla_lsoa2011_london_gen_mhw.gpkg"')
    raw = pd.read_csv(real / source)
    tower_hamlets = raw.loc[raw["LAD11NM"] == "Tower Hamlets", "Persons_All-Ages"].sum()
    # Every one of the borough's 2011 LSOAs is counted once, whichever way they reach wards.
    assert bridged.sum() == polygons.sum() == tower_hamlets
    assert any("lookup_lsoa11_lsoa21_london.csv (lsoa11cd -> lsoa21cd)" in w for w in run.warnings)
    # Without the 2011 -> 2021 lookup a quarter of the codes are missing: rows are rejected, not lost.
    direct, run = tower_hamlets_population(real, tmp_path, f'path = "{real}/{source}"\nlookup = "{real}/{LOOKUP}"')
    rejected = run.layers["population"].accounting()["rows_rejected"]["small area not in the lookup"]
    assert direct.sum() < tower_hamlets and rejected > 0


def context_study(real: Path, folder: Path, context: str) -> Path:
    return write_study(folder, f"""
[study]
name = "Tower Hamlets"
period = ["2024-04", "2025-03"]
[boundaries]
path = "{real}/{LONDON_WARDS}"
where = {{LAD22NM = "Tower Hamlets"}}
{context}
[layers.mps_ward]
path = "{real}/mps_ward/mps_ward_level_crime_2024-03_2026-03_wards2022.csv"
[layers.population]
path = "{real}/{CENSUS_LSOA}"
lookup = "{real}/{LOOKUP}"
[clusters]
measures = ["possession", "drug_offences"]
""")


def test_context_wards_change_the_statistics_not_the_outputs(real, tmp_path):
    (tmp_path / "alone").mkdir()
    (tmp_path / "context").mkdir()
    alone, _ = analyse(load_study(context_study(real, tmp_path / "alone", "")), ("clusters",))
    inside, _ = analyse(load_study(context_study(real, tmp_path / "context", "context_km = 2")), ("clusters",))
    assert list(alone.wards["ward_code"]) == list(inside.wards["ward_code"])
    assert len(inside.wards) == 20
    context = inside.context_wards
    assert len(context) > 20 and not set(context["ward_code"]) & set(inside.wards["ward_code"])
    assert {c["ward_code"] for c in inside.manifest["context_wards"]} == set(context["ward_code"])
    # The ward counts are the same; the local statistics are not (neighbours across the border).
    assert (alone.wards["possession_count"].to_numpy() == inside.wards["possession_count"].to_numpy()).all()
    assert not np.allclose(alone.wards["possession_lisa_i"], inside.wards["possession_lisa_i"])
    assert not np.allclose(alone.wards["possession_gi_z"], inside.wards["possession_gi_z"])
    # The FDR family is the study's 20 wards: adjusted p-values are BH over their 20 p-values.
    p = inside.wards["possession_lisa_p"].to_numpy(float)
    assert np.allclose(inside.wards["possession_lisa_p_adjusted"], false_discovery_control(p))
    assert inside.manifest["clusters"]["context_wards"] == len(context)
    # The neighbours-only context is smaller than 2 km and also a superset of nothing in the study.
    (tmp_path / "neighbours").mkdir()
    touching = prepare(load_study(context_study(real, tmp_path / "neighbours", 'context = "neighbours"')))
    assert 0 < len(touching.context_wards) < len(context)
    # The City's wards within 2 km are context the MPS file does not cover: the warning names them
    # as context wards, and the study's own 20 wards are all covered.
    city = context.loc[context["borough_name"] == "City of London", "ward_name"]
    assert len(city) > 0
    no_data = [w for w in inside.warnings if w.startswith("possession: no data for")]
    assert len(no_data) == 1
    assert no_data[0].startswith(f"possession: no data for {len(city)} context ward(s) (")
    shown = no_data[0].split(" context ward(s) (", 1)[1].split("):", 1)[0].split(" and ")[0].split(", ")
    assert 0 < len(shown) <= 5 and set(shown) <= set(city)


def test_context_needs_a_wider_file(real, tmp_path):
    study = write_study(tmp_path, f"""
[boundaries]
path = "{real}/boundaries/ons_wards2022_tower_hamlets_bfc.gpkg"
context_km = 1
""")
    with pytest.raises(InputError, match="context needs a boundary file wider than the study"):
        prepare(load_study(study))


def test_london_run_reads_as_a_london_product(real, tmp_path):
    """The whole job, 704 wards, MPS + Census + ODS pharmacies: borough overviews and a London one."""
    study = london_study(real, tmp_path, period=("2024-04", "2025-03"), extra=f"""
[layers.pharmacies]
path = "{real}/services/nhs_ods_edispensary_london_geocoded.csv"
where = {{Status_Code = "A"}}
""")
    out = tmp_path / "out"
    result = run_cli("run", str(study), "--out", str(out), "--tiles", "none")
    assert result.returncode == 0, result.stderr
    wards = pd.read_csv(out / "wards.csv")
    assert len(wards) == 704 and wards["borough_name"].nunique() == 33
    assert wards.loc[wards["borough_name"] == "City of London", "possession_count"].isna().all()
    briefings = out / "briefings"
    boroughs = sorted(briefings.glob("borough-*.html"))
    assert len(boroughs) == 33
    index = (briefings / "index.html").read_text()
    assert index.count('href="borough-') >= 33
    camden = (briefings / "borough-camden.html").read_text()
    camden_codes = wards.loc[wards["borough_name"] == "Camden", "ward_code"]
    assert all(code in camden for code in camden_codes)
    assert "E05009317" not in camden  # a Tower Hamlets ward
    # The borough total on its page is the real sum of its wards (from the raw file).
    total = int(mps_sums(real, [str(p) for p in pd.period_range("2024-04", "2025-03", freq="M")],
                         camden_codes)["possession"].sum())
    assert f"{total:,}" in camden
    ward_page = (briefings / f"{camden_codes.iloc[0]}.html").read_text()
    assert 'href="borough-camden.html"' in ward_page
    city_page = (briefings / "E05009288.html").read_text()
    assert "no data" in city_page
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["measure_sources"]["possession"]["no data"]) == 25
    page = (out / "map.html").read_text()
    assert "All boroughs" in (Path(__file__).parents[1] / "geomisuse/publish/maps/static/map.js").read_text()
    assert '"boroughs": [{"name": "Barking and Dagenham"' in page or '"boroughs":[{"name":"Barking and Dagenham"' in page


def test_source_ward_names_are_kept_and_shown(real, tmp_path):
    study = write_study(tmp_path, f"""
[study]
name = "Tower Hamlets"
period = ["2024-04", "2025-03"]
[boundaries]
path = "{real}/boundaries/ons_wards2022_tower_hamlets_bfc.gpkg"
[layers.mps_ward]
path = "{real}/mps_ward/mps_ward_level_crime_2024-03_2026-03_wards2022.csv"
""")
    run = prepare(load_study(study))
    wards = run.wards.set_index("ward_code")
    assert wards.loc["E05009331", "ward_name"] == "Bethnal Green West"  # the boundary file's name stays
    assert wards.loc["E05009331", "ward_names_in_sources"] == "St Peter's (MPS)"
    assert wards.loc["E05009317", "ward_names_in_sources"] == "Bethnal Green (MPS)"
    assert (wards.drop(index=["E05009331", "E05009317"])["ward_names_in_sources"] == "").all()
    out = tmp_path / "out"
    result = run_cli("brief", str(study), "--ward", "E05009331", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "also: St Peter&#39;s (MPS)" in (out / "briefings" / "E05009331.html").read_text()
