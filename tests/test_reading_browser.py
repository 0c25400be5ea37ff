"""The map and briefings as a reader meets them, in headless Chromium with no network, at the
sizes people use: a laptop (1400×900), a projector (1280×720) and a phone (390×844).

Screenshots of every size are kept in ``test-artifacts/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geomisuse.config import load_study
from geomisuse.pipeline import analyse
from geomisuse.publish.tables import PublishSettings, write_outputs

from test_map import DEMO
from test_map_browser import ARTIFACTS, Page, browser  # noqa: F401  (the browser fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = {"laptop": (1400, 900), "projector": (1280, 720), "phone": (390, 844)}

#: Visible panels (title box, layer panel, key) as client rectangles.
PANELS_JS = """() => ['gm-title', 'gm-layers'].map(id => document.getElementById(id))
    .concat([document.querySelector('.gm-legend')])
    .filter(el => el && el.getClientRects().length && getComputedStyle(el).visibility !== 'hidden')
    .map(el => { const r = el.getBoundingClientRect();
                 return {id: el.id || el.className, left: r.left, top: r.top, right: r.right, bottom: r.bottom}; })"""


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory) -> Path:
    """The demo run with the default publishing settings (offline assets, briefings), no tiles
    so that no request is even tried."""
    run, _ = analyse(load_study(DEMO))
    out = tmp_path_factory.mktemp("reading") / "out"
    write_outputs(run, out, PublishSettings(tiles="none"))
    return out


@pytest.fixture(scope="module")
def demo_with_tiles(tmp_path_factory) -> Path:
    """The demo exactly as `geomisuse demo` publishes it: default tiles, which cannot load here."""
    run, _ = analyse(load_study(DEMO))
    out = tmp_path_factory.mktemp("tiles") / "out"
    write_outputs(run, out, PublishSettings(briefings=False))
    return out / "map.html"


def sized(browser, path: Path, size: str, fragment: str = "") -> Page:
    page = Page(browser, path, fragment)
    width, height = SIZES[size]
    page.page.set_viewport_size({"width": width, "height": height})
    page.page.reload()
    page.page.wait_for_function("window.geomisuse && window.geomisuse.renderedAt", timeout=20_000)
    return page


def covered_by_panel(page: Page, selector: str) -> list[str]:
    """The visible panels that overlap the element matched by ``selector``."""
    box = page.eval(f"""() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();
        return {{left: r.left, top: r.top, right: r.right, bottom: r.bottom}}; }}""")
    return [p["id"] for p in page.eval(PANELS_JS)
            if p["left"] < box["right"] and box["left"] < p["right"] and p["top"] < box["bottom"]
            and box["top"] < p["bottom"]]


def inside_viewport(page: Page, selector: str) -> bool:
    return page.eval(f"""() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();
        return r.left >= 0 && r.top >= 0 && r.right <= window.innerWidth && r.bottom <= window.innerHeight; }}""")


@pytest.mark.parametrize("size", list(SIZES))
def test_default_page_renders_offline_at_every_size(browser, demo_with_tiles, size):
    page = sized(browser, demo_with_tiles, size)
    try:
        # Everything the page needs is inline: the only requests tried are basemap tiles.
        assert page.requests and all("tile" in url for url in page.requests), page.requests[:3]
        assert [e for e in page.errors if "ERR_FAILED" not in e] == []
        assert page.eval("document.querySelectorAll('.leaflet-gm-fill-pane path.leaflet-interactive').length") == 24
        # Without tiles the page says why the basemap is blank.
        page.page.wait_for_function("!document.getElementById('gm-tiles-note').hidden", timeout=5_000)
        assert page.eval("document.getElementById('gm-demo').getClientRects().length") > 0
        # The vintage: production date, months and the boundary file, on the page.
        vintage = page.eval("document.getElementById('gm-vintage').textContent")
        assert "Produced" in vintage and "Jan 2025" in vintage and "northmere_wards" in vintage
        # Every ward is drawn clear of the title box and the layer panel at the start.
        wards = page.eval("""() => { const b = geomisuse.map.getContainer().getBoundingClientRect();
            const r = document.querySelector('.leaflet-gm-fill-pane svg g').getBBox ? null : null;
            return Array.from(document.querySelectorAll('.leaflet-gm-fill-pane path')).map(p => {
                const q = p.getBoundingClientRect(); return {left: q.left, top: q.top, right: q.right, bottom: q.bottom}; }); }""")
        title = page.eval("(() => { const r = document.getElementById('gm-title').getBoundingClientRect();"
                          " return r.bottom; })()")
        assert min(w["top"] for w in wards) >= title - 1
        ARTIFACTS.mkdir(exist_ok=True)
        page.page.screenshot(path=str(ARTIFACTS / f"map_{size}.png"))
    finally:
        page.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_ward_link_popup_is_fully_visible(browser, demo_out, size):
    northmost = "E05999001"  # Shingle End, on the northern edge, where the title box sits
    page = sized(browser, demo_out / "map.html", size, f"#ward={northmost}")
    try:
        page.page.locator(".leaflet-popup-content .gm-tip").wait_for(state="visible", timeout=5_000)
        page.page.wait_for_timeout(400)  # the popup's pan
        assert "Shingle End" in page.eval("document.querySelector('.leaflet-popup-content').textContent")
        assert covered_by_panel(page, ".leaflet-popup") == []
        assert inside_viewport(page, ".leaflet-popup-content-wrapper")
        page.page.screenshot(path=str(ARTIFACTS / f"map_popup_{size}.png"))
    finally:
        page.close()


@pytest.mark.parametrize("size", ["laptop", "projector"])
def test_hover_tooltip_is_never_under_a_panel(browser, demo_out, size):
    page = sized(browser, demo_out / "map.html", size)
    try:
        # Put each ward under the title box corner in turn and hover it there.
        for i in range(0, 24, 3):
            x, y = page.eval("""i => { const W = geomisuse.data.ward, map = geomisuse.map;
                const t = document.getElementById('gm-title').getBoundingClientRect();
                const target = L.point(t.left + 40, t.bottom + 20);
                const now = map.latLngToContainerPoint([W.lat[i], W.lon[i]]);
                map.panBy(now.subtract(target), {animate: false});
                const p = map.latLngToContainerPoint([W.lat[i], W.lon[i]]);
                const b = map.getContainer().getBoundingClientRect();
                return [b.left + p.x, b.top + p.y]; }""", i)
            page.page.mouse.move(x - 2, y - 2)
            page.page.mouse.move(x, y, steps=2)
            try:
                page.page.wait_for_function("document.querySelectorAll('.leaflet-tooltip-pane .gm-tip').length === 1",
                                            timeout=2_000)
            except Exception:
                continue  # a marker sits on this ward's label point
            assert covered_by_panel(page, ".leaflet-tooltip-pane .leaflet-tooltip") == [], i
            page.page.mouse.move(5, page.eval("window.innerHeight") - 5)
        # Once the pointer leaves, the panels come back.
        page.page.wait_for_function("document.querySelectorAll('.gm-aside').length === 0", timeout=3_000)
    finally:
        page.close()


def test_switching_ward_layers_never_shows_two(browser, demo_out):
    page = sized(browser, demo_out / "map.html", "laptop")
    try:
        values = page.eval("Array.from(document.querySelectorAll('#gm-ward-layer option')).map(o => o.value)")
        assert len(values) >= 13 and values[0] == ""
        legends = set()
        for value in values[1:] + [""] + values[1:3]:
            page.page.select_option("#gm-ward-layer", value)
            drawn = page.eval("document.querySelectorAll('.leaflet-gm-fill-pane path').length")
            assert drawn == (0 if value == "" else 24), value
            # the key's blocks of ward colourings (each block names its layer)
            ward_keys = page.eval("""() => Array.from(document.querySelectorAll('.gm-legend-block'))
                .filter(b => geomisuse.specs[b.dataset.layer].group === 'ward')
                .map(b => b.querySelector('.gm-legend-title').textContent)""")
            assert len(ward_keys) == (0 if value == "" else 1), (value, ward_keys)
            legends.update(ward_keys)
        assert len(legends) == len(values) - 1
    finally:
        page.close()


def test_search_finds_a_ward_by_name_and_code(browser, demo_out):
    page = sized(browser, demo_out / "map.html", "projector")
    try:
        page.page.fill("#gm-search-input", "quaysid")
        page.page.press("#gm-search-input", "Enter")
        page.page.wait_for_function("geomisuse.selectedWard !== undefined", timeout=5_000)
        code = page.eval("geomisuse.selectedWard")
        assert "Quayside" in page.eval("document.querySelector('.leaflet-popup-content').textContent")
        page.page.fill("#gm-search-input", "E05999001")
        page.page.press("#gm-search-input", "Enter")
        page.page.wait_for_function("geomisuse.selectedWard === 'E05999001'", timeout=5_000)
        assert code != "E05999001"
        page.page.fill("#gm-search-input", "no such ward")
        page.page.press("#gm-search-input", "Enter")
        assert page.eval("document.getElementById('gm-search-msg').textContent") == "no ward matches"
        # One search per Enter, and a ward picked from the list is found without Enter.
        page.eval("(() => { window.searches = 0; const find = geomisuse.findWard;"
                  " geomisuse.findWard = t => { window.searches += 1; return find(t); }; })()")
        page.page.fill("#gm-search-input", "quaysid")
        page.page.press("#gm-search-input", "Enter")
        assert page.eval("window.searches") == 1
        choice = page.eval("document.querySelector('#gm-ward-list option:last-child').value")
        page.page.fill("#gm-search-input", choice)
        last = choice.rsplit(" ", 1)[1]
        page.page.wait_for_function(f"geomisuse.selectedWard === '{last}'", timeout=5_000)
        assert page.eval("window.searches") == 2
    finally:
        page.close()


def test_popup_links_to_the_briefing_and_back(browser, demo_out):
    page = sized(browser, demo_out / "map.html", "laptop", "#ward=E05999002")
    try:
        link = page.page.locator(".leaflet-popup-content .gm-brief-link a")
        link.wait_for(state="visible", timeout=5_000)
        link.click()
        page.page.wait_for_load_state()
        assert page.page.url.endswith("briefings/E05999002.html")
        heading = page.eval("document.querySelector('h1, h2').textContent")
        ward_name = page.eval("document.body.textContent")
        assert "E05999002" in ward_name or heading
        back = page.page.locator("a[href^='../map.html#ward=E05999002']").first
        back.click()
        page.page.wait_for_function("window.geomisuse && geomisuse.selectedWard === 'E05999002'", timeout=10_000)
        assert page.errors == []
    finally:
        page.close()


def test_ward_names_show_only_where_they_fit(browser, demo_out):
    page = sized(browser, demo_out / "map.html", "laptop")
    try:
        wide = page.eval("document.querySelectorAll('.gm-label').length")
        page.eval("geomisuse.map.setZoom(geomisuse.map.getZoom() - 3, {animate: false})")
        page.page.wait_for_timeout(200)
        narrow = page.eval("document.querySelectorAll('.gm-label').length")
        assert 0 < wide <= 24 and narrow < wide
    finally:
        page.close()


def test_map_prints_with_its_key(browser, demo_out, tmp_path):
    page = sized(browser, demo_out / "map.html", "phone")  # the key starts folded on a phone
    try:
        assert page.eval("document.querySelector('.gm-legend-body').hidden") is True
        page.page.emulate_media(media="print")
        assert page.eval("getComputedStyle(document.querySelector('.gm-legend-body')).display") != "none"
        assert page.eval("document.querySelector('.gm-legend').getClientRects().length") > 0
        assert page.eval("getComputedStyle(document.getElementById('gm-layers')).display") == "none"
        pdf = tmp_path / "map.pdf"
        page.page.pdf(path=str(pdf), format="A4", landscape=True, print_background=True)
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 20_000
    finally:
        page.close()
