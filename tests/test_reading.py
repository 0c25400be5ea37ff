"""What a reader of the map, the briefings and the tables sees, checked without a browser:
one distance for one ward and service everywhere, legend classes that do not share end
points, the page's vintage, offline by default."""

from __future__ import annotations

import html
import json
import re

import pandas as pd
import pytest

from geomisuse.publish.briefings import build_data
from geomisuse.publish.maps.page import _range_labels, class_breaks
from geomisuse.publish.tables import PublishSettings, published_wards

from conftest import demo_run_copy


@pytest.fixture(scope="module")
def demo(demo_out):
    """The demo's run and the session's ``geomisuse demo --tiles none`` folder (read only): what
    ``write_outputs(run, out, PublishSettings(tiles="none"))`` writes."""
    from geomisuse.publish.state import STATE_FILE, STATE_FOLDER

    saved = json.loads((demo_out / STATE_FOLDER / STATE_FILE).read_text(encoding="utf-8"))["settings"]
    assert saved == PublishSettings(tiles="none").model_dump(mode="json")
    return demo_run_copy(("clusters", "gaps")), demo_out


def map_data(path) -> dict:
    page = path.read_text(encoding="utf-8")
    block = re.search(r'<script type="application/json" id="geomisuse-data">(.*?)</script>', page, re.S).group(1)
    return json.loads(block)


def test_map_and_briefing_give_the_same_distance_from_the_ward_centre(demo):
    run, out = demo
    data = map_data(out / "map.html")
    nearest = {n["label"]: n["text"] for n in data["ward"]["nearest"]}
    briefing = build_data(run, published_wards(run, PublishSettings()), PublishSettings())
    checked = 0
    for i, ward in enumerate(briefing["wards"]):
        for kind, label in (("Treatment service", "Nearest treatment service"),
                            ("Needle exchange", "Nearest needle exchange")):
            rows = [p for p in ward["provision"] if p["kind"] == kind]
            if not rows:
                continue
            # the briefing lists the sites within reach nearest first (or just the nearest)
            first = rows[0]
            text = html.unescape(nearest[label][i])
            assert text.startswith(f"{first['name']}, {first['distance']} from the ward centre"), (ward["code"], text)
            checked += 1
    assert checked == 2 * len(briefing["wards"])


def test_legend_classes_do_not_share_end_points():
    values = pd.Series([0.4, 1.9, 2.7, 4.7, 4.7, 10.5, 10.5, 12.0, 19.0, 7.3])
    breaks = class_breaks(values)
    labels = _range_labels(breaks, values)
    bounds = [tuple(float(x) for x in re.findall(r"\d+(?:\.\d+)?", label)) for label in labels]
    assert len(labels) == len(breaks) + 1
    for (a, b), (c, d) in zip(bounds, bounds[1:]):
        assert b < c, labels       # the next class starts above the previous class's end
        assert c - b <= 0.1 + 1e-9, labels
    assert bounds[0][0] == 0.4 and bounds[-1][1] == 19.0


def test_map_is_offline_by_default_and_says_when_it_was_made(demo):
    run, out = demo
    page = (out / "map.html").read_text(encoding="utf-8")
    assert PublishSettings().offline is True
    assert "cdn." not in page and "<script src=" not in page
    assert re.search(r"Produced \d{1,2} [A-Z][a-z]+ 20\d\d", page)
    assert "northmere_wards.geojson" in page


def test_source_date_epoch_fixes_the_production_date(monkeypatch):
    from geomisuse.publish.text import production_date

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")  # 2026-01-01 00:00 UTC
    assert production_date() == "1 January 2026"


def test_ward_layers_are_one_choice_and_link_to_briefings(demo):
    run, out = demo
    data = map_data(out / "map.html")
    groups = {layer["group"] for layer in data["layers"]}
    assert groups == {"ward", "overlay"}
    assert all(layer["kind"] == "fill" for layer in data["layers"] if layer["group"] == "ward")
    assert sum(layer["show"] for layer in data["layers"] if layer["group"] == "ward") == 1
    pages = data["ward"]["page"]
    assert len(pages) == len(run.wards)
    for page in pages:
        assert (out / page).is_file()


def test_briefing_text_has_none_of_the_old_slips(demo):
    _, out = demo
    from bs4 import BeautifulSoup

    for page in sorted((out / "briefings").glob("*.html")):
        text = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser").get_text(" ", strip=True)
        assert " a all " not in text and " a anti-social" not in text, page.name
        assert "not a gap:" not in text.replace("Not an outreach gap:", ""), page.name
        assert "gap. not a gap" not in text.lower(), page.name
        assert not re.search(r"\([+\u2212-][\d,]+ \([+\u2212-]?\d+%\)", text), page.name  # "(−38 (−42%)"
    overview = (out / "briefings" / "index.html").read_text(encoding="utf-8")
    assert "How to read the statistics" in overview and 'href="../map.html"' in overview


def test_csv_has_whole_numbers_and_rates_to_one_decimal(demo):
    run, out = demo
    text = (out / "wards.csv").read_text(encoding="utf-8")
    table = pd.read_csv(out / "wards.csv", dtype=str, keep_default_na=False)
    assert not table["population"].str.contains(r"\.").any()
    assert table["population"].astype(int).tolist() == run.wards["population"].round().astype(int).tolist()
    for m in run.measures:
        counts = table[f"{m}_count"]
        assert counts.str.fullmatch(r"\d+|<5|c|").all(), counts.tolist()
        rates = table[f"{m}_rate_per_1000"]
        assert rates.str.fullmatch(r"\d+\.\d|\d+|").all(), rates.tolist()
        # a rate shown is the real rate rounded, and no rate stands beside a hidden count
        shown = rates != ""
        real = run.wards[f"{m}_rate_per_1000"].round(1)
        assert (rates[shown].astype(float).to_numpy() == real[shown.to_numpy()].to_numpy()).all()
        assert (rates[counts.isin(["<5", "c"])] == "").all()
    assert not re.search(r"\d\.\d{6,}", text)  # no 15-digit floats anywhere


def test_geopackage_counts_are_numbers_with_a_status(demo):
    import geopandas as gpd
    import pyogrio

    run, out = demo
    info = pyogrio.read_info(out / "wards.gpkg", layer="wards")
    types = dict(zip(info["fields"], info["dtypes"]))
    published = published_wards(run, PublishSettings())
    gpkg = gpd.read_file(out / "wards.gpkg", layer="wards")
    assert types["population"] == "int64"
    for m in run.measures:
        assert types[f"{m}_count"] == "int64" and types[f"{m}_count_status"] == "object"
        text = published[f"{m}_count"].astype(str)
        status = gpkg[f"{m}_count_status"]
        assert (status[text.isin(["<5", "c"]).to_numpy()] == text[text.isin(["<5", "c"])].to_numpy()).all()
        shown = status == "published"
        assert gpkg.loc[shown, f"{m}_count"].astype(int).tolist() == text[shown.to_numpy()].astype(int).tolist()
        assert gpkg.loc[~shown, f"{m}_count"].isna().all()
    assert gpkg.crs.to_epsg() == 27700


def test_satellites_are_ranked_and_described_by_one_metric(demo):
    run, out = demo
    sites = pd.read_csv(out / "satellites.csv")
    shares = sites["share_of_unmet_need_covered"].tolist()
    assert shares == sorted(shares, reverse=True) and all(s > 0 for s in shares)
    assert sites["cumulative_share_of_unmet_need"].tolist() == pytest.approx(list(pd.Series(shares).cumsum()), abs=1e-3)
    overview = (out / "briefings" / "index.html").read_text(encoding="utf-8")
    for _, site in sites.iterrows():
        assert f"adding {100 * site['share_of_unmet_need_covered']:.0f}% of the unmet need" in overview
    assert "of the need in gap wards" not in overview


def test_every_briefing_page_says_when_it_was_made_and_from_what(demo):
    _, out = demo
    for page in sorted((out / "briefings").glob("*.html")):
        text = page.read_text(encoding="utf-8")
        assert re.search(r"Produced \d{1,2} [A-Z][a-z]+ 20\d\d · data Jan 2025 – Dec 2025 \(12 months\) · "
                         r"ward boundaries: northmere_wards.geojson", text), page.name


def test_map_and_overview_offer_the_ward_table(demo):
    _, out = demo
    page = (out / "map.html").read_text(encoding="utf-8")
    overview = (out / "briefings" / "index.html").read_text(encoding="utf-8")
    assert 'href="wards.csv" download' in page and 'href="wards.gpkg" download' in page
    assert 'href="../wards.csv" download' in overview
    assert (out / "wards.csv").is_file() and (out / "wards.gpkg").is_file()


def test_heat_map_key_has_no_unlabelled_swatch():
    from geomisuse.publish.maps.page import build_map
    from test_map import full_run

    run = full_run()
    settings = PublishSettings(tiles="none")
    fmap = build_map(run, published_wards(run, settings), settings)
    page = fmap.get_root().render()
    heat = [layer for layer in map_data_text(page)["layers"] if layer["kind"] == "heat"]
    assert heat
    for layer in heat:
        for item in layer["legend"]["items"]:
            assert item[1].strip(), item          # every swatch says what it means
        assert any(len(item) > 2 and item[2] == "gradient" for item in layer["legend"]["items"])


def map_data_text(page: str) -> dict:
    block = re.search(r'<script type="application/json" id="geomisuse-data">(.*?)</script>', page, re.S).group(1)
    return json.loads(block)

