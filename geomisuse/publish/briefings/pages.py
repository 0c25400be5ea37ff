"""Ward briefings for Combating Drugs Partnership meetings.

``briefings/index.html`` is the borough overview: the period and sources, key findings in
short sentences, a sortable table of every ward, and the caveats. ``briefings/<ward_code>.html``
is one printable A4 page per ward: headline figures with the ward's rank and change, a
monthly chart per measure, cluster status in words, provision within walking reach, estates,
outreach gap status, suggested satellite sites, a static map of the ward and its neighbours,
and a link to the interactive map. ``briefings/briefings.pdf`` (optional) holds the overview
and every ward page, printed by headless Chromium.

Disclosure control: every count, rate, statistic, gap reason and borough total on a page
comes from the run's one protection (:func:`geomisuse.publish.tables.study_protection`, built
by :mod:`geomisuse.publish.disclosure`): the published ward and monthly tables, the protected
borough totals and half-period counts. Rates and ranks use published rates only, so a
suppressed ward's position is not revealed by the others' ranks. Changes between periods are
exact only when both counts are published numbers (:func:`geomisuse.findings.change`). Every
page says which rule applied to which measure.

Comparison with the previous period: when the inputs cover the period of equal length just
before the study period (``M_previous_count`` in the ward table), that is the comparison.
Otherwise the second half of the period is compared with the first half; the half-period
counts are cells of the same protection problem as the months they add up from.

Pages need no network: CSS, JavaScript and SVG (charts, maps) are inline. Every string from
the input data is escaped by Jinja2's autoescape.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import jinja2
import numpy as np
import pandas as pd
import shapely
from markupsafe import Markup, escape

from ... import config as defaults
from ..places import ward_centres
from ..published import published_monthly, published_yearly, study_protection
from ..disclosure import ROUND5_THRESHOLD, StudyProtection, rounded_counts, suppress_value
from ...errors import InputError
from ...parallel import fork_map
from .change import GiSeries, emerging_list, emerging_settings, gi_series_by_ward, increase_tables, ward_emerging
from .findings import HEADLINE_FINDINGS, Change, change, cluster_words, key_findings, suggestions
from ..text import (count_text, distance_text, half_span, is_hidden, join_names, month_name, number,
                    span, vintage_text, walk_text)
from ...layers.base import normalise_name
from ...config import MEASURE_LABELS, MEASURES, walk_minutes
from ...vocabulary import GI_TOP_BIN, HIGH_HIGH, LISA_CLUSTERS, NOT_SIGNIFICANT, PLAIN_WORDS, gi_kind

if TYPE_CHECKING:  # publishing reads a run's results; it never drives the pipeline
    from ...pipeline import StudyRun

#: Where each measure's source is described in plain words.
SOURCE_LABELS = {
    "mps_ward": "Metropolitan Police ward-level crime data",
    "police_uk": "police.uk street-level crime data",
    "asb_warnings": "ASB warnings",
}

#: Chromium executables tried for the PDF, in order (Debian's ``chromium`` package first).
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]

#: Name of the PDF written beside the pages.
PDF_NAME = "briefings.pdf"

_SAFE_PAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_ENV: jinja2.Environment | None = None


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------

def write_briefings(run: StudyRun, published: pd.DataFrame, folder: Path, settings,
                    wards: list[str] | None = None, *, map_link: bool | None = None,
                    tables_link: bool | None = None, workers: int | None = None) -> list[Path]:
    """Write the borough overview and one page per ward into ``folder``.

    Parameters
    ----------
    run
        The analysed study (ward table with real values, monthly counts, layers, satellites).
    published
        The published ward table (:func:`geomisuse.publish.published_wards`): the only source
        of ward counts and rates on the pages.
    folder
        Output folder (``OUT/briefings``); created if needed.
    settings
        :class:`geomisuse.publish.PublishSettings` (``suppression_threshold``,
        ``unsuppressed``, ``pdf``).
    wards
        Ward codes to write pages for (default: every ward). The overview is always written.
    map_link
        Link each page to ``../map.html#ward=CODE``. Default: when ``folder/../map.html``
        exists (write the map first).
    tables_link
        Offer ``../wards.csv`` and ``../wards.gpkg`` for download on the overview. Default:
        when ``folder/../wards.csv`` exists.
    workers
        Processes that draw and write the pages (:func:`geomisuse.parallel.fork_map`;
        default: one per core). The pages are the same for any number.

    Returns
    -------
    list of Path
        The files written: ``index.html``, the ward pages, and ``briefings.pdf`` when asked for
        and a PDF engine is available (otherwise a warning is added to ``run.warnings``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = build_data(run, published, settings, page_codes=wards, workers=workers)
    codes = [w["code"] for w in data["wards"]]
    selected = codes if wards is None else [c for c in codes if c in set(wards)]
    unknown = sorted(set(wards or []) - set(codes))
    if unknown:
        raise InputError(f"no ward '{unknown[0]}' in this study")
    if map_link is None:
        map_link = (folder.parent / "map.html").exists()
    if tables_link is None:
        tables_link = (folder.parent / "wards.csv").exists()
    linked = {w["code"] for w in data["wards"] if w["code"] in selected or (folder / f"{w['page']}.html").exists()}
    env = _environment()
    written = []
    overviews = borough_overviews(run, published, settings, data, workers=workers)
    for overview in overviews:
        page = env.get_template("briefing_index.html").render(
            **overview["data"], mode="page", linked=linked, map_link=map_link, tables_link=tables_link,
            selected=selected)
        path = folder / f"{overview['page']}.html"
        path.write_text(page, encoding="utf-8")
        written.append(path)
    page = env.get_template("briefing_index.html").render(
        **data, mode="page", linked=linked, map_link=map_link, tables_link=tables_link,
            selected=selected)
    (folder / "index.html").write_text(page, encoding="utf-8")
    written.append(folder / "index.html")
    ward_template = env.get_template("briefing_ward.html")
    by_code = {w["code"]: w for w in data["wards"]}

    def write_ward_page(code: str) -> Path:
        page = ward_template.render(**data, ward=by_code[code], mode="page", linked=linked, map_link=map_link)
        path = folder / f"{by_code[code]['page']}.html"
        path.write_text(page, encoding="utf-8")
        return path

    written += fork_map(write_ward_page, selected, workers=workers)
    if getattr(settings, "pdf", False):
        try:
            pdf = write_pdf(data, selected, folder / PDF_NAME)
        except Exception as err:  # a broken browser install must not lose the run's other outputs
            pdf = None
            run.warnings.append(f"briefings: PDF failed ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                                "the HTML pages print to A4 from any browser")
        else:
            if pdf is None:
                run.warnings.append("briefings: PDF skipped, no Chromium found (install Debian's 'chromium' package "
                                    "and the 'playwright' Python package); the HTML pages print to A4 from any browser")
        if pdf is not None:
            written.append(pdf)
    return written


def borough_groups(wards: pd.DataFrame) -> dict[str, list[str]]:
    """Borough name -> its ward codes (boroughs and wards in name/code order), for a study of
    more than one borough; empty for one borough or wards without borough names."""
    boroughs = wards["borough_name"].where(wards["borough_name"].notna(), None)
    if boroughs.isna().any() or boroughs.nunique() < 2:
        return {}
    return {str(name): sorted(group["ward_code"].astype(str))
            for name, group in wards.groupby(boroughs.astype(str), sort=True)}


def borough_overviews(run: StudyRun, published: pd.DataFrame, settings, data: dict,
                      workers: int | None = None) -> list[dict]:
    """One overview per borough of a many-borough study (London): the borough's wards only,
    with its own totals, ranks and findings. Updates ``data`` (the study overview) with the
    list of boroughs and each ward's borough page; returns ``[{"name", "page", "data"}]``.

    A borough total is the real sum, shown only where it cannot reveal a hidden count (the
    borough has no hidden ward count of the measure, or at least two), like the study totals.
    """
    groups = borough_groups(run.wards)
    page_of: dict[str, str] = {}
    protection, sites = (study_protection(run, settings), _sites(run)) if groups else (None, [])

    entries = list(groups.items())

    def overview(position: int) -> dict:
        name, codes = entries[position]
        slug = re.sub(r"[^a-z0-9]+", "-", normalise_name(name)).strip("-") or f"{position + 1:02d}"
        keep = run.wards["ward_code"].isin(codes)
        satellites = run.satellites
        if satellites is not None and "ward_code" in satellites:
            satellites = satellites[satellites["ward_code"].isin(codes)]
        sub = dataclasses.replace(run, wards=run.wards[keep], satellites=satellites, warnings=[],
                                  monthly=run.monthly[run.monthly["ward_code"].isin(codes)],
                                  neighbours=run.part_neighbours(keep.to_numpy()))
        sub_data = build_data(sub, published[published["ward_code"].isin(codes)], settings, overview_only=True,
                              part=True, study_halves=data["halves_by_code"],
                              protection=protection, sites=sites)
        sub_data.update(title=name, borough=name, parent={"page": "index.html", "title": data["title"]})
        return {"name": name, "page": f"borough-{slug}", "data": sub_data, "codes": codes}

    # An overview takes about 60 ms (London): worth a worker from a few boroughs on.
    overviews = fork_map(overview, range(len(entries)), workers=workers, min_items=4)
    for o in overviews:
        for code in o.pop("codes"):
            page_of[code] = o["page"]
    if overviews:
        data["borough_pages"] = [{"name": o["name"], "page": o["page"], "wards": len(o["data"]["wards"]),
                                  "measures": o["data"]["measures"]} for o in overviews]
        data["borough"] = data["title"] if not run.study.borough else run.study.borough
        for ward in data["wards"]:
            ward["borough_page"] = page_of.get(ward["code"], "")
    return overviews


def resolve_ward(run: StudyRun, text: str) -> str:
    """The ward code for a ward code or name given on the command line.

    Codes match exactly (any case); names match after folding case, punctuation, '&'/'and'.

    Raises
    ------
    InputError
        No such ward (with the closest names), or a name shared by several wards.
    """
    wanted = str(text).strip()
    codes = run.wards["ward_code"].astype(str).tolist()
    names = run.wards["ward_name"].astype(str).tolist()
    for code in codes:
        if code.casefold() == wanted.casefold():
            return code
    folded = normalise_name(wanted)
    matches = [c for c, n in zip(codes, names) if normalise_name(n) == folded]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise InputError(f"ward name '{wanted}' is shared by {', '.join(matches)}; give the ward code")
    by_folded = {normalise_name(n): n for n in names}
    close = [by_folded[f] for f in difflib.get_close_matches(folded, list(by_folded), n=3, cutoff=0.6)]
    close += difflib.get_close_matches(wanted.upper(), codes, n=2, cutoff=0.8)
    if close:
        raise InputError(f"no ward '{wanted}'; did you mean {' or '.join(repr(c) for c in close)}?")
    raise InputError(f"no ward '{wanted}'; give a ward code (e.g. {codes[0]}) or a ward name (e.g. '{names[0]}')")


def find_chromium() -> str | None:
    """A Chromium executable for printing PDFs, or ``None`` (the playwright package is needed too)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return None
    for candidate in CHROMIUM_CANDIDATES:
        found = candidate if Path(candidate).is_file() else shutil.which(candidate)
        if found:
            return found
    return None


def write_pdf(data: dict, selected: list[str], target: Path) -> Path | None:
    """Print the overview and the selected ward pages to one A4 PDF with headless Chromium.

    Returns the PDF path, or ``None`` when no Chromium (or no playwright) is available.
    """
    executable = find_chromium()
    if executable is None:
        return None
    book = _environment().get_template("briefing_book.html").render(
        **data, mode="book", linked={w["code"] for w in data["wards"] if w["code"] in selected},
        map_link=False, tables_link=False, selected=selected)
    with tempfile.TemporaryDirectory(prefix="geomisuse-pdf-") as tmp:
        source = Path(tmp) / "book.html"
        source.write_text(book, encoding="utf-8")
        # Playwright's sync API refuses to run inside an asyncio loop (Jupyter, or another
        # Playwright session): print from a thread of its own.
        errors: list[BaseException] = []
        worker = threading.Thread(target=_print_pdf, args=(executable, source, target, errors), daemon=True)
        worker.start()
        worker.join()
        if errors:
            raise errors[0]
    return target


def _print_pdf(executable: str, source: Path, target: Path, errors: list) -> None:
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                           else route.abort())
                page.goto(source.as_uri(), wait_until="load")
                page.pdf(path=str(target), format="A4", print_background=True, prefer_css_page_size=True)
            finally:
                browser.close()
    except BaseException as err:  # re-raised in the calling thread
        errors.append(err)


# --------------------------------------------------------------------------------------------
# Assembling the figures
# --------------------------------------------------------------------------------------------

#: File stems a ward page must not take: the overview's and the PDF's, and the device names
#: Windows reserves in any folder (``con.html`` cannot be opened there).
RESERVED_PAGE_NAMES = frozenset({"index", "briefings", "book", "con", "prn", "aux", "nul", "clock$"}
                                | {f"{d}{i}" for d in ("com", "lpt") for i in range(10)})


def page_names(codes: list[str]) -> list[str]:
    """The file stem of each ward's page, unique even on case-insensitive file systems.

    A ward's page is named by its code when the code is a safe file name (letters, digits,
    ``-`` and ``_``, at most 64 characters, not a reserved name in any case, not starting
    ``borough-`` like the borough overviews, and not the same as an earlier ward's name
    ignoring case); otherwise ``ward-NNNN`` by its position,
    numbered past any code that already looks like that.
    """
    names: list[str] = []
    taken: set[str] = set()
    as_codes = {str(c).lower() for c in codes}
    for position, code in enumerate(codes):
        code = str(code)
        safe = (_SAFE_PAGE.match(code) and code.lower() not in RESERVED_PAGE_NAMES
                and not code.lower().startswith("borough-"))  # the borough overviews' names
        name = code if safe else None
        if name is None or name.lower() in taken:
            number = position + 1
            while f"ward-{number:04d}" in taken or f"ward-{number:04d}" in as_codes:
                number += len(codes)
            name = f"ward-{number:04d}"
        taken.add(name.lower())
        names.append(name)
    return names


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def build_data(run: StudyRun, published: pd.DataFrame, settings, overview_only: bool = False,
               part: bool = False, study_halves: dict | None = None,
               protection: StudyProtection | None = None, sites: list[_Site] | None = None,
               page_codes: Iterable[str] | None = None, workers: int | None = None) -> dict:
    """Everything the templates show, from published figures (see the module docstring).

    Borough-level figures come first (measure summaries, comparisons, clusters, gaps, sites),
    then one dict per ward (:func:`_ward`), then the key findings and the overview.
    ``overview_only`` leaves out what only ward pages show (static maps, monthly charts);
    ``part`` says ``run`` is one borough of a larger study, drawn as an overview only; with
    ``study_halves`` (the ``halves_by_code`` of the study's data) and ``protection`` (the
    study's :class:`StudyProtection`; default: the run's own) its pages show the study's
    protected figures, never a second, differently protected set.
    ``sites`` are the study's services and needle exchanges (:func:`_sites`), when already
    gathered for another part of the study; ``page_codes`` the wards whose pages will be
    written (default all), the only ones whose maps and charts are drawn; ``workers`` the
    processes that draw them (:func:`geomisuse.parallel.fork_map`).
    """
    b = _basis(run, published, settings, protection, part=part, charts=not overview_only)
    if study_halves is not None:
        halves = _halves_of_part(b, study_halves)
    else:
        halves = b.protection.halves
    measure_info = {m: _measure_summary(b, m) for m in b.measures}
    comparisons = {m: _comparison(b, m, halves.get(m)) for m in b.measures}
    clusters, component_of, hot_spots = _cluster_groups(b)
    gap_list = _gap_list(b.pub)
    context = _Context(measure_info=measure_info, comparisons=comparisons, component_of=component_of,
                       walk=_walk(run), sites=_sites(run) if sites is None else sites,
                       satellites=_satellites(run, b.codes, b.names),
                       estates=run.layer_table("estates"), centres=list(ward_centres(b.real.geometry)),
                       ward_pages=not overview_only,
                       outlines=(WardOutlines(b.real.geometry.to_numpy(), b.neighbours)
                                 if not overview_only else None),
                       gi_series=gi_series_by_ward(run, b.measures),
                       page_codes=frozenset(page_codes) if page_codes is not None else None)
    ward_items = fork_map(functools.partial(_ward, b, context), range(len(b.codes)),
                          workers=workers if context.ward_pages else 1)
    findings = key_findings({
        "measures": b.measures, "clusters": clusters, "hot_spots": hot_spots, "changes": _changes(b, comparisons),
        "gaps": gap_list, "satellites": context.satellites, "clusters_ran": b.clusters_ran, "gaps_ran": b.gaps_ran,
        "totals_of_parts": b.totals_of_parts})
    data = _overview(b, context, ward_items, findings, gap_list)
    data["halves_by_code"] = {m: {"months": h["months"], "texts": dict(zip(b.codes, h["texts"]))}
                              for m, h in halves.items()}
    return data


def _halves_of_part(b: _Basis, study_halves: dict) -> dict[str, dict]:
    """The study's protected half-period counts for the wards of ``b`` (a part of the study).
    A half total of the part is shown only when every count it adds up is published."""
    out = {}
    for m, study in study_halves.items():
        texts = [study["texts"][code] for code in b.codes]
        borough = []
        for k in (0, 1):
            column = [row[k] for row in texts]
            numbers = [number(v) for v in column]
            if all(v is not None for v in numbers) and numbers:
                borough.append(suppress_value(float(sum(numbers)), b.threshold))
            else:
                borough.append("")
        out[m] = {"months": study["months"], "texts": texts, "borough": borough}
    return out


@dataclass
class _Basis:
    """The real and published ward tables, aligned row for row, and what every part needs."""
    run: StudyRun
    real: pd.DataFrame          # run.wards: real values, for borough totals and cluster labels
    pub: pd.DataFrame           # the published ward table: every ward count and rate shown
    codes: list[str]
    names: list[str]
    pages: list[str]
    measures: list[str]
    sources: dict               # measure -> source key, from the manifest
    totals_of_parts: set[str]   # measures that are the sum of others shown ({"drug_offences"} or empty)
    threshold: int
    unsuppressed: bool
    population: pd.Series
    neighbours: list[list[int]]  # the run's: the cluster statistics' weights
    grids: dict[str, pd.DataFrame]  # measure -> published monthly counts, ward x month
    protection: StudyProtection     # protected borough totals and half-period counts, rules per measure
    part: bool = False              # the wards of one borough of a larger study (London)
    year_grids: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)  # published yearly counts

    @property
    def clusters_ran(self) -> bool:
        return any(f"{m}_lisa_label" in self.real for m in self.measures)

    @property
    def gaps_ran(self) -> bool:
        return "is_outreach_gap" in self.real

    def borough(self, measure: str, part: str) -> str:
        """A measure's published borough total (``part``: ``period`` or ``previous``): the
        study's protected total; for one borough of a larger study, the total of a protected
        measure is shown only when none of the ward counts it adds up is hidden (the audit did
        not see that total, so it must add nothing to what is published)."""
        column = f"{measure}_count" if part == "period" else f"{measure}_previous_count"
        if self.protection.protected(measure) and not self.unsuppressed:
            if self.part:
                hidden = column in self.pub and any(is_hidden(v) for v in self.pub[column])
                if hidden:
                    return "c"
                if self.protection.rule == "round5":
                    # Rounded ward counts beside an exact total would tell their rounding apart.
                    total = pd.Series(self.real[column], dtype="Float64").sum(min_count=1)
                    if total is pd.NA:
                        return ""
                    if 1 <= float(total) < ROUND5_THRESHOLD:
                        return f"<{ROUND5_THRESHOLD}"
                    return f"{int(rounded_counts(np.array([float(total)]))[0]):,}"
                return self.borough_total(self.real[column])
            return count_text(self.protection.borough_text.get((measure, part), ""))
        return self.borough_total(self.real[column])

    def borough_total(self, values) -> str:
        """A borough total of real counts, suppressed like a published count, and hidden
        (``c``) where exactly one of the published counts it adds up is hidden (for a part
        of a study, such as one borough of London, where that can happen)."""
        column = getattr(values, "name", None)
        if column in self.pub and sum(is_hidden(v) for v in self.pub[column]) == 1:
            return "c"
        total = pd.Series(values, dtype="Float64").sum(min_count=1)
        if total is pd.NA or (isinstance(total, float) and math.isnan(total)):
            return ""
        total = int(total)
        if not self.unsuppressed and 1 <= total < self.threshold:
            return f"<{self.threshold}"
        return f"{total:,}"


@dataclass
class _Walk:
    """Walking parameters for distances to services and satellite sites."""
    speed: float     # km/h
    detour: float    # network distance / straight-line distance
    minutes: float   # walking reach
    reach_m: float   # walking reach as a straight-line distance


@dataclass
class _Context:
    """Borough-level results the ward pages draw on."""
    measure_info: dict[str, dict]
    comparisons: dict[str, dict]
    component_of: dict[tuple[str, int], list[int]]  # (measure, ward) -> the wards of its cluster
    walk: _Walk
    sites: list[_Site]
    satellites: list[dict]
    estates: pd.DataFrame | None
    centres: list
    ward_pages: bool = True    # draw each ward's static map and charts (not needed for an overview)
    #: The wards whose pages are written (``None``: all): only they need their drawings.
    page_codes: frozenset[str] | None = None
    #: Each ward's outline simplified once for every page it appears on (:class:`WardOutlines`).
    outlines: WardOutlines | None = None
    #: The space-time Gi* bins arranged by ward (:func:`gi_series_by_ward`).
    gi_series: GiSeries | None = None

    def draws(self, code: str) -> bool:
        """Does ward ``code``'s page get its static map and charts drawn?"""
        return self.ward_pages and (self.page_codes is None or code in self.page_codes)

    @functools.cached_property
    def sites_by_kind(self) -> dict[str, tuple[list[_Site], np.ndarray]]:
        """``sites`` by kind with their points as arrays, for every ward's :func:`_provision`."""
        return _sites_by_kind(self.sites)


def _basis(run: StudyRun, published: pd.DataFrame, settings,
           protection: StudyProtection | None = None, part: bool = False, charts: bool = True) -> _Basis:
    """Align the published table to the real one and gather the study's measures and, for
    pages with ``charts``, the published monthly and yearly grids (ward x step)."""
    real = run.wards.reset_index(drop=True)
    pub = pd.DataFrame(published).reset_index(drop=True)
    if list(pub["ward_code"]) != list(real["ward_code"]):
        pub = pub.set_index("ward_code").loc[real["ward_code"]].reset_index()
    codes = real["ward_code"].astype(str).tolist()
    measures = [m for m in MEASURES if m in run.measures]
    sources = run.sources
    parts = [m for m in ("possession", "trafficking") if m in measures and sources.get(m) == "mps_ward"]
    totals_of_parts = ({"drug_offences"} if parts and "drug_offences" in measures
                       and sources.get("drug_offences") == "mps_ward" else set())
    # A part of a study (one borough of London) brings the study's protection: protecting the
    # part again would be a second, differently protected set of figures (and wasted work).
    protection = protection if protection is not None else study_protection(run, settings)
    grids: dict[str, pd.DataFrame] = {}
    year_grids: dict[str, pd.DataFrame] = {}
    if charts:
        if part:
            raise ValueError("a part of a study is drawn as an overview only (charts=False)")
        monthly_pub = published_monthly(run, settings) if len(run.monthly) else run.monthly
        grids = {m: monthly_pub.pivot(index="ward_code", columns="month", values=f"{m}_count").reindex(
                     index=codes, columns=run.months)
                 for m in measures if f"{m}_count" in monthly_pub}
        yearly_pub = published_yearly(run, settings)
        year_grids = {m: yearly_pub.pivot(index="ward_code", columns="year", values=f"{m}_count").reindex(index=codes)
                      for m in measures if f"{m}_count" in yearly_pub and len(yearly_pub)}
    return _Basis(run=run, real=real, pub=pub, codes=codes, names=real["ward_name"].astype(str).tolist(),
                  pages=page_names(list(codes)), measures=measures, sources=sources,
                  totals_of_parts=totals_of_parts, threshold=protection.threshold,
                  unsuppressed=bool(settings.unsuppressed), population=real["population"].astype("float64"),
                  neighbours=run.ward_neighbours(), grids=grids, protection=protection,
                  part=part, year_grids=year_grids)


def _walk(run: StudyRun) -> _Walk:
    """The run's walking settings (:attr:`StudyRun.walking`, which the gap stage used)."""
    walking = run.walking
    return _Walk(float(walking.walk_speed_kmh), float(walking.detour_factor), float(walking.walk_threshold_min),
                 float(walking.walk_radius_m))


def _has_previous(real: pd.DataFrame, measure: str) -> bool:
    """Whether the inputs hold the measure's counts for the previous period."""
    column = f"{measure}_previous_count"
    return column in real and real[column].notna().any()


# --------------------------------------------------------------------------------------------
# Borough-level figures
# --------------------------------------------------------------------------------------------

def _measure_summary(b: _Basis, m: str) -> dict:
    """One measure's label, source, borough count and rate, and the wards' published rates and ranks."""
    count_col = f"{m}_count"
    total_text = b.borough(m, "period")
    with_pop = b.real[count_col].notna() & (b.population > 0)
    pop = b.population[with_pop].sum()
    # From the published total: under round5 the real one would give the unrounded count back.
    shown_total = number(total_text)
    real_total = float(b.real[count_col].astype("float64").sum())
    with_pop_total = float(b.real.loc[with_pop, count_col].astype("float64").sum())
    rate = (shown_total * (with_pop_total / real_total if real_total > 0 else 1.0) / pop * defaults.RATE_PER
            if pop > 0 and shown_total is not None else None)
    rates = pd.to_numeric(b.pub[f"{m}_rate_per_1000"], errors="coerce")
    return {
        "key": m, "label": MEASURE_LABELS[m], "source": SOURCE_LABELS.get(b.sources.get(m), b.sources.get(m, "")),
        "borough_count": total_text, "borough_rate": "" if rate is None else f"{rate:.1f}",
        "ranked": int(rates.notna().sum()),
        "ranks": rates.rank(ascending=False, method="min"),
        "rates": rates,
    }


def _comparison(b: _Basis, measure: str, halves: dict | None) -> dict:
    """How each ward's count moved: against the previous period when the inputs cover it,
    else the second half of the period against the first (``halves``, from
    :attr:`StudyProtection.halves`)."""
    from ...config import previous_period

    count_col, prev_col = f"{measure}_count", f"{measure}_previous_count"
    months = b.run.months
    if _has_previous(b.real, measure) and months:
        before_months = previous_period(months)
        label = f"{span(months)} against {span(before_months)}"
        by_code = {c: change(b.pub[prev_col].iloc[i], b.pub[count_col].iloc[i], b.threshold)
                   for i, c in enumerate(b.codes)}
        borough = change(b.borough(measure, "previous"), b.borough(measure, "period"), b.threshold)
        return {"mode": "previous", "label": label, "before": span(before_months), "after": span(months),
                "by_code": by_code, "borough": borough, "note": ""}
    if halves is None:
        return {"mode": "none", "label": "", "before": "", "after": "", "by_code": {},
                "borough": Change("", "", "no earlier data"),
                "note": "No earlier period in the data, so no changes are shown."}
    first, second = (half_span(part) for part in halves["months"])
    texts = halves["texts"]
    by_code = {c: change(texts[i][0], texts[i][1], b.threshold) for i, c in enumerate(b.codes)}
    borough = change(*halves["borough"], b.threshold)
    return {"mode": "halves", "label": f"{second} against {first}", "before": first, "after": second,
            "by_code": by_code, "borough": borough,
            "note": (f"No earlier period in the data: changes compare the second half of the period "
                     f"({second}) with the first ({first}). Half-period counts are protected "
                     "together with the months (or years) they add up from.")}


def _cluster_groups(b: _Basis) -> tuple[dict[str, list[dict]], dict[tuple[str, int], list[int]], dict[str, list[str]]]:
    """Per measure: the LISA clusters as connected groups of wards (High-High first, larger
    and more significant first), each ward's group, and the Gi* hot-spot ward names."""
    clusters: dict[str, list[dict]] = {}
    component_of: dict[tuple[str, int], list[int]] = {}
    hot_spots: dict[str, list[str]] = {}
    for m in b.measures:
        label_col = f"{m}_lisa_label"
        if label_col in b.real:
            labels = b.real[label_col].astype(object).where(b.real[label_col].notna(), None).tolist()
            p_values = pd.to_numeric(b.real[f"{m}_lisa_p"], errors="coerce") if f"{m}_lisa_p" in b.real else None
            found = []
            for label in LISA_CLUSTERS:
                for comp in _components([i for i, lab in enumerate(labels) if lab == label], b.neighbours):
                    for i in comp:
                        component_of[(m, i)] = comp
                    p_min = float(p_values.iloc[comp].min()) if p_values is not None else float("nan")
                    found.append({"label": label, "codes": [b.codes[i] for i in comp],
                                  "names": [b.names[i] for i in comp], "p": p_min if not math.isnan(p_min) else 1.0})
            found.sort(key=lambda c: (c["label"] != HIGH_HIGH, -len(c["codes"]), c["p"]))
            clusters[m] = found
        gi_col = f"{m}_gi_bin"
        if gi_col in b.real:
            bins = pd.to_numeric(b.real[gi_col], errors="coerce")
            # Wards without data (no population, outside a source's coverage) have no bin.
            hot_spots[m] = [b.names[i] for i in np.flatnonzero((bins >= GI_TOP_BIN).to_numpy(dtype=bool, na_value=False))]
    return clusters, component_of, hot_spots


def _gap_list(real: pd.DataFrame) -> list[dict]:
    """The outreach gap wards, in gap rank order (empty when the gap stage did not run)."""
    if "is_outreach_gap" not in real:
        return []
    flagged = real[real["is_outreach_gap"].fillna(False).astype(bool)]
    if "gap_rank" in real:
        flagged = flagged.assign(_r=pd.to_numeric(flagged["gap_rank"], errors="coerce")).sort_values(
            "_r", kind="stable")
    return [{"code": row["ward_code"], "name": row["ward_name"], "rank": _int_or(row.get("gap_rank")),
             "reason": _text(row.get("gap_reason"))} for _, row in flagged.iterrows()]


def _changes(b: _Basis, comparisons: dict[str, dict]) -> dict[str, dict]:
    """The comparisons in the form :func:`geomisuse.findings.key_findings` reads: (ward name, change) pairs."""
    return {m: {"mode": c["mode"], "label": c["label"], "borough": c["borough"],
                "wards": [(name, c["by_code"][code]) for code, name in zip(b.codes, b.names) if code in c["by_code"]]}
            for m, c in comparisons.items()}


def _overview(b: _Basis, context: _Context, ward_items: list[dict], findings: list, gap_list: list[dict]) -> dict:
    """The top-level template data: study, period, sources, measures, wards and findings."""
    run, study, real, walk = b.run, b.run.study, b.real, context.walk
    comparisons = context.comparisons
    return {
        "title": study.name, "borough": study.borough or (real["borough_name"].dropna().astype(str).iloc[0]
                                                         if real["borough_name"].notna().any() else ""),
        "demo": bool(study.demo), "unsuppressed": b.unsuppressed, "threshold": b.threshold,
        "disclosure_rules": [rule[0].upper() + rule[1:] for rule in b.protection.rules_text()],
        "rounded": b.protection.rule == "round5",
        "period": span(run.months, short=False) if run.months else "no months in the data",
        "months": len(run.months), "sources": list(study.sources), "vintage": vintage_text(run),
        "input_sources": [f"{MEASURE_LABELS[m].capitalize()}: {context.measure_info[m]['source']}" for m in b.measures],
        "measures": [context.measure_info[m] for m in b.measures], "comparisons": comparisons,
        "comparison_notes": sorted({c["note"] for c in comparisons.values() if c["note"]}),
        "change_labels": "; ".join(dict.fromkeys(c["label"] or "no earlier data" for c in comparisons.values())),
        "wards": ward_items, "findings": findings, "clusters_ran": b.clusters_ran, "gaps_ran": b.gaps_ran,
        "gap_list": gap_list, "satellites": context.satellites, "police_uk": "police_uk" in run.layers,
        "emerging": emerging_list(real, b.measures, b.pages), "emerging_settings": emerging_settings(run),
        "increases": increase_tables(b.pub, b.measures, b.pages, b.totals_of_parts),
        "population_source": "population" in run.layers,
        # A many-borough study adds its boroughs (borough_overviews); a borough's page its parent.
        "borough_pages": [], "parent": None,
        "walk": {"speed": f"{walk.speed:g}", "detour": f"{walk.detour:g}", "minutes": f"{walk.minutes:g}",
                 "reach": distance_text(walk.reach_m)},
    }


# --------------------------------------------------------------------------------------------
# One ward's page
# --------------------------------------------------------------------------------------------

def _ward(b: _Basis, context: _Context, i: int) -> dict:
    """Everything one ward's page (and its row in the overview table) shows."""
    code, name, row = b.codes[i], b.names[i], b.real.iloc[i]
    figures, rises = _ward_figures(b, context, i)
    cluster_items = _ward_clusters(b, context.component_of, i)
    gap = _ward_gap(b.pub.iloc[i], context.walk) if b.gaps_ran else None
    centre, walk = context.centres[i], context.walk
    provision, within = _provision(context.sites_by_kind, centre, walk.reach_m, walk.speed, walk.detour)
    here = [s for s in context.satellites if s["ward_code"] == code]
    near = [s for s in context.satellites if s["ward_code"] != code and s["point"] is not None
            and s["point"].distance(centre) <= walk.reach_m]
    estates = _ward_estates(context.estates, code)
    population = b.population.iloc[i]
    ward = {
        "code": code, "name": name, "page": b.pages[i], "index": i,
        "borough": _text(row.get("borough_name")) or (b.run.study.borough or ""),
        "population": "" if math.isnan(population) else f"{int(population):,}",
        "population_sort": "" if math.isnan(population) else f"{population:.0f}",
        "area": f"{float(row['area_km2']):.2f}" if number(row.get("area_km2")) is not None else "",
        "figures": figures, "clusters": cluster_items, "cluster_summary": _cluster_summary(cluster_items),
        "emerging": ward_emerging(b.run, b.real, b.measures, i, context.gi_series, charts=context.draws(code)),
        "gap": gap, "provision": provision, "within_reach": within,
        "estates": estates, "satellites_here": here,
        "satellites_near": [dict(s, distance=f"{distance_text(s['point'].distance(centre))} from the ward centre")
                            for s in near],
        "neighbours": [b.names[k] for k in b.neighbours[i]],
        "map": (ward_map_svg(b.real, i, b.neighbours[i], context.sites, context.estates, context.satellites, f"m{i}",
                             outlines=context.outlines) if context.draws(code) else ""),
        "borough_page": "",
        "names_in_sources": _names_in_sources(row),
        "prev": (b.codes[i - 1], b.pages[i - 1], b.names[i - 1]) if i > 0 else None,
        "next": (b.codes[i + 1], b.pages[i + 1], b.names[i + 1]) if i + 1 < len(b.codes) else None,
    }
    ward["suggestions"] = suggestions({
        "name": name, "clusters": [c for c in cluster_items if c["label"]], "gap": gap,
        "satellites_here": [s["name"] for s in here], "satellites_near": [s["name"] for s in near],
        "rises": rises, "estates": [e["name"] for e in estates], "within_reach": within})
    return ward


def _names_in_sources(row: pd.Series) -> str:
    """The other names sources give a ward, e.g. "St Peter's (MPS)" (empty when none)."""
    text = row.get("ward_names_in_sources")
    return text if isinstance(text, str) else ""


def _ward_figures(b: _Basis, context: _Context, i: int) -> tuple[list[dict], list[str]]:
    """A ward's headline figures per measure (published count, rate, rank, change, monthly
    chart), and the labels of measures that rose sharply (25 % and at least the threshold)."""
    code, prow = b.codes[i], b.pub.iloc[i]
    figures, rises = [], []
    for j, m in enumerate(b.measures):
        info = context.measure_info[m]
        shown = prow[f"{m}_count"]
        rate = number(prow[f"{m}_rate_per_1000"])
        rank = info["ranks"].iloc[i]
        item = context.comparisons[m]["by_code"].get(code)
        if item is not None and item.percent is not None and item.percent >= 25 and item.difference >= b.threshold \
                and m not in b.totals_of_parts:
            rises.append(MEASURE_LABELS[m])
        chart, chart_note = _ward_chart(b, m, i, j, shown) if context.draws(code) else (None, "")
        figures.append({
            "measure": m, "label": MEASURE_LABELS[m], "count": count_text(shown),
            "count_sort": _sort_key(shown, b.threshold),
            "rate": "" if rate is None else f"{rate:.1f}", "rate_sort": "" if rate is None else f"{rate:.4f}",
            "rank": "" if rate is None or math.isnan(rank) else f"{ordinal(int(rank))} of {info['ranked']}",
            "borough_rate": info["borough_rate"], "change": item,
            "change_sort": "" if item is None or item.difference is None else f"{item.difference:.0f}",
            "chart": chart, "chart_note": chart_note,
        })
    return figures, rises


def _ward_chart(b: _Basis, m: str, i: int, j: int, shown) -> tuple[Markup | None, str]:
    """Ward ``i``'s monthly chart for measure ``m`` (the ``j``-th), or why there is none."""
    if m in b.totals_of_parts:
        return None, f"Monthly chart omitted: {MEASURE_LABELS[m]} is the sum of the measures charted here."
    if m not in b.grids:
        return None, "No monthly figures."
    if is_hidden(shown) and not b.unsuppressed:
        return None, "Monthly figures not shown: this ward's count for the period is suppressed."
    months = b.grids[m].iloc[i]
    years = b.year_grids[m].iloc[i] if m in b.year_grids else None
    if months.isna().all() and years is not None and years.notna().any():
        # An annual source (the MPS LSOA file) has no months: chart its years, never made-up months.
        return (monthly_chart_svg([str(y) for y in years.index], years.tolist(), b.threshold, f"c{i}-{j}"),
                "Year by year: this source gives calendar-year counts only.")
    return monthly_chart_svg(b.run.months, months.tolist(), b.threshold, f"c{i}-{j}"), ""


def _ward_clusters(b: _Basis, component_of: dict[tuple[str, int], list[int]], i: int) -> list[dict]:
    """A ward's cluster status per measure: its LISA label and cluster partners, and Gi* bin."""
    row, items = b.pub.iloc[i], []  # published: a protected measure's p-values are withheld
    for m in b.measures:
        gi_value = number(row.get(f"{m}_gi_bin"))
        gi = None if gi_value is None else int(gi_value)
        if f"{m}_lisa_label" in b.real:
            label = row[f"{m}_lisa_label"]
            label = None if label is None or (isinstance(label, float) and math.isnan(label)) else str(label)
            others = [b.names[k] for k in component_of.get((m, i), [i]) if k != i]
            items.append({
                "measure": m, "label": label, "others": others,
                "words": cluster_words(m, label, others, number(row.get(f"{m}_lisa_p")), gi),
                "significant": label not in (None, NOT_SIGNIFICANT), "gi": gi})
        elif f"{m}_gi_bin" in b.real and gi_value:
            items.append({"measure": m, "label": None, "others": [], "significant": True, "gi": gi,
                          "words": cluster_words(m, NOT_SIGNIFICANT, [], None, gi)})
    return items


def _cluster_summary(items: list[dict]) -> str:
    """One line for the overview table: the significant LISA labels and strong Gi* spots."""
    return "; ".join(
        [f"{c['label']} ({MEASURE_LABELS[c['measure']]})" for c in items if c["label"] not in (None, NOT_SIGNIFICANT)]
        + [f"Gi* {gi_kind(c['gi'])} spot ({MEASURE_LABELS[c['measure']]})" for c in items
           if c["gi"] is not None and abs(c["gi"]) >= GI_TOP_BIN])


def _ward_gap(row: pd.Series, walk: _Walk) -> dict:
    """A ward's outreach gap status, score and distances to the nearest services."""
    flag = row.get("is_outreach_gap")
    gap = {"is_gap": bool(flag) if not pd.isna(flag) else False,
           "rank": _int_or(row.get("gap_rank")),
           # The box already says whether the ward is a gap: the reason need not say it again.
           "reason": re.sub(r"^not a gap:\s*", "", _text(row.get("gap_reason"))),
           "score": number(row.get("gap_score")), "nearest": []}
    for column, what in (("nearest_treatment_service_m", "treatment service"),
                         ("nearest_needle_exchange_m", "needle exchange")):
        distance = number(row.get(column))
        if distance is not None:
            gap["nearest"].append(f"nearest {what} {distance_text(distance)} "
                                  f"({walk_text(walk_minutes(distance, walk.speed, walk.detour), 'about')})")
    return gap


def _ward_estates(estates: pd.DataFrame | None, code: str) -> list[dict]:
    """The estates layer's estates in a ward, with their number of homes when known."""
    if estates is None or "ward_code" not in estates:
        return []
    chosen = estates[estates["ward_code"] == code]
    out = []
    for _, e in chosen.iterrows():
        homes = number(e.get("homes")) if "homes" in chosen else None
        out.append({"name": _text(e.get("name")) or "(unnamed estate)",
                    "homes": "" if homes is None else f"{int(homes):,} homes"})
    return out


def _sort_key(value, threshold: int) -> str:
    """A sort key from a published count only: numbers, ``<5`` between 0 and 5, hidden last."""
    n = number(value)
    if n is not None:
        return f"{n:.0f}"
    if count_text(value) == f"<{threshold}":
        return f"{threshold - 0.5:g}"
    return ""


def _int_or(value) -> int | None:
    n = number(value)
    return None if n is None else int(n)


def _text(value) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _components(members: list[int], neighbours: list[list[int]]) -> list[list[int]]:
    """Connected groups of ``members`` under the neighbour relation."""
    members_set, seen, groups = set(members), set(), []
    for start in members:
        if start in seen:
            continue
        stack, group = [start], []
        seen.add(start)
        while stack:
            k = stack.pop()
            group.append(k)
            for n in neighbours[k]:
                if n in members_set and n not in seen:
                    seen.add(n)
                    stack.append(n)
        groups.append(sorted(group))
    return groups


@dataclass
class _Site:
    kind: str  # "treatment" or "needle_exchange"
    name: str
    detail: str
    point: object


def _sites(run: StudyRun) -> list[_Site]:
    sites = []
    treatment = run.layer_table("treatment_services")
    if treatment is not None:
        for _, row in treatment.iterrows():
            sites.append(_Site("treatment", _text(row.get("name")) or "(unnamed service)",
                               _text(row.get("service_type")) or "Treatment service", row.geometry))
    exchanges = run.needle_exchanges()
    if exchanges is not None:
        for _, row in exchanges.iterrows():
            level = _text(row.get("nsp_level"))
            sites.append(_Site("needle_exchange", _text(row.get("name")) or "(unnamed pharmacy)",
                               "Needle exchange" + (f" ({level})" if level else ""), row.geometry))
    return [s for s in sites if s.point is not None and not s.point.is_empty]


def _satellites(run: StudyRun, codes: list[str], names: list[str]) -> list[dict]:
    if run.satellites is None or not len(run.satellites):
        return []
    frame = run.satellites.copy()
    if "rank" in frame:
        frame = frame.sort_values("rank", kind="stable")
    out = []
    for k, (_, row) in enumerate(frame.iterrows()):
        point = None
        if number(row.get("easting")) is not None and number(row.get("northing")) is not None:
            point = shapely.Point(float(row["easting"]), float(row["northing"]))
        share = number(row.get("share_of_unmet_need_covered", row.get("share_of_gap_need_covered")))
        cumulative = number(row.get("cumulative_share_of_unmet_need"))
        code = _text(row.get("ward_code"))
        ward_name = _text(row.get("ward_name")) or (names[codes.index(code)] if code in codes else "")
        residents = _int_or(row.get("residents_newly_within_walk"))
        # With a walking network and a postcode file a site also has a street and postcode; a
        # grid point without them is placed from its ward's centre.
        location = _text(row.get("location"))
        name = _text(row.get("name")) or "(unnamed site)"
        located = f"{name} ({location})" if location and location not in name else name
        by_street = bool(_text(row.get("street_name")) or _text(row.get("postcode")))
        out.append({"rank": _int_or(row.get("rank")) or k + 1,
                    "name": located,
                    # The overview's findings, one line a site, name the place only by street.
                    "finding_name": located if by_street else name,
                    "ward_code": code, "ward_name": ward_name, "point": point,
                    # One metric throughout: the share of the unmet need each site adds.
                    "share": "" if share is None else f"{100 * share:.0f}%",
                    "cumulative": "" if cumulative is None else f"{100 * cumulative:.0f}%",
                    "residents": f"{residents:,}" if residents else ""})
    return out


def _sites_by_kind(sites: list[_Site]) -> dict[str, tuple[list[_Site], np.ndarray]]:
    """The sites of each kind with their points as one array, gathered once for every ward's
    :func:`_provision`."""
    out = {}
    for kind in ("treatment", "needle_exchange"):
        of_kind = [s for s in sites if s.kind == kind]
        if of_kind:
            out[kind] = (of_kind, np.array([s.point for s in of_kind], dtype=object))
    return out


def _provision(sites: dict[str, tuple[list[_Site], np.ndarray]], centre, reach_m: float, speed: float,
               detour: float) -> tuple[list[dict], int | None]:
    """Treatment services and needle exchanges (:func:`_sites_by_kind`) within walking reach of
    a ward's centre (the nearest of each kind when none is); returns the rows and how many are
    within reach (``None`` when the study has no sites at all)."""
    rows, within = [], 0
    for kind, (of_kind, points) in sites.items():
        # Every site's distance at once; a stable sort keeps the sites' order among equal distances.
        distance = shapely.distance(points, centre)
        order = np.argsort(distance, kind="stable")
        near = order[distance[order] <= reach_m][:8]
        within += len(near)
        for j in (near if len(near) else order[:1]):
            d, s = float(distance[j]), of_kind[j]
            rows.append({"kind": "Treatment service" if kind == "treatment" else "Needle exchange",
                         "name": s.name, "detail": s.detail, "distance": distance_text(d),
                         "walk": f"{walk_minutes(d, speed, detour):.0f}", "within": d <= reach_m})
    return rows, (within if sites else None)


# --------------------------------------------------------------------------------------------
# Pictures (inline SVG; every string escaped)
# --------------------------------------------------------------------------------------------

def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent


def monthly_chart_svg(months: list[str], values: list, threshold: int, uid: str) -> Markup:
    """A bar chart of published monthly counts (or yearly ones: ``months`` may be ``YYYY`` years).

    A suppressed month (``<5``) is a small open marker on the axis with ``<5`` above it: the
    reader sees "fewer than 5", never a height that a mostly-suppressed series would make look
    high. A month hidden to protect another (``c``) shows only the letter; a month without data
    shows a dash.
    """
    width, height, left, right, top, bottom = 300, 112, 28, 4, 10, 16
    plot_w, plot_h = width - left - right, height - top - bottom
    nums = [number(v) for v in values]
    top_value = _nice_ceiling(max([n for n in nums if n is not None] + [threshold]))
    step = plot_w / max(len(months), 1)
    bar = step * 0.72
    base = top + plot_h

    def y(v: float) -> float:
        return base - v / top_value * plot_h

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" stroke="#444" stroke-width="0.8"/>',
             f'<line x1="{left}" y1="{y(top_value):.1f}" x2="{width - right}" y2="{y(top_value):.1f}" '
             f'stroke="#ddd" stroke-width="0.6"/>',
             f'<text x="{left - 3}" y="{y(top_value) + 3:.1f}" class="tick" text-anchor="end">{top_value:g}</text>',
             f'<text x="{left - 3}" y="{base + 3}" class="tick" text-anchor="end">0</text>']
    for k, (month, value, n) in enumerate(zip(months, values, nums)):
        x = left + k * step + (step - bar) / 2
        yearly = len(month) == 4
        label = escape(month if yearly else month_name(month, short=True))
        text = count_text(value)
        if n is not None:
            h = base - y(n)
            parts.append(f'<rect x="{x:.1f}" y="{y(n):.1f}" width="{bar:.1f}" height="{h:.1f}" class="bar">'
                         f'<title>{label}: {escape(count_text(value))}</title></rect>')
        elif text == f"<{threshold}":
            # A marker on the axis, not a bar: a bar's height would read as a count it is not.
            parts.append(f'<circle cx="{x + bar / 2:.1f}" cy="{base - 2.5:.1f}" r="2.2" class="suppressed">'
                         f'<title>{label}: fewer than {threshold} (suppressed)</title></circle>'
                         f'<text x="{x + bar / 2:.1f}" y="{base - 7:.1f}" class="mark" '
                         f'text-anchor="middle">{escape(text)}</text>')
        elif text:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{base - 2}" class="mark" text-anchor="middle">'
                         f'{escape(text)}<title>{label}: hidden to protect another count</title></text>')
        else:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{base - 2}" class="mark" text-anchor="middle">'
                         f'\u2013<title>{label}: no data</title></text>')
        if yearly:
            letter = f"’{month[2:]}"  # '11 ... '21: a year's ticks fit under every bar
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - 4}" class="tick" text-anchor="middle">'
                         f'{escape(letter)}</text>')
        elif len(months) <= 24 or k % 3 == 0:
            letter = month_name(month, style="%b")[0] if len(months) <= 24 else month_name(month, style="%b %y")
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - 4}" class="tick" text-anchor="middle">'
                         f'{escape(letter)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True)
class _SvgShape:
    """A polygon's rings as SVG path data waiting for coordinates: the vertices (metres) and
    the ``%``-format that writes them, so a ward drawn on twenty pages is taken apart once."""
    xy: np.ndarray   # (n, 2) vertices of the kept rings, in order
    template: str    # "M%.1f %.1f L%.1f %.1f ... Z M..." with one pair of fields a vertex

    def path(self, tx, ty) -> str:
        """SVG path data with the vertices mapped to pixels by ``tx`` and ``ty``."""
        if not len(self.xy):
            return ""
        pixels = np.column_stack([tx(self.xy[:, 0]), ty(self.xy[:, 1])]).round(1)
        # One %-format over every vertex: twice as fast as formatting vertex by vertex.
        return self.template % tuple(pixels.ravel().tolist())


def svg_shape(geom) -> _SvgShape:
    """The rings of a polygon or multipolygon (other parts, and rings of fewer than three
    vertices, left out) ready to be drawn at any scale (:meth:`_SvgShape.path`)."""
    rings = []
    for poly in getattr(geom, "geoms", [geom]):
        if poly.geom_type != "Polygon":
            continue
        for ring in [poly.exterior, *poly.interiors]:
            coords = np.asarray(ring.coords)
            if len(coords) >= 3:
                rings.append(coords[:, :2])
    template = " ".join("M" + " L".join(["%.1f %.1f"] * len(ring)) + " Z" for ring in rings)
    return _SvgShape(np.concatenate(rings) if rings else np.empty((0, 2)), template)


def _path(geom, tx, ty) -> str:
    """SVG path data for a polygon or multipolygon."""
    return svg_shape(geom).path(tx, ty)


#: Size of a ward page's static map, in SVG pixels.
_MAP_WIDTH, _MAP_HEIGHT = 340, 290
#: Outlines are simplified to this fraction of a pixel of the map they are drawn on.
_MAP_TOLERANCE_PX = 0.6


def _map_frame(geoms: np.ndarray, focus: list[int]) -> tuple[float, float, float, float, float, float, float]:
    """The extent ``(minx, miny, maxx, maxy)`` (metres), scale (pixels a metre) and offsets of
    the static map that shows the wards ``focus`` (a ward and its neighbours)."""
    minx, miny, maxx, maxy = shapely.total_bounds(geoms[focus])
    pad = 0.04 * max(maxx - minx, maxy - miny, 1.0)
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
    scale = min(_MAP_WIDTH / (maxx - minx), _MAP_HEIGHT / (maxy - miny))
    ox = (_MAP_WIDTH - (maxx - minx) * scale) / 2
    oy = (_MAP_HEIGHT - (maxy - miny) * scale) / 2
    return minx, miny, maxx, maxy, scale, ox, oy


def ward_outlines(geoms: np.ndarray, neighbours: list[list[int]]) -> np.ndarray:
    """Every ward's outline simplified once, for all the ward pages' static maps.

    A ward appears on its own page and on the pages of the wards near it, each drawn at its
    own scale. Its outline is simplified once, to :data:`_MAP_TOLERANCE_PX` of a pixel on the
    most detailed of those maps, instead of again on every page (657 London wards: about
    18,000 simplifications become 657).

    Parameters
    ----------
    geoms
        Ward polygons (EPSG:27700), in page order.
    neighbours
        Each ward's neighbours (positions), as the pages show them.

    Returns
    -------
    numpy.ndarray
        Simplified polygons, one per ward.
    """
    return shapely.simplify(geoms, _outline_tolerances(geoms, neighbours))


def _outline_tolerances(geoms: np.ndarray, neighbours: list[list[int]]) -> np.ndarray:
    """Each ward's simplification tolerance (metres): :data:`_MAP_TOLERANCE_PX` of a pixel on
    the most detailed page map that shows it (0 for a ward no page shows)."""
    frames = [_map_frame(geoms, [i, *neighbours[i]]) for i in range(len(geoms))]
    views = shapely.box(*np.array([f[:4] for f in frames]).T)
    page, ward = shapely.STRtree(geoms).query(views, predicate="intersects")
    tolerance = np.full(len(geoms), np.inf)
    np.minimum.at(tolerance, ward, _MAP_TOLERANCE_PX / np.array([f[4] for f in frames])[page])
    return np.where(np.isfinite(tolerance), tolerance, 0.0)


class WardOutlines:
    """The outlines of :func:`ward_outlines`, each simplified when a page first draws it and
    kept as an :func:`svg_shape`: the workers drawing the pages share the simplification
    (about 0.7 s for London's full-resolution wards) instead of waiting for it."""

    def __init__(self, geoms: np.ndarray, neighbours: list[list[int]]) -> None:
        self._geoms = geoms
        self._tolerances = _outline_tolerances(geoms, neighbours)
        self._shapes: dict[int, _SvgShape] = {}

    def __getitem__(self, k: int) -> _SvgShape:
        shape = self._shapes.get(k)
        if shape is None:
            shape = self._shapes[k] = svg_shape(shapely.simplify(self._geoms[k], self._tolerances[k]))
        return shape


def ward_map_svg(wards: gpd.GeoDataFrame, i: int, neighbours: list[int], sites: list[_Site],
                 estates: gpd.GeoDataFrame | None, satellites: list[dict], uid: str,
                 outlines: WardOutlines | None = None) -> Markup:
    """A static map of one ward and its neighbours: boundaries, names, estates, treatment
    services, needle exchanges and satellite sites. No tiles, no network.

    ``outlines`` are the wards' outlines already simplified for the pages
    (:class:`WardOutlines`); without them each outline is simplified for this page."""
    width, height = _MAP_WIDTH, _MAP_HEIGHT
    geoms = wards.geometry.to_numpy()
    names = wards["ward_name"].to_numpy()
    minx, miny, maxx, maxy, scale, ox, oy = _map_frame(geoms, [i] + list(neighbours))

    def tx(x):
        return ox + (np.asarray(x) - minx) * scale

    def ty(y):
        return oy + (maxy - np.asarray(y)) * scale

    view = shapely.box(minx, miny, maxx, maxy)
    tolerance = _MAP_TOLERANCE_PX / scale
    parts = [f'<svg class="map" viewBox="0 0 {width} {height}" role="img" xmlns="http://www.w3.org/2000/svg">',
             f'<defs><pattern id="e{uid}" width="5" height="5" patternUnits="userSpaceOnUse" '
             f'patternTransform="rotate(-45)"><line x1="0" y1="0" x2="0" y2="5" stroke="#8c510a" '
             f'stroke-width="1.6"/></pattern><clipPath id="k{uid}"><rect width="{width}" height="{height}"/>'
             f'</clipPath></defs>',
             f'<rect width="{width}" height="{height}" class="sea"/><g clip-path="url(#k{uid})">']
    shown = sorted(int(k) for k in wards.sindex.query(view, predicate="intersects"))
    near = set(neighbours) | {i}
    for k in shown:
        cls = "focus" if k == i else "neighbour" if k in near else "other"
        shape = outlines[k] if outlines is not None else svg_shape(shapely.simplify(geoms[k], tolerance))
        parts.append(f'<path d="{shape.path(tx, ty)}" class="ward {cls}" fill-rule="evenodd">'
                     f'<title>{escape(names[k])}</title></path>')
    # Names at a point inside the part of each ward that is on the map (full outlines).
    named = [k for k in shown if k in near]
    anchors = shapely.point_on_surface(shapely.intersection(geoms[named], view))
    labels = [(k == i, float(tx(x)), float(ty(y)), names[k])
              for k, x, y in zip(named, shapely.get_x(anchors), shapely.get_y(anchors))]
    if estates is not None and len(estates):
        for _, e in estates.iloc[estates.sindex.query(view, predicate="intersects")].iterrows():
            title = f"<title>{escape(_text(e.get('name')))} (estate)</title>"
            if e.geometry.geom_type in ("Polygon", "MultiPolygon"):
                parts.append(f'<path d="{_path(e.geometry, tx, ty)}" class="estate" fill="url(#e{uid})">{title}</path>')
            else:
                x, y = float(tx(e.geometry.x)), float(ty(e.geometry.y))
                parts.append(f'<path d="M{x:.1f} {y - 5:.1f} L{x + 5:.1f} {y:.1f} L{x:.1f} {y + 5:.1f} '
                             f'L{x - 5:.1f} {y:.1f} Z" class="estate-point">{title}</path>')
    for s in sites:
        if not view.contains(s.point):
            continue
        x, y = float(tx(s.point.x)), float(ty(s.point.y))
        title = f"<title>{escape(s.name)} ({escape(s.detail)})</title>"
        if s.kind == "treatment":
            parts.append(f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" class="treatment">{title}</rect>')
        else:
            parts.append(f'<path d="M{x:.1f} {y - 5:.1f} L{x + 4.5:.1f} {y + 3.5:.1f} L{x - 4.5:.1f} {y + 3.5:.1f} Z" '
                         f'class="exchange">{title}</path>')
    for s in satellites:
        if s["point"] is None or not view.contains(s["point"]):
            continue
        x, y = float(tx(s["point"].x)), float(ty(s["point"].y))
        parts.append(f'<g class="satellite"><circle cx="{x:.1f}" cy="{y:.1f}" r="7"/>'
                     f'<text x="{x:.1f}" y="{y + 3:.1f}" text-anchor="middle">{s["rank"]}</text>'
                     f'<title>Suggested satellite site {s["rank"]}: {escape(s["name"])}</title></g>')
    for is_focus, x, y, name in labels:
        parts.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" class="label{" focus" if is_focus else ""}">'
                     f'{escape(name)}</text>')
    parts.append("</g>")
    # Scale bar.
    target = (maxx - minx) / 4
    length = max([v for v in (100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000) if v <= target] or [100])
    bar = length * scale
    parts.append(f'<g class="scale"><rect x="8" y="{height - 16}" width="{bar:.1f}" height="4"/>'
                 f'<text x="8" y="{height - 20}">{distance_text(length)}</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))


# --------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------

def _environment() -> jinja2.Environment:
    global _ENV
    if _ENV is None:
        env = jinja2.Environment(loader=jinja2.PackageLoader("geomisuse.publish.briefings", "templates"), autoescape=True,
                                 undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        env.filters["join_names"] = join_names
        env.globals["plain_words"] = PLAIN_WORDS
        env.globals["headline"] = HEADLINE_FINDINGS
        env.globals["css"] = Markup(Path(__file__).with_name("templates").joinpath("briefing.css")
                                    .read_text(encoding="utf-8"))
        _ENV = env
    return _ENV
