"""Ward briefings in headless Chromium: no console errors, no network, sorting, escaping, print."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from geomisuse.demo import borough as demo
from geomisuse.publish.briefings.pages import CHROMIUM_ARGS, PDF_NAME, find_chromium, write_briefings
from geomisuse.publish.text import count_text, is_hidden
from geomisuse.publish.tables import PublishSettings, published_wards
from geomisuse.pipeline import prepare
from geomisuse.config import load_study

from test_briefings import MALICIOUS, demo_run, malicious_study

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Printable height of an A4 page with the stylesheet's 10 mm margins, in CSS pixels.
A4_PRINTABLE = (297 - 20) / 25.4 * 96
A4_WIDTH = (210 - 20) / 25.4 * 96


@pytest.fixture(scope="module")
def browser():
    executable = find_chromium()
    if executable is None:
        pytest.skip("no Chromium/playwright (apt-get install chromium; pip install playwright)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser-out")
    (out / "map.html").write_text("<!DOCTYPE html><html lang='en'><head><title>map</title></head><body></body></html>")
    run = demo_run(planted=True)
    settings = PublishSettings()
    paths = write_briefings(run, published_wards(run, settings), out / "briefings", settings)
    return run, paths


def open_page(browser, path: Path, media: str = "screen", width: int = 1200):
    """Open a page offline; returns (page, problems) where problems collects console errors,
    page errors, dialogs and any request that would leave the machine."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.emulate_media(media=media)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))

    def route(r):
        if r.request.url.startswith("file:"):
            r.continue_()
        else:
            problems.append(f"network: {r.request.url}")
            r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri(), wait_until="load")
    return page, problems


def test_every_page_renders_without_console_errors_or_network(browser, site):
    _, paths = site
    for path in paths:
        page, problems = open_page(browser, path)
        assert page.title()
        assert problems == [], f"{path.name}: {problems}"
        page.close()


def test_overview_table_sorts_on_published_values(browser, site):
    run, paths = site
    page, problems = open_page(browser, paths[0])
    # Sort on the count column of a measure with secondary-suppressed ("c") cells in the
    # published table: which measure has them depends on the demo data and the suppression
    # rules, so find it. "<5" cells sort between 0 and 5, "c" cells last.
    settings = PublishSettings()
    published = published_wards(run, settings)
    measures = page.eval_on_selector_all("table.wards tbody tr:first-child td.count",
                                         "cells => cells.map(c => c.getAttribute('data-measure'))")
    small = f"<{settings.suppression_threshold}"
    hidden = {m: int(published[f"{m}_count"].map(lambda v: is_hidden(v) and count_text(v) != small).sum())
              for m in measures}
    measure = next(m for m in measures if hidden[m])
    header = page.locator("table.wards thead tr").nth(1).locator("th").nth(3 * measures.index(measure))
    assert header.text_content().strip() == "Count"
    cells = f'table.wards tbody td.count[data-measure="{measure}"]'
    header.click()
    keys = page.eval_on_selector_all(cells, "cells => cells.map(c => c.getAttribute('data-sort'))")
    numbers = [float(k) for k in keys if k]
    assert numbers == sorted(numbers) and all(not k for k in keys[len(numbers):])  # hidden ("c") last
    assert len(keys) - len(numbers) == hidden[measure] > 0
    header.click()
    keys = page.eval_on_selector_all(cells, "cells => cells.map(c => c.getAttribute('data-sort'))")
    numbers = [float(k) for k in keys if k]
    assert numbers == sorted(numbers, reverse=True)
    page.locator("table.wards thead th", has_text="Ward").click()
    names = page.eval_on_selector_all("table.wards tbody tr", "rows => rows.map(r => r.cells[0].getAttribute('data-sort'))")
    assert names == sorted(names, key=lambda n: n.lower()) or names == sorted(names)
    assert problems == []
    page.close()


def test_ward_pages_print_on_one_a4_page(browser, site):
    run, paths = site
    by_name = {p.stem: p for p in paths}
    for code in demo.PLANTED_POSSESSION_CLUSTER[:2] + demo.PLANTED_GAP_WARDS + (demo.PLANTED_ESTATE_WARD,):
        page, problems = open_page(browser, by_name[code], media="print", width=int(A4_WIDTH))
        height = page.evaluate("document.querySelector('section.page').getBoundingClientRect().height")
        assert height <= A4_PRINTABLE, f"{code}: {height:.0f}px is more than one A4 page"
        pdf = page.pdf(format="A4", prefer_css_page_size=True, print_background=True)
        assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 1, code
        page.close()


def test_pdf_of_overview_and_every_ward(site, tmp_path, browser):
    run, _ = site
    settings = PublishSettings(pdf=True)
    wards = list(demo.PLANTED_GAP_WARDS + demo.PLANTED_POSSESSION_CLUSTER[:1])
    paths = write_briefings(run, published_wards(run, settings), tmp_path / "b", settings, wards=wards)
    pdf = tmp_path / "b" / PDF_NAME
    assert paths[-1] == pdf
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page\b", data))
    # One page per ward (checked page by page above); the overview, with its ward table, the
    # emerging hot spots, the increases and the caveats, takes up to five.
    assert len(wards) + 1 <= pages <= len(wards) + 5


def test_malicious_names_show_as_text(browser, tmp_path):
    run = prepare(load_study(malicious_study(tmp_path)))
    settings = PublishSettings()
    paths = write_briefings(run, published_wards(run, settings), tmp_path / "briefings", settings)
    for path in paths:
        page, problems = open_page(browser, path)
        assert problems == [], f"{path.name}: {problems}"
        assert page.evaluate("document.querySelectorAll('img').length") == 0
        assert page.evaluate("document.querySelectorAll('script').length") == (1 if path.name == "index.html" else 0)
        page.close()
    page, _ = open_page(browser, paths[0])
    shown = page.eval_on_selector_all("table.wards tbody td:first-child a", "links => links.map(a => a.textContent)")
    assert shown == MALICIOUS
    assert "<script>alert('study')</script> & Co" in page.locator("h1").text_content()
    page.close()
