"""Yearly series: the MPS LSOA annual file (``[layers.mps_lsoa]``), the ward table's yearly
table, yearly emerging hot spot steps (annual sources and multi-year police.uk), and the
outputs of a yearly-only study."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import TINY_CODES, run_cli, tiny_wards

from geomisuse.config import load_study
from geomisuse.errors import InputError
from geomisuse.pipeline import analyse, load_inputs, prepare

MPS_LSOA = "mps_ward/mps_lsoa2011_annual_drug_offences_2011_2021.csv"
LOOKUP = "boundaries/lookup_lsoa21_ward25_lad25_bestfit_london.csv"
LOOKUP_11_21 = "boundaries/lookup_lsoa11_lsoa21_london.csv"
YEARS = [str(y) for y in range(2011, 2022)]
#: London totals of the file (SOURCES.md).
LONDON_TOTALS = {"2019": 47_362, "2020": 69_360, "2021": 44_780}


def mps_lsoa_layer(real: Path, extra: str = "") -> str:
    """The ``[layers.mps_lsoa]`` table of the real file through the two ONS lookups."""
    return (f'[layers.mps_lsoa]\npath = "{real}/{MPS_LSOA}"\n'
            f'lookup = ["{real}/{LOOKUP}", "{real}/{LOOKUP_11_21}"]\n{extra}')


def tower_hamlets_yearly(real: Path, folder: Path, period: tuple[str, str] = ("2011-01", "2021-12"),
                         extra: str = "") -> Path:
    """Tower Hamlets' 20 wards (2022), Census residents, the MPS LSOA file, yearly steps."""
    path = folder / "study.toml"
    path.write_text(f"""
[study]
name = "Tower Hamlets yearly"
period = ["{period[0]}", "{period[1]}"]
[boundaries]
path = "{real}/boundaries/ons_wards2022_tower_hamlets_bfc.gpkg"
[layers.population]
path = "{real}/population/census2021_ward2022_tower_hamlets_usual_residents.csv"
{mps_lsoa_layer(real)}
[clusters]
time_step = "year"
{extra}""")
    return path


def independent_ward_totals(real: Path) -> pd.DataFrame:
    """The file summed to 2025 wards with pandas alone: each LSOA 2011 to the ward holding most of
    its LSOA 2021 parts (ties: the lower ward code), the ONS best-fit rule. Ward x year."""
    raw = pd.read_csv(real / MPS_LSOA)
    bridge = pd.read_csv(real / LOOKUP_11_21)[["lsoa11cd", "lsoa21cd"]]
    wards = pd.read_csv(real / LOOKUP)[["LSOA21CD", "WD25CD"]]
    parts = bridge.merge(wards, left_on="lsoa21cd", right_on="LSOA21CD")
    votes = parts.groupby(["lsoa11cd", "WD25CD"]).size().rename("n").reset_index()
    best = votes.sort_values(["lsoa11cd", "n", "WD25CD"], ascending=[True, False, True]).drop_duplicates("lsoa11cd")
    joined = raw.merge(best, left_on="LSOA11CD", right_on="lsoa11cd", how="left")
    return joined.groupby("WD25CD")[YEARS].sum()


@pytest.fixture(scope="module")
def th_yearly(real, tmp_path_factory):
    """Tower Hamlets yearly (:func:`tower_hamlets_yearly`) prepared once for the module; use
    ``copy.deepcopy`` to change it."""
    return prepare(load_study(tower_hamlets_yearly(real, tmp_path_factory.mktemp("th-yearly"))))


@pytest.fixture(scope="module")
def th_yearly_run(real, tmp_path_factory):
    """``geomisuse run`` of Tower Hamlets yearly with no satellite sites, run once for the
    module: (what it printed, the output folder). Read it; copy it to change it."""
    folder = tmp_path_factory.mktemp("th-yearly-run")
    study = tower_hamlets_yearly(real, folder, extra="[gaps]\nsatellites = 0\n")
    out = folder / "out"
    result = run_cli("run", str(study), "--out", str(out), "--tiles", "none")
    assert result.returncode == 0, result.stderr
    return result.stdout, out


# ------------------------------------------------------------------------------------------
# The layer on the real file


def test_london_totals_through_the_layer_equal_the_published_figures(real, tmp_path):
    study = tmp_path / "study.toml"
    study.write_text(f"""
[study]
name = "London yearly"
[boundaries]
path = "{real}/boundaries/ons_wards2022_london_bsc_simplified.gpkg"
{mps_lsoa_layer(real)}""")
    inputs = load_inputs(load_study(study))
    layer = inputs.layers["mps_lsoa"]
    # Every row accounted for: all 4,829 London LSOAs land in a study ward (London-wide boundaries).
    account = layer.accounting()
    assert account["rows_read"] == 4_829
    assert account["rows_used"] == 4_829 and account["rows_excluded"] == {} and account["rows_rejected"] == {}
    assert layer.years == YEARS and inputs.months[0] == "2011-01" and inputs.months[-1] == "2021-12"
    by_year = layer.table.groupby("year")["count"].sum()
    for year, total in LONDON_TOTALS.items():
        assert by_year[year] == total
    assert by_year.sum() == int(pd.read_csv(real / MPS_LSOA)[YEARS].to_numpy().sum())
    # The City of London is policed by the City of London Police: none of its 25 wards is covered.
    wards = inputs.wards
    city = set(wards.loc[wards["LAD22NM"] == "City of London", "ward_code"]) if "LAD22NM" in wards else \
        set(wards.loc[wards["borough_name"] == "City of London", "ward_code"])
    assert len(city) == 25 and not city & layer.wards
    assert len(layer.wards) == 704 - 25 - len(set(wards["ward_code"]) - city - layer.wards)


def test_tower_hamlets_ward_totals_equal_an_independent_aggregation(real, th_yearly):
    run = th_yearly
    expected = independent_ward_totals(real)
    yearly = run.yearly.pivot(index="ward_code", columns="year", values="drug_offences_count").astype(int)
    assert list(yearly.columns) == YEARS and len(yearly) == 20
    assert (yearly == expected.loc[yearly.index, YEARS].astype(int)).all().all()
    # The period count is the sum of the years; there are no made-up months.
    totals = run.wards.set_index("ward_code")["drug_offences_count"].astype(int)
    assert (totals == yearly.sum(axis=1)).all()
    assert run.monthly["drug_offences_count"].isna().all() and len(run.monthly) == 20 * 132
    assert run.sources == {"drug_offences": "mps_lsoa"}
    layer = run.layers["mps_lsoa"].accounting()
    assert layer["rows_read"] == 4_829 and layer["rows_used"] == 144
    assert layer["rows_excluded"] == {"ward not in the study area": 4_829 - 144}
    assert run.manifest["annual_sources"] == {"mps_lsoa": {"years": YEARS, "measures": ["drug_offences"]}}


def test_yearly_study_runs_emerging_hot_spots_end_to_end(th_yearly_run):
    printed, out = th_yearly_run
    assert "emerging hot spots (yearly, 11 steps)" in printed
    bins = pd.read_csv(out / "emerging_hotspots.csv", dtype={"step": str})
    assert sorted(bins["step"].unique()) == YEARS and len(bins) == 20 * 11
    assert bins["drug_offences_gi_z"].notna().all()  # public source: z published
    wards = pd.read_csv(out / "wards.csv")
    assert (wards["drug_offences_ehsa_steps"] == 11).all()
    assert wards["drug_offences_ehsa_category"].notna().all()
    yearly = pd.read_csv(out / "wards_yearly.csv", dtype={"year": str})
    assert list(yearly.columns) == ["ward_code", "year", "drug_offences_count"] and len(yearly) == 220
    assert (yearly.groupby("ward_code")["drug_offences_count"].sum()
            == wards.set_index("ward_code")["drug_offences_count"]).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["study"]["years"] == 11
    assert manifest["clusters"]["emerging"]["by_measure"]["drug_offences"]["steps"] == 11
    policy = manifest["suppression"]["policy"]["drug_offences"]
    assert policy["source"] == "mps_lsoa" and policy["protected"] is False  # MPS publishes them by LSOA
    assert "wards_yearly.csv" in manifest["outputs"] or any("wards_yearly" in str(o) for o in manifest["outputs"])


def test_misaligned_period_exits_2_with_one_line(real, tmp_path):
    study = tower_hamlets_yearly(real, tmp_path, period=("2019-04", "2021-03"))
    result = run_cli("validate", str(study))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert MPS_LSOA.split("/")[1] in lines[0] and "not whole years" in lines[0]
    assert 'period = ["2020-01", "2020-12"]' in lines[0]


def test_monthly_time_step_with_annual_counts_says_to_use_years(real, tmp_path):
    study = tower_hamlets_yearly(real, tmp_path)
    study.write_text(study.read_text().replace('time_step = "year"', 'time_step = "month"'))
    run, _ = analyse(load_study(study), ("clusters",))
    assert any('only annual counts' in w and 'time_step = "year"' in w for w in run.warnings)
    assert "drug_offences_ehsa_category" not in run.wards
    assert run.wards["drug_offences_lisa_label"].notna().all()  # the period statistics still run


# ------------------------------------------------------------------------------------------
# The layer on small hand-made files: accounting, coverage, precedence


def tiny_lookup(folder: Path) -> Path:
    """LSOA 2021 -> ward lookup of the tiny borough: two small areas a ward, one elsewhere."""
    rows = [(f"E0100{k:04d}", TINY_CODES[k // 2]) for k in range(12)] + [("E01009999", "E05099999")]
    path = folder / "lookup.csv"
    pd.DataFrame(rows, columns=["LSOA21CD", "WD22CD"]).to_csv(path, index=False)
    return path


def tiny_annual_file(folder: Path, skip_ward: int | None = None) -> Path:
    """An MPS-style annual file over the tiny borough: ``2013``..``2016`` columns, one row per
    small area; one area outside the study, one not in the lookup, one bad count in 2015."""
    rows = []
    for k in range(12):
        if skip_ward is not None and k // 2 == skip_ward:
            continue
        rows.append({"LSOA21CD": f"E0100{k:04d}", "LSOA21NM": f"Area {k}",
                     **{str(y): f"{(k + 1) * (y - 2012)}.0" for y in range(2013, 2017)}})
    rows.append({"LSOA21CD": "E01009999", "LSOA21NM": "Elsewhere", "2013": "1.0", "2014": "1.0", "2015": "1.0",
                 "2016": "1.0"})
    rows.append({"LSOA21CD": "E01008888", "LSOA21NM": "Unknown", "2013": "1.0", "2014": "1.0", "2015": "1.0",
                 "2016": "1.0"})
    rows[1]["2015"] = "lots"
    path = folder / "annual.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_annual_layer_accounts_for_every_row_and_covers_only_its_wards(tiny):
    tiny_lookup(tiny)
    tiny_annual_file(tiny, skip_ward=5)  # the sixth ward's areas are not in the file
    (tiny / "study.toml").write_text('[study]\nperiod = ["2014-01", "2015-12"]\n[boundaries]\npath = "wards.geojson"\n'
                                     '[layers.mps_lsoa]\npath = "annual.csv"\nlookup = "lookup.csv"\n')
    run = prepare(load_study(tiny / "study.toml"))
    layer = run.layers["mps_lsoa"]
    account = layer.accounting()
    assert account["rows_read"] == 12 and account["rows_used"] == 9
    assert account["rows_excluded"] == {"ward not in the study area": 1}
    assert account["rows_rejected"] == {"small area not in the lookup": 1, "unparseable count": 1}
    assert sorted(layer.rejected["row"]) == [3, 13]
    # Read: the period's years and the two before (the previous period of equal length).
    assert layer.years == ["2013", "2014", "2015"]
    assert layer.wards == frozenset(TINY_CODES[:5])
    wards = run.wards.set_index("ward_code")
    # Ward 1 holds areas 0 and 1 (area 1 rejected): 2014 + 2015 of area 0 = 2 + 3.
    assert wards.loc[TINY_CODES[0], "drug_offences_count"] == 5
    # Ward 2: areas 2 and 3, (3 + 4) * (2 + 3).
    assert wards.loc[TINY_CODES[1], "drug_offences_count"] == 35
    assert pd.isna(wards.loc[TINY_CODES[5], "drug_offences_count"])  # no data, not zero
    assert any("no data for 1 ward(s) (Foxtrot)" in w for w in run.warnings)
    # The previous period (2012-2013) is covered only in 2013: no previous count.
    assert wards["drug_offences_previous_count"].isna().all()
    yearly = run.yearly.set_index(["ward_code", "year"])["drug_offences_count"]
    assert yearly[(TINY_CODES[1], "2014")] == 14 and yearly[(TINY_CODES[1], "2015")] == 21
    assert sorted(run.yearly["year"].unique()) == ["2014", "2015"]


def test_mps_ward_file_takes_precedence_ward_by_ward(tiny):
    tiny_lookup(tiny)
    tiny_annual_file(tiny)
    # A ward-level MPS file listing the first two wards only, monthly 2014-2015.
    months = [f"{y}{m:02d}" for y in (2014, 2015) for m in range(1, 13)]
    rows = [{"MajorText": "Drug Offences", "MinorText": "Possession of Drugs", "WardName": name, "WardCode": code,
             "LookUp_BoroughName": "Tiny", **{m: "1" for m in months}}
            for code, name in zip(TINY_CODES[:2], ["Alpha", "Bravo"])]
    pd.DataFrame(rows).to_csv(tiny / "mps.csv", index=False)
    (tiny / "study.toml").write_text('[study]\nperiod = ["2014-01", "2015-12"]\n[boundaries]\npath = "wards.geojson"\n'
                                     '[layers.mps_ward]\npath = "mps.csv"\n'
                                     '[layers.mps_lsoa]\npath = "annual.csv"\nlookup = "lookup.csv"\n')
    run = prepare(load_study(tiny / "study.toml"))
    fed = run.manifest["measure_sources"]["drug_offences"]
    assert fed == {"mps_ward": TINY_CODES[:2], "mps_lsoa": TINY_CODES[2:]}
    wards = run.wards.set_index("ward_code")
    assert wards.loc[TINY_CODES[0], "drug_offences_count"] == 24            # the MPS ward file's months
    assert wards.loc[TINY_CODES[2], "drug_offences_count"] == (5 + 6) * (2 + 3)  # the annual file's years
    monthly = run.monthly.set_index("ward_code")["drug_offences_count"]
    assert monthly.loc[TINY_CODES[0]].notna().all() and monthly.loc[TINY_CODES[2]].isna().all()
    # The yearly table: the ward file's months summed beside the annual counts.
    yearly = run.yearly.set_index(["ward_code", "year"])["drug_offences_count"]
    assert yearly[(TINY_CODES[0], "2014")] == 12 and yearly[(TINY_CODES[2], "2014")] == 11 * 2


def test_a_period_of_no_year_in_the_file_is_refused(tiny):
    tiny_lookup(tiny)
    tiny_annual_file(tiny)
    (tiny / "study.toml").write_text('[study]\nperiod = ["2020-01", "2020-12"]\n[boundaries]\npath = "wards.geojson"\n'
                                     '[layers.mps_lsoa]\npath = "annual.csv"\nlookup = "lookup.csv"\n')
    with pytest.raises(InputError, match="no year column falls in the study period .*2013 to 2016"):
        load_inputs(load_study(tiny / "study.toml"))


# ------------------------------------------------------------------------------------------
# Multi-year police.uk: months summed into yearly steps, a partial year left out


def police_uk_years(folder: Path, first: str = "2013-01", last: str = "2023-06") -> pd.DataFrame:
    """A police.uk CSV over the tiny borough with Drugs points in every month from ``first`` to
    ``last`` (a rising number in ward 1, steady elsewhere); returns the expected counts per
    ward and month."""
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)
    centres = tiny_wards().geometry.centroid
    rng = np.random.default_rng(7)
    rows, expected = [], []
    for k, month in enumerate(pd.period_range(first, last, freq="M").astype(str)):
        for w, code in enumerate(TINY_CODES):
            n = int(rng.integers(1, 4)) + (k // 12 if w == 0 else 0)
            lon, lat = to_lonlat.transform(centres.iloc[w].x, centres.iloc[w].y)
            rows += [{"Crime ID": f"{month}-{w}-{i}", "Month": month, "Reported by": "Metropolitan Police Service",
                      "Falls within": "Metropolitan Police Service", "Longitude": f"{lon:.6f}",
                      "Latitude": f"{lat:.6f}", "Location": "On or near Test Street", "LSOA code": "",
                      "LSOA name": "", "Crime type": "Drugs", "Last outcome category": "", "Context": ""}
                     for i in range(n)]
            expected.append((code, month, n))
    pd.DataFrame(rows).to_csv(folder / "police.csv", index=False)
    return pd.DataFrame(expected, columns=["ward_code", "month", "count"])


def test_multi_year_police_uk_gives_yearly_steps_and_leaves_a_partial_year_out(tiny):
    expected = police_uk_years(tiny)
    pd.DataFrame({"ward_code": TINY_CODES, "population": 5_000}).to_csv(tiny / "population.csv", index=False)
    (tiny / "study.toml").write_text('[study]\n[boundaries]\npath = "wards.geojson"\n'
                                     '[layers.population]\npath = "population.csv"\n'
                                     '[layers.police_uk]\npath = "police.csv"\n[clusters]\ntime_step = "year"\n')
    run, _ = analyse(load_study(tiny / "study.toml"), ("clusters",))
    years = [str(y) for y in range(2013, 2023)]
    # The yearly table holds the whole years only, each the sum of its 12 months.
    assert sorted(run.yearly["year"].unique()) == years
    by_year = expected.assign(year=expected["month"].str[:4])
    by_year = by_year[by_year["year"].isin(years)].groupby(["ward_code", "year"])["count"].sum()
    ours = run.yearly.set_index(["ward_code", "year"])["drug_offences_count"].astype(int)
    assert (ours.sort_index() == by_year.sort_index()).all()
    # The period count still has every month, the partial 2023 included.
    assert run.wards["drug_offences_count"].sum() == expected["count"].sum()
    emerging = run.manifest["clusters"]["emerging"]["by_measure"]["drug_offences"]
    assert emerging["steps"] == 10 and emerging["first_step"] == "2013" and emerging["last_step"] == "2022"
    assert any("leave out the year(s) 2023, which the period only partly covers" in w for w in run.warnings)
    assert sorted(run.emerging_bins["step"].unique()) == years


def test_protected_yearly_counts_are_hidden_with_their_period_counts(tiny):
    from geomisuse.publish.published import published_wards, published_yearly, study_protection

    tiny_lookup(tiny)
    tiny_annual_file(tiny)
    (tiny / "study.toml").write_text('[study]\nperiod = ["2014-01", "2015-12"]\n[boundaries]\npath = "wards.geojson"\n'
                                     '[layers.mps_lsoa]\npath = "annual.csv"\nlookup = "lookup.csv"\npublic = false\n')
    study = load_study(tiny / "study.toml")
    run = prepare(study)
    yearly = published_yearly(run, study.publish).set_index(["ward_code", "year"])["drug_offences_count"]
    # Ward 1's years are 2 and 3 (its second area rejected): both below 5, so hidden.
    assert yearly[(TINY_CODES[0], "2014")] == "<5" and yearly[(TINY_CODES[0], "2015")] == "<5"
    # The briefings compare 2015 with 2014 (halves by whole years) and show the borough's total of
    # each: one more 2014 count is hidden, or ward 1's would be the total less the others.
    borough = study_protection(run, study.publish).borough_text[("drug_offences", "half1")]
    hidden_2014 = [c for c in TINY_CODES if not str(yearly[(c, "2014")]).isdigit()]
    assert borough.isdigit() and len(hidden_2014) >= 2
    # Every 2014 count shown is the real one (wards 2.. hold areas 2w, 2w + 1: (2w+1)*2 + (2w+2)*2).
    assert all(yearly[(c, "2014")] in (str(8 * w + 6), "c") for w, c in enumerate(TINY_CODES) if w > 0)
    wards = published_wards(run, study.publish).set_index("ward_code")["drug_offences_count"]
    assert wards[TINY_CODES[0]] == "5"  # 2 + 3: the period count stays, the years give no more away
    # Published in full by default (the Met publishes the LSOA counts).
    (tiny / "study.toml").write_text((tiny / "study.toml").read_text().replace("public = false\n", ""))
    study = load_study(tiny / "study.toml")
    yearly = published_yearly(prepare(study), study.publish).set_index(["ward_code", "year"])["drug_offences_count"]
    assert yearly[(TINY_CODES[0], "2014")] == 2


def test_a_yearly_run_republishes_its_briefings_byte_for_byte(th_yearly_run, tmp_path):
    # The yearly counts are part of the saved run: a ward page's year-by-year chart comes back.
    out = tmp_path / "out"
    shutil.copytree(th_yearly_run[1], out)
    code = pd.read_csv(out / "wards.csv")["ward_code"].iloc[0]
    page = out / "briefings" / f"{code}.html"
    before = page.read_bytes()
    assert b"<svg" in before
    page.unlink()
    result = run_cli("brief", str(out), "--ward", code)
    assert result.returncode == 0, result.stderr
    assert page.read_bytes() == before


def test_an_annual_source_is_compared_half_against_half_by_whole_years(real, th_yearly, tmp_path):
    # 2011-2021 is 11 years: 2017-2021 against 2011-2015, 2016 in neither (months would split 2016).
    from geomisuse.publish.disclosure import protect_study

    run = copy.deepcopy(th_yearly)
    halves = protect_study(run, threshold=5).halves["drug_offences"]
    first, second = halves["months"]
    assert (first[0], first[-1], second[0], second[-1]) == ("2011-01", "2015-12", "2017-01", "2021-12")
    yearly = run.yearly.pivot(index="ward_code", columns="year", values="drug_offences_count")
    expected = [[int(yearly.loc[c, YEARS[:5]].sum()), int(yearly.loc[c, YEARS[-5:]].sum())]
                for c in run.wards["ward_code"]]
    assert halves["texts"] == [[str(a), str(b)] for a, b in expected]   # a public source, in full
    assert halves["borough"] == [str(sum(e[0] for e in expected)), str(sum(e[1] for e in expected))]
    # The briefings word the halves as years.
    from geomisuse.publish.briefings.pages import build_data
    from geomisuse.publish.published import published_wards
    from geomisuse.publish.text import half_span

    settings = run.study.publish
    data = build_data(run, published_wards(run, settings), settings, overview_only=True)
    assert data["comparisons"]["drug_offences"]["label"] == "2017 to 2021 against 2011 to 2015"
    assert half_span(["2024-01", "2024-02"]) == "Jan 2024 to Feb 2024" and half_span(first[:12]) == "2011"
    # Protected, the halves are hidden with the years they add up from; never "no data" for all.
    (tmp_path / "p").mkdir()
    protected = prepare(load_study(tower_hamlets_yearly(real, tmp_path / "p", extra="[publish]\nsuppress = \"all\"\n")))
    texts = protect_study(protected, threshold=5, suppress="all").halves["drug_offences"]["texts"]
    assert len(texts) == 20 and all(t != ["", ""] for t in texts)
