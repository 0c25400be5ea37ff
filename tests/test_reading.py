"""What a reader of the map, the briefings and the tables sees, checked without a browser:
one distance for one ward and service everywhere, legend classes that do not share end
points, the page's vintage, offline by default."""

from __future__ import annotations

import html
import json
import re

import pandas as pd
import pytest

from geomisuse.config import load_study
from geomisuse.pipeline import analyse
from geomisuse.publish.briefings import build_data
from geomisuse.publish.maps.page import _range_labels, class_breaks
from geomisuse.publish.tables import PublishSettings, published_wards, write_outputs

from test_map import DEMO


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    run, _ = analyse(load_study(DEMO))
    out = tmp_path_factory.mktemp("reading") / "out"
    write_outputs(run, out, PublishSettings(tiles="none"))
    return run, out


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
    from geomisuse.publish.maps.page import production_date

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
