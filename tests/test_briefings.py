"""Ward briefings: figures equal the ward table, suppression, findings, links, escaping.

The cluster and gap stages (``geomisuse.clusters``, ``geomisuse.gaps``) are used when they are
installed; otherwise :func:`plant_analysis` writes their output columns from the demo's
planted structure, so that the briefings can be checked on their own.
"""

from __future__ import annotations

import copy
import importlib.util
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd
import pytest
from bs4 import BeautifulSoup

from geomisuse.demo import borough as demo
from geomisuse.publish.briefings.pages import build_data, resolve_ward, write_briefings
from geomisuse.errors import InputError
from geomisuse.publish.briefings.findings import change
from geomisuse.publish.text import count_text, is_hidden
from geomisuse.pipeline import prepare
from geomisuse.publish.tables import PublishSettings, published_monthly, published_wards
from geomisuse.config import load_study

from conftest import ROOT, demo_run_copy

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
        importlib.util.find_spec("geomisuse.gaps.stage") is not None


def demo_run(planted: bool = True):
    """The demo borough through the real loaders, with cluster and gap results: from the real
    stages when they are installed, else planted (:func:`plant_analysis`)."""
    if planted and stages_available():
        return demo_run_copy(("clusters", "gaps"))
    run = demo_run_copy()
    if planted:
        plant_analysis(run)
    return run


PLANTED = sorted(set(demo.PLANTED_POSSESSION_CLUSTER + demo.PLANTED_LOW_CLUSTER + demo.PLANTED_GAP_WARDS
                     + (demo.PLANTED_ESTATE_WARD,)))


@pytest.fixture(scope="module")
def planted():
    return demo_run(planted=True)


@pytest.fixture(scope="module")
def written(planted, tmp_path_factory):
    """The demo briefings written beside a (placeholder) map, as a run lays them out."""
    out = tmp_path_factory.mktemp("demo-out")
    (out / "map.html").write_text("<!DOCTYPE html><title>map</title>")
    settings = PublishSettings(suppress="all")  # every measure protected: the pages' suppression is exercised
    published = published_wards(planted, settings)
    paths = write_briefings(planted, published, out / "briefings", settings)
    return out / "briefings", paths, published


def soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def test_writes_the_overview_and_one_page_per_ward(written, planted):
    folder, paths, _ = written
    names = sorted(p.name for p in paths)
    assert names == sorted(["index.html"] + [f"{c}.html" for c in planted.wards["ward_code"]])
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert "Fictional demo data" in text, path.name
        assert "UNSUPPRESSED" not in text
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), f"{path.name} needs the network"


def test_figures_on_the_pages_equal_the_ward_table_for_the_planted_wards(written, planted):
    folder, _, published = written
    pub = published.set_index("ward_code")
    real = planted.wards.set_index("ward_code")
    index_rows = {tr["data-ward"]: tr for tr in soup(folder / "index.html").select("table.wards tbody tr")}
    checked = 0
    for code in PLANTED:
        page = soup(folder / f"{code}.html")
        assert real.loc[code, "ward_name"] in page.h1.get_text()
        for measure in planted.measures:
            shown = pub.loc[code, f"{measure}_count"]
            rate = pub.loc[code, f"{measure}_rate_per_1000"]
            row = page.select_one(f'table.headline tr[data-measure="{measure}"]')
            count_cell = row.select_one("td.count").get_text(strip=True)
            rate_cell = row.select_one("td.rate").get_text(strip=True)
            overview = index_rows[code]
            assert overview.select_one(f'td.count[data-measure="{measure}"]').get_text(strip=True) == count_text(shown)
            assert count_cell == (count_text(shown) or "–")
            if pd.isna(rate):
                assert rate_cell == "–"
            else:
                assert rate_cell == f"{rate:.1f}"
                # An unsuppressed figure is the real value of the ward table.
                assert int(count_cell.replace(",", "")) == int(real.loc[code, f"{measure}_count"])
                assert float(rate_cell) == pytest.approx(real.loc[code, f"{measure}_rate_per_1000"], abs=0.051)
                checked += 1
    assert checked >= 20


def test_borough_totals_equal_the_sum_of_the_ward_table(written, planted):
    folder, _, _ = written
    footer = [td.get_text(strip=True) for td in soup(folder / "index.html").select("table.wards tfoot td")]
    for k, measure in enumerate(planted.measures):
        total = int(planted.wards[f"{measure}_count"].sum())
        assert footer[1 + 3 * k] == f"{total:,}"


def test_suppressed_counts_show_as_under_five_and_have_no_rate(written, planted):
    folder, _, published = written
    real = planted.wards.set_index("ward_code")
    pub = published.set_index("ward_code")
    small = hidden_other = 0
    for code in real.index:
        page = soup(folder / f"{code}.html")
        for measure in planted.measures:
            value = real.loc[code, f"{measure}_count"]
            row = page.select_one(f'table.headline tr[data-measure="{measure}"]')
            count_cell = row.select_one("td.count").get_text(strip=True)
            if 1 <= value <= 4:
                small += 1
                # "<5", or "c" where the audit found that its "<5" would pin another count
                assert count_cell in ("<5", "c")
            if is_hidden(pub.loc[code, f"{measure}_count"]):
                hidden_other += count_cell == "c"
                assert row.select_one("td.rate").get_text(strip=True) == "–"
                assert row.select_one("td.rank").get_text(strip=True) == "–"
                # No exact change from a hidden count.
                assert not re.search(r"[+\u2212]\d", row.select_one("td.change").get_text())
    assert small > 5 and hidden_other > 0


def test_monthly_charts_never_draw_a_suppressed_month(written, planted):
    folder, _, _ = written
    monthly = published_monthly(planted, PublishSettings(suppress="all"))
    for code in PLANTED:
        page = soup(folder / f"{code}.html")
        for figure in page.select("figure.chart-box"):
            measure = figure["data-measure"]
            if figure.svg is None:  # omitted: the period count is hidden, or a total of charted parts
                continue
            bars = figure.select("rect.bar title")
            rows = monthly[monthly["ward_code"] == code].set_index("month")[f"{measure}_count"]
            shown = [t.get_text() for t in bars]
            expected = [f"{pd.Period(m, freq='M').strftime('%b %Y')}: {count_text(v)}" for m, v in rows.items()
                        if not is_hidden(v) and count_text(v) != ""]
            assert shown == expected
            markers = figure.select(".suppressed")
            assert len(markers) == sum(count_text(v) == "<5" for v in rows)
            for marker in markers:
                # a marker on the axis, never a bar with a height
                assert marker.name == "circle" and "fewer than 5" in marker.title.get_text()
                assert float(marker["r"]) < 3


def test_no_chart_for_a_ward_whose_period_count_is_hidden(written, planted):
    folder, _, published = written
    for _, row in published.iterrows():
        for measure in ("possession", "trafficking"):
            if is_hidden(row[f"{measure}_count"]):
                page = soup(folder / f"{row['ward_code']}.html")
                figure = page.select_one(f'figure.chart-box[data-measure="{measure}"]')
                assert figure.svg is None
                assert "suppressed" in figure.get_text()


def test_findings_name_the_planted_cluster_and_gap(written, planted):
    folder, _, _ = written
    page = soup(folder / "index.html")
    findings = [li.get_text(" ", strip=True) for li in page.select(".findings li")]
    key = [li.get_text(" ", strip=True) for li in page.select("ol.findings.key li")]
    names = planted.wards.set_index("ward_code")["ward_name"]
    # The overview leads with five findings, one of each kind, in the order a CDP acts on them.
    assert len(key) == 5 and key == findings[:5]
    assert key[0].startswith(f"{names[demo.PLANTED_GAP_WARDS[0]]} is outreach gap number 1")
    assert "High-High cluster" in key[1] and "hot spot" in key[2]
    assert " rose from " in key[3] and key[4].startswith("Suggested satellite site 1:")
    cluster = [f for f in findings if "High-High cluster of" in f and "possession" in f]
    assert cluster, findings
    for code in demo.PLANTED_POSSESSION_CLUSTER:
        assert names[code] in cluster[0]
    gap_name = names[demo.PLANTED_GAP_WARDS[0]]
    assert any(f.startswith(f"{gap_name} is outreach gap number 1") for f in findings), findings
    assert any(f.startswith("Suggested satellite site 1:") for f in findings)
    assert any("hot spot" in f and names[demo.PLANTED_ESTATE_WARD] in f and "trafficking" in f for f in findings)


def test_ward_page_says_cluster_status_in_words_and_gap(written, planted):
    folder, _, _ = written
    names = planted.wards.set_index("ward_code")["ward_name"]
    code = demo.PLANTED_POSSESSION_CLUSTER[0]
    words = soup(folder / f"{code}.html").select_one('ul.clusters li[data-measure="possession"]').get_text()
    others = [names[c] for c in demo.PLANTED_POSSESSION_CLUSTER if c != code]
    assert "Part of a High-High drug possession cluster with" in words
    assert all(name in words for name in others)
    gap_page = soup(folder / f"{demo.PLANTED_GAP_WARDS[0]}.html")
    assert "Outreach gap (number 1 in the borough)" in gap_page.select_one("p.gap").get_text()
    assert "satellite" in gap_page.select_one("ul.satellites").get_text()
    estate_page = soup(folder / f"{demo.PLANTED_ESTATE_WARD}.html")
    assert demo.PLANTED_HOTSPOT_ESTATE in estate_page.select_one("ul.estates").get_text()
    # Provision: distances and walking minutes, nearest first within each kind.
    rows = soup(folder / f"{demo.PLANTED_POSSESSION_CLUSTER[1]}.html").select("table.provision tbody tr")
    assert rows and all(re.search(r"\d+ (m|km)$", r.select("td")[2].get_text(strip=True)) for r in rows)


def test_every_link_resolves(written):
    folder, paths, _ = written
    check_links(folder, paths)


def check_links(folder: Path, paths: list[Path]) -> int:
    count = 0
    ids_of: dict[Path, set[str]] = {}   # each page's ids, parsed once

    def ids_in(path: Path, page: BeautifulSoup | None = None) -> set[str]:
        if path not in ids_of:
            ids_of[path] = {t["id"] for t in (page or soup(path)).find_all(id=True)}
        return ids_of[path]

    for path in paths:
        if path.suffix != ".html":
            continue
        page = soup(path)
        ids = ids_in(path.resolve(), page)
        for tag in page.find_all(["a", "link", "script", "img"]):
            target = tag.get("href") or tag.get("src")
            if not target:
                continue
            count += 1
            parts = urlsplit(target)
            assert not parts.scheme and not parts.netloc, f"{path.name}: external link {target}"
            if parts.path:
                resolved = (path.parent / unquote(parts.path)).resolve()
                assert resolved.is_file(), f"{path.name}: broken link {target}"
                if parts.fragment and resolved.suffix == ".html" and not parts.fragment.startswith("ward="):
                    assert parts.fragment in ids_in(resolved), f"{path.name}: missing anchor {target}"
            elif parts.fragment:
                assert parts.fragment in ids, f"{path.name}: missing anchor {target}"
    assert count > 0
    return count


def test_map_links_centre_the_interactive_map_on_the_ward(written, planted):
    folder, _, _ = written
    code = planted.wards["ward_code"].iloc[3]
    links = [a["href"] for a in soup(folder / f"{code}.html").find_all("a") if "map.html" in a["href"]]
    assert links and set(links) == {f"../map.html#ward={code}"}


def test_no_map_link_without_a_map(planted, tmp_path):
    settings = PublishSettings()
    code = str(planted.wards["ward_code"].iloc[0])
    paths = write_briefings(planted, published_wards(planted, settings), tmp_path / "briefings", settings,
                            wards=[code])
    assert "map.html" not in paths[1].read_text(encoding="utf-8")
    check_links(tmp_path / "briefings", paths)


def test_one_ward_only_still_writes_the_overview_with_resolving_links(planted, tmp_path):
    settings = PublishSettings()
    code = resolve_ward(planted, "saltmarsh")
    paths = write_briefings(planted, published_wards(planted, settings), tmp_path / "b", settings, wards=[code])
    assert [p.name for p in paths] == ["index.html", f"{code}.html"]
    check_links(tmp_path / "b", paths)


def test_resolve_ward_by_code_or_name(planted):
    assert resolve_ward(planted, "E05999020") == "E05999020"
    assert resolve_ward(planted, "e05999020") == "E05999020"
    assert resolve_ward(planted, "Northmere Town Centre") == "E05999020"
    assert resolve_ward(planted, " northmere  town-centre ") == "E05999020"
    with pytest.raises(InputError, match=r"^no ward 'Saltmarch'; did you mean 'Saltmarsh'"):
        resolve_ward(planted, "Saltmarch")
    with pytest.raises(InputError, match="no ward 'zzzz'"):
        resolve_ward(planted, "zzzz")


def test_change_never_gives_an_exact_difference_for_a_hidden_count():
    assert change(10, 14, 5).text == "+4 (+40%)"
    assert change(14, 10, 5).text == "\u22124 (\u221229%)"
    assert change("0", "7", 5).text == "+7 (from 0)"
    assert change("<5", 12, 5).text == "up from <5" and change("<5", 12, 5).difference is None
    assert change(12, "<5", 5).text == "down to <5"
    assert change("<5", "<5", 5).text == "<5 in both"
    assert change("c", 40, 5).text == "not shown"
    assert change("", 40, 5).text == "no earlier data"


def without_previous_period(run):
    """A copy of ``run`` as if its inputs did not cover the period before the study period."""
    other = copy.copy(run)
    other.wards = run.wards.drop(columns=[c for c in run.wards.columns if c.endswith("_previous_count")])
    return other


def test_half_period_changes_cannot_reveal_a_suppressed_month(planted):
    """Without an earlier period, halves are compared: MPS halves in full, ASB halves protected
    together with the months and totals (the LP attack on them is in test_disclosure_audit.py)."""
    settings = PublishSettings()
    # The comparisons are the same with or without the ward pages' drawings (overview_only).
    assert build_data(planted, published_wards(planted, settings), settings,
                      overview_only=True)["comparisons"]["possession"]["mode"] == "previous"
    planted = without_previous_period(planted)
    published = published_wards(planted, settings)
    data = build_data(planted, published, settings, overview_only=True)
    months = planted.months
    first, second = months[:6], months[6:]
    exact = 0
    for measure in planted.measures:
        comparison = data["comparisons"][measure]
        assert comparison["mode"] == "halves"
        real = planted.monthly.pivot(index="ward_code", columns="month", values=f"{measure}_count")
        for code, item in comparison["by_code"].items():
            shown = [item.before, item.after]
            numbers = [s for s in shown if re.fullmatch(r"[\d,]+", s)]
            if len(numbers) == 2:
                exact += 1
                assert not is_hidden(published.set_index("ward_code").loc[code, f"{measure}_count"])
                for part, value in zip((first, second), numbers):
                    assert int(value.replace(",", "")) == int(real.loc[code, part].sum())
        # What an attacker can do with the halves, months and totals together is checked by the
        # LP attack in test_disclosure_audit.py.
    assert exact > 20


def test_ranks_use_published_rates_only(written, planted):
    folder, _, published = written
    rates = pd.to_numeric(published["possession_rate_per_1000"], errors="coerce")
    shown = int(rates.notna().sum())
    assert shown < len(published)
    top = published.loc[rates.idxmax(), "ward_code"]
    rank = soup(folder / f"{top}.html").select_one('tr[data-measure="possession"] td.rank').get_text(strip=True)
    assert rank == f"1st of {shown}"


def test_pages_without_cluster_or_gap_results(tmp_path):
    run = demo_run(planted=False)
    settings = PublishSettings()
    code = str(run.wards["ward_code"].iloc[0])
    paths = write_briefings(run, published_wards(run, settings), tmp_path / "b", settings, wards=[code])
    assert [p.name for p in paths] == ["index.html", f"{code}.html"]
    index = paths[0].read_text(encoding="utf-8")
    assert "Cluster statistics were not run" in index and "gap analysis was not run" in index
    assert "gap analysis was not run" in paths[1].read_text(encoding="utf-8")


def test_unsuppressed_banner_on_every_page(planted, tmp_path):
    settings = PublishSettings(unsuppressed=True)
    paths = write_briefings(planted, published_wards(planted, settings), tmp_path / "b", settings)
    for path in paths:
        assert "UNSUPPRESSED – internal use only" in path.read_text(encoding="utf-8")
    small = planted.wards[planted.wards["trafficking_count"].between(1, 4)].iloc[0]
    cell = soup(tmp_path / "b" / f"{small['ward_code']}.html").select_one('tr[data-measure="trafficking"] td.count')
    assert cell.get_text(strip=True) == str(int(small["trafficking_count"]))


def test_pdf_is_skipped_with_a_warning_without_chromium(planted, tmp_path, monkeypatch):
    from geomisuse.publish.briefings import pages as briefings

    monkeypatch.setattr(briefings, "find_chromium", lambda: None)
    settings = PublishSettings(pdf=True)
    before = len(planted.warnings)
    paths = write_briefings(planted, published_wards(planted, settings), tmp_path / "b", settings,
                            wards=["E05999001"])
    assert not any(p.suffix == ".pdf" for p in paths)
    assert "PDF skipped" in planted.warnings[-1] and len(planted.warnings) == before + 1
    planted.warnings.pop()


MALICIOUS = ['<script>alert("ward")</script>', '"><img src=x onerror=alert(1)>', "${alert(1)} `x` {{ 7*7 }}",
             "Ward & <b>Bold</b>", "St. Mary's", "Ward\u202e6"]


def malicious_study(folder: Path) -> Path:
    """The tiny borough with hostile ward and service names."""
    from conftest import tiny_wards

    wards = tiny_wards()
    wards["WD22NM"] = MALICIOUS
    wards.to_crs("EPSG:4326").to_file(folder / "wards.geojson", driver="GeoJSON")
    x0, y0 = 530000.0, 180000.0
    (folder / "services.csv").write_text(
        "name,service_type,easting,northing\n"
        f"\"<script>alert('svc')</script>\",\"<i>hub</i>\",{x0 + 500},{y0 + 500}\n")
    (folder / "estates.csv").write_text(f"name,easting,northing\n\"<svg onload=alert(2)>\",{x0 + 1500},{y0 + 500}\n")
    (folder / "population.csv").write_text("ward_code,population\n" + "".join(
        f"E0500000{i},{1000 * i}\n" for i in range(1, 7)))
    rows = ["Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,Crime type,"
            "Last outcome category,Context"]
    import geopandas as gpd
    import shapely

    points = gpd.GeoSeries([shapely.Point(x0 + 100 + 37 * k % 2900, y0 + 100 + 53 * k % 1800) for k in range(60)],
                           crs="EPSG:27700").to_crs("EPSG:4326")
    for k, p in enumerate(points):
        month = f"2024-0{1 + k % 4}"
        kind = "Drugs" if k % 3 else "Anti-social behaviour"
        rows.append(f",{month},Force,Force,{p.x:.6f},{p.y:.6f},On or near <b>x</b>,,,{kind},,")
    (folder / "street.csv").write_text("\n".join(rows) + "\n")
    (folder / "study.toml").write_text("""
[study]
name = "<script>alert('study')</script> & Co"
borough = "</title><script>alert(3)</script>"
sources = ["<a href='http://evil'>x</a>"]
[boundaries]
path = "wards.geojson"
[layers.population]
path = "population.csv"
[layers.police_uk]
path = "street.csv"
[layers.treatment_services]
path = "services.csv"
[layers.estates]
path = "estates.csv"
""")
    return folder / "study.toml"


@pytest.fixture
def malicious(tmp_path):
    run = prepare(load_study(malicious_study(tmp_path)))
    settings = PublishSettings()
    paths = write_briefings(run, published_wards(run, settings), tmp_path / "briefings", settings)
    return run, paths


def test_malicious_names_are_escaped(malicious):
    run, paths = malicious
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert "<script>alert" not in text and "<img" not in text and "<svg onload" not in text
        assert "<b>" not in text and "<i>hub" not in text and "href='http://evil'" not in text
    index = soup(paths[0])
    names = [a.get_text() for a in index.select("table.wards tbody td:first-child a")]
    assert names == MALICIOUS
    page = soup(paths[1])
    assert page.h1.get_text().startswith(MALICIOUS[0])
    assert "{{ 7*7 }}" in soup(paths[3]).h1.get_text()  # not evaluated as a template
    # Hostile names in the SVG map and the provision table are text too.
    assert any("<script>alert('svc')</script>" in t.get_text() for t in page.select("svg.map title"))
    assert "<script>alert('svc')</script>" in page.select_one("table.provision").get_text()
    assert soup(paths[2]).select_one("ul.estates").get_text(strip=True) == "<svg onload=alert(2)>"


@pytest.mark.slow
def test_real_previous_period_is_the_comparison_when_the_inputs_cover_it(real, tmp_path):
    """Tower Hamlets, MPS file 2021-09..2023-08, period 2022-09..2023-08: the previous twelve
    months are in the file, so changes are against them, from published counts only."""
    (tmp_path / "study.toml").write_text(f"""
[study]
name = "Tower Hamlets"
period = ["2022-09", "2023-08"]
[boundaries]
path = "{real}/boundaries/ons_wards2022_tower_hamlets_bfc.gpkg"
[layers.population]
path = "{real}/population/census2021_ward2022_tower_hamlets_usual_residents.csv"
[layers.mps_ward]
path = "{real}/mps_ward/mps_ward_level_crime_2021-09_2023-08_wards2022.csv"
""")
    run = prepare(load_study(tmp_path / "study.toml"))
    settings = PublishSettings()
    published = published_wards(run, settings)
    paths = write_briefings(run, published, tmp_path / "briefings", settings)
    index = soup(paths[0])
    assert "Sep 2022 to Aug 2023 against Sep 2021 to Aug 2022" in index.get_text()
    assert "Fictional" not in index.get_text()
    pub = published.set_index("ward_code")
    real_table = run.wards.set_index("ward_code")
    exact = 0
    for path in paths[1:]:
        code = path.stem
        for measure in ("possession", "trafficking", "drug_offences"):
            cell = soup(path).select_one(f'tr[data-measure="{measure}"] td.change').get_text(" ", strip=True)
            before, after = pub.loc[code, f"{measure}_previous_count"], pub.loc[code, f"{measure}_count"]
            expected = change(before, after, 5)
            assert cell.endswith(expected.text)
            if expected.difference is not None:
                exact += 1
                diff = int(real_table.loc[code, f"{measure}_count"]) - int(real_table.loc[code, f"{measure}_previous_count"])
                assert expected.difference == diff
                assert cell.startswith(f"{count_text(before)} → {count_text(after)}")
    assert exact >= 30
    # Borough change from real totals (protected: every hidden cell has a partner in its column).
    footer = [td.get_text(strip=True) for td in index.select("table.wards tfoot td")]
    now, before = int(run.wards["possession_count"].sum()), int(run.wards["possession_previous_count"].sum())
    assert footer[1] == f"{now:,}" and footer[3] == change(before, now, 5).text
    check_links(tmp_path / "briefings", paths)
