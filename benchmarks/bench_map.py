"""Benchmark of the outreach map at all-London size (not a timed test).

For each London ward boundary set in ``../shared/data/real/boundaries`` (the ONS 2022 super-
generalised wards, ~700, and the GLA 2018 full-resolution wards, 657) and 50,000 seeded
offence points, it writes

- geomisuse's map (``geomisuse.maps.write_map``, offline: Leaflet inline), and
- a plain folium map of the same data: one ``folium.GeoJson`` of the wards with a
  ``GeoJsonTooltip`` and one ``folium.GeoJson`` of the points as circle markers,

and prints the HTML size, the time Python took to write it, and the first render in headless
Chromium: milliseconds from navigation start until Leaflet has drawn every ward (measured in
the page with ``performance.now()`` when the ward paths exist, after the next animation frame;
median of ``--repeat`` loads). Every network request is refused, except that the plain folium
page's CDN Leaflet is served from the same local copy so that both pages can render.

Usage::

    PYTHONPATH=. python benchmarks/bench_map.py [--points 50000] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geomisuse import maps  # noqa: E402
from geomisuse.layers import load_boundaries  # noqa: E402
from geomisuse.layers.base import LayerResult  # noqa: E402
from geomisuse.publish.tables import PublishSettings, published_wards  # noqa: E402
from geomisuse.pipeline import StudyRun  # noqa: E402
from geomisuse.config import MEASURES  # noqa: E402
from geomisuse.config import LayerSpec, study_from_dict  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "real" / "boundaries"
CASES = {
    "ONS 2022 wards, super-generalised (704)": "ons_wards2022_london_bsc_simplified.gpkg",
    "GLA 2018 wards, full resolution (657)": "gla_london_wards_2018.gpkg",
}
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-sync"]
LISA = ["High-High", "Low-Low", "High-Low", "Low-High", "Not significant"]


def seeded_points(wards: gpd.GeoDataFrame, n: int, seed: int) -> gpd.GeoDataFrame:
    """``n`` points inside the wards: half around 300 hot spots, half spread by ward area."""
    rng = np.random.default_rng(seed)
    union = shapely.union_all(wards.geometry.to_numpy())
    shapely.prepare(union)
    minx, miny, maxx, maxy = union.bounds
    centres = rng.uniform([minx, miny], [maxx, maxy], size=(300, 2))
    out = np.empty((0, 2))
    while len(out) < n:
        k = 2 * n
        hot = centres[rng.integers(0, len(centres), k // 2)] + rng.normal(0, 350, size=(k // 2, 2))
        flat = rng.uniform([minx, miny], [maxx, maxy], size=(k - k // 2, 2))
        xy = np.vstack([hot, flat])
        xy = xy[shapely.contains_xy(union, xy[:, 0], xy[:, 1])]
        out = np.vstack([out, xy])
    out = out[rng.permutation(len(out))[:n]]
    # police.uk snaps every point to a street point: round to a 20 m grid
    out = np.round(out / 20) * 20
    points = gpd.GeoDataFrame({"month": rng.choice([f"2024-{m:02d}" for m in range(1, 13)], n),
                               "measure": np.where(rng.random(n) < 0.7, "drug_offences", "asb")},
                              geometry=shapely.points(out), crs="EPSG:27700")
    joined = gpd.sjoin(points, wards[["ward_code", "geometry"]], how="left", predicate="within")
    points["ward_code"] = joined.loc[~joined.index.duplicated(), "ward_code"].to_numpy()
    return points


def london_run(boundary_file: Path, n_points: int, seed: int = 20261122) -> StudyRun:
    """A study run of all London at benchmark size (synthetic counts, populations, services,
    cluster and gap columns; real ward boundaries)."""
    rng = np.random.default_rng(seed)
    boundaries = load_boundaries(LayerSpec("boundaries", [boundary_file]))
    wards = boundaries.table.reset_index(drop=True)
    points = seeded_points(wards, n_points, seed)
    n = len(wards)
    wards["population"] = rng.integers(6000, 18000, n).astype(float)
    drugs = points[points["measure"] == "drug_offences"].groupby("ward_code").size()
    asb = points[points["measure"] == "asb"].groupby("ward_code").size()
    counts = {"drug_offences": wards["ward_code"].map(drugs).fillna(0).astype(int),
              "asb": wards["ward_code"].map(asb).fillna(0).astype(int)}
    share = rng.uniform(0.6, 0.9, n)
    counts["possession"] = np.round(counts["drug_offences"] * share).astype(int)
    counts["trafficking"] = counts["drug_offences"] - counts["possession"]
    for m in MEASURES:
        wards[f"{m}_count"] = counts[m]
        wards[f"{m}_rate_per_1000"] = wards[f"{m}_count"] / wards["population"] * 1000
        wards[f"{m}_lisa_label"] = rng.choice(LISA, n, p=[0.1, 0.1, 0.03, 0.03, 0.74])
        wards[f"{m}_gi_bin"] = rng.choice([-3, -2, -1, 0, 1, 2, 3], n, p=[.04, .04, .04, .76, .04, .04, .04])
    services = gpd.GeoDataFrame({"name": [f"Service {i}" for i in range(120)],
                                 "service_type": rng.choice(["Treatment hub", "Recovery service",
                                                             "Young people's service"], 120)},
                                geometry=points.geometry.sample(120, random_state=1).to_numpy(), crs="EPSG:27700")
    pharmacies = gpd.GeoDataFrame({"name": [f"Pharmacy {i}" for i in range(1500)],
                                   "is_needle_exchange": rng.random(1500) < 0.3},
                                  geometry=points.geometry.sample(1500, random_state=2).to_numpy(), crs="EPSG:27700")
    wards["nearest_treatment_service_m"] = rng.uniform(100, 3000, n).round()
    wards["nearest_needle_exchange_m"] = rng.uniform(100, 2500, n).round()
    gap = np.zeros(n, dtype=bool)
    gap[rng.choice(n, 25, replace=False)] = True
    wards["is_outreach_gap"] = gap
    wards["gap_rank"] = np.arange(1, n + 1)
    wards["gap_reason"] = np.where(gap, "High-High cluster; nearest needle exchange 2.4 km", "not a gap")
    study = study_from_dict({"study": {"name": "All London (benchmark)", "borough": "London",
                                       "sources": ["Ward boundaries: " + boundary_file.name,
                                                   "Synthetic counts and points (seeded)"]},
                             "boundaries": {"path": str(boundary_file)}}, boundary_file.parent)
    layers = {"boundaries": boundaries,
              "police_uk": LayerResult("police_uk", [], points, len(points)),
              "treatment_services": LayerResult("treatment_services", [], services, len(services)),
              "pharmacies": LayerResult("pharmacies", [], pharmacies, len(pharmacies))}
    run = StudyRun(study=study, wards=wards, monthly=pd.DataFrame(), months=[f"2024-{m:02d}" for m in range(1, 13)],
                   measures=list(MEASURES), layers=layers, sources={m: "police_uk" for m in MEASURES})
    return run


def plain_folium(run: StudyRun, published: pd.DataFrame, path: Path) -> None:
    """The plain way: folium.GeoJson of the wards (with a tooltip) and of the points."""
    wards = gpd.GeoDataFrame(published, geometry="geometry", crs=run.wards.crs).to_crs("EPSG:4326")
    fields = ["ward_code", "ward_name"] + [f"{m}_count" for m in MEASURES] + [f"{m}_rate_per_1000" for m in MEASURES]
    fmap = folium.Map(tiles=None)
    folium.GeoJson(wards[fields + ["geometry"]], name="Wards",
                   tooltip=folium.GeoJsonTooltip(fields=fields)).add_to(fmap)
    points = run.layer_table("police_uk").to_crs("EPSG:4326")[["measure", "geometry"]]
    folium.GeoJson(points, name="Offences", marker=folium.CircleMarker(radius=2)).add_to(fmap)
    folium.LayerControl().add_to(fmap)
    fmap.fit_bounds([[wards.total_bounds[1], wards.total_bounds[0]], [wards.total_bounds[3], wards.total_bounds[2]]])
    fmap.save(str(path))


def first_render_ms(browser, path: Path, n_wards: int, repeat: int) -> float:
    """Median ms from navigation start until every ward path exists (plus one frame)."""
    leaflet = resources.files("xstatic.pkg.leaflet").joinpath("data")

    def route(r):
        url = r.request.url
        if url.startswith("file:"):
            r.continue_()
        elif url.endswith("/leaflet.js"):
            r.fulfill(body=leaflet.joinpath("leaflet.js").read_bytes(), content_type="application/javascript")
        elif url.endswith("/leaflet.css"):
            r.fulfill(body=leaflet.joinpath("leaflet.css").read_bytes(), content_type="text/css")
        else:
            r.abort()

    times = []
    for _ in range(repeat):
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.route("**/*", route)
        page.goto(path.as_uri(), wait_until="commit", timeout=300_000)
        page.wait_for_function(
            f"document.querySelectorAll('.leaflet-pane path.leaflet-interactive').length >= {n_wards}",
            polling="raf", timeout=300_000)
        times.append(page.evaluate("new Promise(r => requestAnimationFrame(() => r(performance.now())))"))
        context.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    parser.add_argument("--no-browser", action="store_true", help="Sizes only.")
    args = parser.parse_args()
    if not REAL.is_dir():
        sys.exit(f"{REAL} not found")
    results = []
    browser = playwright = None
    if not args.no_browser:
        from playwright.sync_api import sync_playwright
        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for label, name in CASES.items():
                run = london_run(REAL / name, args.points)
                settings = PublishSettings(tiles="none", offline=True)
                published = published_wards(run, settings)
                vertices = int(shapely.get_num_coordinates(run.wards.geometry.to_numpy()).sum())
                for kind in ("geomisuse", "plain folium.GeoJson"):
                    path = Path(tmp) / f"{name}.{kind.split()[0]}.html"
                    start = time.perf_counter()
                    if kind == "geomisuse":
                        maps.write_map(run, published, path, settings)
                    else:
                        plain_folium(run, published, path)
                    write_s = time.perf_counter() - start
                    row = {"case": label, "map": kind, "wards": len(run.wards), "input_vertices": vertices,
                           "points": args.points, "html_mb": round(path.stat().st_size / 1e6, 2),
                           "write_s": round(write_s, 1)}
                    if browser is not None:
                        row["first_render_ms"] = round(first_render_ms(browser, path, len(run.wards), args.repeat))
                    results.append(row)
                    print(json.dumps(row), flush=True)
    finally:
        if browser is not None:
            browser.close()
            playwright.stop()
    print()
    print("| wards | map | HTML | first render | written in |")
    print("|---|---|---|---|---|")
    for r in results:
        render = f"{r['first_render_ms'] / 1000:.2f} s" if "first_render_ms" in r else "–"
        print(f"| {r['case']} | {r['map']} | {r['html_mb']:.2f} MB | {render} | {r['write_s']:.1f} s |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
