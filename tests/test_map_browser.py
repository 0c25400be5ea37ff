"""The outreach map in headless Chromium (Debian ``chromium`` driven by Playwright).

Every request other than the page's own file is refused, so these tests also show that an
offline map needs no network. A screenshot of the demo map is kept in ``test-artifacts/``.
"""

from __future__ import annotations

import html
import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from geomisuse.pipeline import STAGES, analyse
from geomisuse.publish.tables import PublishSettings, published_wards, write_outputs
from geomisuse.config import load_study

from test_map import DEMO, EVIL, ROOT, full_run, write

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists()
                                              else shutil.which("chromium"), headless=True, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


class Page:
    """A map opened in a fresh browser page, with everything it tried that it should not."""

    def __init__(self, browser, path: Path, fragment: str = ""):
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 860})
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.route("**/*", self._route)
        self.page.goto(path.resolve().as_uri() + fragment)
        self.page.wait_for_function("window.geomisuse && window.geomisuse.renderedAt", timeout=20_000)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _route(self, route) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            self.requests.append(route.request.url)
            route.abort()

    def eval(self, script: str, arg=None):
        return self.page.evaluate(script, arg)

    def layer_names(self) -> list[str]:
        """The ward colourings offered (in the select) and then the overlays (check boxes)."""
        return self.eval("Array.from(document.querySelectorAll('#gm-ward-layer option[value]:not([value=\"\"]),"
                         " #gm-layers .gm-overlay')).map(l => l.textContent.trim())")

    def open_panel(self) -> None:
        if self.eval("document.getElementById('gm-layers-body').hidden"):
            self.page.click("#gm-layers-toggle")

    def toggle(self, name: str) -> None:
        """Choose a ward colouring by name (choosing the shown one again clears it), or flip an overlay."""
        self.open_panel()
        value = self.eval("""name => {
            const o = Array.from(document.querySelectorAll('#gm-ward-layer option'))
                .find(o => o.value !== '' && o.textContent.trim().startsWith(name));
            return o ? o.value : null; }""", name)
        if value is not None:
            current = self.eval("document.getElementById('gm-ward-layer').value")
            self.page.select_option("#gm-ward-layer", "" if current == value else value)
            return
        label = self.page.locator("#gm-layers .gm-overlay", has_text=name).first
        label.locator("input").click()

    def hover_ward(self, i: int) -> str:
        """Move the mouse onto ward ``i``'s label point (or, when a site marker sits there, the
        nearest point around it where the ward polygon is on top); returns the visible tooltip's
        text."""
        x, y = self.eval("""i => {
            const W = geomisuse.data.ward, map = geomisuse.map;
            map.setView([W.lat[i], W.lon[i]], map.getZoom(), {animate: false});  // clear of the controls
            const p = map.latLngToContainerPoint([W.lat[i], W.lon[i]]);
            const box = map.getContainer().getBoundingClientRect();
            const x = box.left + p.x, y = box.top + p.y;
            for (let r = 0; r <= 40; r += 8) {
                for (let k = 0; k < (r ? 8 : 1); k++) {
                    const px = x + r * Math.cos(k * Math.PI / 4), py = y + r * Math.sin(k * Math.PI / 4);
                    const e = document.elementFromPoint(px, py);
                    if (e && e.closest('.leaflet-gm-fill-pane')) return [px, py];
                }
            }
            return [x, y];
        }""", i)
        self.page.mouse.move(200, 30)  # onto the title box, off every ward: old tooltips close
        self.page.wait_for_function("document.querySelectorAll('.leaflet-tooltip-pane .gm-tip').length === 0")
        self.page.mouse.move(x - 3, y - 3)
        self.page.mouse.move(x, y, steps=3)
        self.page.wait_for_function("document.querySelectorAll('.leaflet-tooltip-pane .gm-tip').length === 1",
                                    timeout=5_000)
        return self.page.locator(".leaflet-tooltip-pane .gm-tip").inner_text()

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def demo_map(tmp_path_factory) -> Path:
    """The demo borough run through every stage that exists, published offline without tiles."""
    stages = tuple(s for s in STAGES if importlib.util.find_spec(f"geomisuse.{s}") is not None)
    run, _ = analyse(load_study(DEMO), stages)
    out = tmp_path_factory.mktemp("demo") / "out"
    write_outputs(run, out, PublishSettings(tiles="none", offline=True))
    return out / "map.html"


@pytest.fixture(scope="module")
def rich_map(tmp_path_factory):
    """The demo borough with every layer (made-up cluster and gap results)."""
    run = full_run()
    path = tmp_path_factory.mktemp("rich") / "map.html"
    write(run, path)
    return run, path


def test_demo_map_opens_offline_without_errors(browser, demo_map):
    page = Page(browser, demo_map)
    try:
        assert page.errors == [] and page.requests == [] and page.dialogs == []
        wards = page.eval("document.querySelectorAll('.leaflet-gm-fill-pane path.leaflet-interactive').length")
        assert wards == 24
        assert page.eval("document.getElementById('gm-demo').textContent").startswith("DEMO DATA")
        assert page.eval("!!document.querySelector('.leaflet-control-scale')")
        assert page.eval("!!document.querySelector('.gm-fullscreen')")
        assert page.eval("document.querySelector('.gm-legend').textContent").count("per 1,000") == 1
        ARTIFACTS.mkdir(exist_ok=True)
        page.page.screenshot(path=str(ARTIFACTS / "demo_map.png"))
    finally:
        page.close()


def test_layer_control_lists_every_layer(browser, rich_map):
    run, path = rich_map
    page = Page(browser, path)
    try:
        names = page.layer_names()
        data = page.eval("geomisuse.data.layers")
        listed = [s["name"] for s in data if s["group"] == "ward"] + \
            [s["name"] for s in data if s["group"] != "ward"] + ["Ward names"]
        assert names == [html.unescape(n) for n in listed]
        assert len(names) == 3 * len(run.measures) + 10
        for expected in ("Outreach gap wards", "Treatment services", "Needle exchanges", "Estates",
                         "Suggested satellite sites", "Heat map: drug offences (police.uk points)"):
            assert expected in names
        assert page.errors == []
    finally:
        page.close()


def test_toggling_a_layer_changes_what_is_drawn(browser, rich_map):
    _, path = rich_map
    page = Page(browser, path)
    try:
        def count(selector: str) -> int:
            return page.eval(f"document.querySelectorAll({json.dumps(selector)}).length")

        assert count(".leaflet-gm-estates-pane path") == 0
        page.toggle("Estates")
        assert count(".leaflet-gm-estates-pane path") == 8
        page.toggle("Estates")
        assert count(".leaflet-gm-estates-pane path") == 0

        assert count(".leaflet-gm-fill-pane path") == 24
        page.toggle("Rate: drug possession")
        assert count(".leaflet-gm-fill-pane path") == 0
        page.toggle("Clusters (LISA): drug possession")
        fills = page.eval("Array.from(document.querySelectorAll('.leaflet-gm-fill-pane path'))"
                          ".map(p => p.getAttribute('fill'))")
        assert len(fills) == 24 and "#e31a1c" in fills
        assert "Local Moran clusters" in page.eval("document.querySelector('.gm-legend').textContent")

        assert count(".leaflet-gm-outline-pane path") == 0
        page.toggle("Outreach gap wards")
        assert count(".leaflet-gm-outline-pane path") == 3

        markers = count(".leaflet-marker-pane .gm-icon")
        page.toggle("Suggested satellite sites")
        assert count(".leaflet-marker-pane .gm-icon") == markers + 1
        page.toggle("Treatment services: 15-min walk")
        assert count(".leaflet-gm-catchments-pane path") == 5

        assert count("canvas.leaflet-heatmap-layer") == 0
        page.toggle("Heat map: drug offences")
        assert count("canvas.leaflet-heatmap-layer") == 1
        assert page.errors == []
    finally:
        page.close()


def test_hovering_a_ward_shows_its_figures(browser, rich_map):
    run, path = rich_map
    published = published_wards(run, PublishSettings())
    page = Page(browser, path)
    try:
        for i in (0, 4, 11):
            text = page.hover_ward(i)
            ward = published.iloc[i]
            assert ward["ward_name"] in text and ward["ward_code"] in text
            for m in run.measures:
                count = ward[f"{m}_count"]
                rate = pd.to_numeric(pd.Series([ward[f"{m}_rate_per_1000"]]), errors="coerce")[0]
                row = page.eval(f"""() => {{
                    const td = document.querySelector('.leaflet-tooltip-pane [data-field="{m}_count"]');
                    return [td.textContent, td.nextElementSibling.textContent]; }}""")
                assert row == [str(count), "" if pd.isna(rate) else f"{rate:,.1f}"]
            assert ward["possession_lisa_label"] in text
            assert "Nearest treatment service" in text
            if i == 11:
                assert "Outreach gap (rank 12)" in text
        assert page.errors == []
    finally:
        page.close()


def test_ward_link_zooms_and_opens_the_ward(browser, rich_map):
    run, path = rich_map
    code, name = run.wards["ward_code"].iloc[7], run.wards["ward_name"].iloc[7]
    page = Page(browser, path, f"#ward={code}")
    try:
        popup = page.page.locator(".leaflet-popup-content .gm-tip")
        popup.wait_for(state="visible", timeout=5_000)
        assert name in popup.inner_text()
        assert page.eval("geomisuse.selectedWard") == code
        assert page.eval("geomisuse.map.getZoom()") >= 14
        other = run.wards["ward_code"].iloc[3]
        page.eval(f"window.location.hash = 'ward={other}'")
        page.page.wait_for_function(f"geomisuse.selectedWard === {json.dumps(other)}")
        assert run.wards["ward_name"].iloc[3] in popup.inner_text()
        assert page.errors == []
    finally:
        page.close()


def test_malicious_names_run_nothing(browser, tmp_path):
    run = full_run(evil=True)
    path = tmp_path / "map.html"
    write(run, path)
    page = Page(browser, path)
    try:
        # hover two wards for real, then show every layer and every tooltip and popup it can show
        texts = [page.hover_ward(0), page.hover_ward(1)]
        assert "<script>alert(1)</script> #0" in texts[0]
        assert "<img src=x onerror=alert(1)> #1" in texts[1]
        page.page.mouse.move(200, 30)
        for box in page.page.locator("#gm-layers .gm-overlay input").all():
            if not box.is_checked():
                box.click()
        shown = page.eval("""() => {
            const out = [];
            const visit = layer => {
                if (layer.getTooltip && layer.getTooltip()) {
                    layer.openTooltip(layer.getLatLng ? layer.getLatLng() : layer.getBounds().getCenter());
                    out.push(layer.getTooltip().getElement().textContent);
                    layer.closeTooltip();
                }
                if (layer.eachLayer) { layer.eachLayer(visit); }
            };
            Object.values(geomisuse.layers).forEach(visit);
            geomisuse.data.ward.code.forEach((c, i) => { geomisuse.openWard(i);
                out.push(document.querySelector('.leaflet-popup-content').textContent); });
            return out;
        }""")
        joined = "\n".join(shown)
        for evil in EVIL:
            assert evil in joined or evil in page.eval("document.body.textContent"), evil
        title = page.eval("document.getElementById('gm-title').textContent")
        assert "<script>alert(1)</script> study" in title and "${alert(1)}" in title
        assert page.dialogs == []
        assert page.eval("window.__pwned") is None
        assert page.eval("document.querySelectorAll('img[src=\"x\"], svg[onload], [onerror]').length") == 0
        # only the JSON data block (which never runs) holds the text
        assert page.eval("Array.from(document.scripts).filter(s => s.type !== 'application/json'"
                         " && s.textContent.includes('alert(1)')).length") == 0
        assert page.errors == [] and page.requests == []
    finally:
        page.close()
