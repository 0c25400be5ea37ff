"""Count tables by small area (LSOA/OA): the ASB ward-count loader through ``lookup``/``areas``,
the same code path as population by LSOA."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from conftest import ORIGIN, TINY_CODES, run_cli

from geomisuse.config import load_study
from geomisuse.pipeline import prepare


def small_areas(folder: Path) -> None:
    """Two small areas per tiny ward (its west and east half) as a lookup and as polygons, and
    one area of a ward outside the study (lookup only)."""
    x0, y0 = ORIGIN
    rows, shapes = [], []
    for w, code in enumerate(TINY_CODES):
        col, row = w % 3, w // 3
        for half in range(2):
            area = f"E0100{2 * w + half:04d}"
            rows.append((area, code))
            left = x0 + col * 1000 + half * 500
            shapes.append((area, shapely.box(left, y0 + row * 1000, left + 500, y0 + (row + 1) * 1000)))
    rows.append(("E01009999", "E05099999"))
    pd.DataFrame(rows, columns=["LSOA21CD", "WD22CD"]).to_csv(folder / "lookup.csv", index=False)
    gpd.GeoDataFrame({"LSOA21CD": [a for a, _ in shapes]}, geometry=[g for _, g in shapes],
                     crs="EPSG:27700").to_file(folder / "lsoa.gpkg", driver="GPKG")


def asb_by_area(folder: Path) -> pd.DataFrame:
    """ASB warnings by small area and month (2025-01..03), with one row of a ward elsewhere, one
    area not in the lookup, one bad count and one exact copy; returns the good rows."""
    rows = [{"LSOA21CD": f"E0100{k:04d}", "month": f"2025-0{m}", "count": str(k + m)}
            for k in range(12) for m in (1, 2, 3) if (k, m) != (11, 3)]
    good = pd.DataFrame(rows).astype({"count": int})
    rows += [{"LSOA21CD": "E01009999", "month": "2025-01", "count": "4"},
             {"LSOA21CD": "E01008888", "month": "2025-01", "count": "4"},
             {"LSOA21CD": "E01000011", "month": "2025-03", "count": "x"},
             dict(rows[0])]
    pd.DataFrame(rows).to_csv(folder / "asb.csv", index=False)
    return good


@pytest.mark.parametrize("how", ['lookup = "lookup.csv"', 'areas = "lsoa.gpkg"'])
def test_asb_counts_by_small_area_reach_wards_through_the_lookup_or_the_polygons(tiny, how):
    small_areas(tiny)
    good = asb_by_area(tiny)
    (tiny / "study.toml").write_text('[study]\nperiod = ["2025-01", "2025-03"]\n[boundaries]\npath = "wards.geojson"\n'
                                     f'[layers.asb_warnings]\npath = "asb.csv"\n{how}\n')
    run = prepare(load_study(tiny / "study.toml"))
    account = run.layers["asb_warnings"].accounting()
    assert account["rows_read"] == 39 and account["rows_used"] == 35
    excluded = {"duplicate row": 1}
    rejected = {"small area not in the lookup": 1, "unparseable count": 1}
    if how.startswith("lookup"):
        excluded["ward not in the study area"] = 1
    else:  # the polygons know no area outside the study: the area elsewhere is not in them either
        rejected["small area not in the lookup"] = 2
    assert account["rows_excluded"] == excluded and account["rows_rejected"] == rejected
    # Independent sum: ward = area number // 2.
    good["ward_code"] = [TINY_CODES[int(a[-4:]) // 2] for a in good["LSOA21CD"]]
    expected = good.groupby("ward_code")["count"].sum()
    wards = run.wards.set_index("ward_code")["asb_count"].astype(int)
    assert (wards == expected.reindex(wards.index)).all()
    monthly = run.monthly.set_index(["ward_code", "month"])["asb_count"].astype(int)
    assert (monthly == good.groupby(["ward_code", "month"])["count"].sum().reindex(monthly.index)).all()
    assert run.sources["asb"] == "asb_warnings"


def test_asb_table_by_small_area_without_a_code_column_is_one_line(tiny):
    small_areas(tiny)
    pd.DataFrame({"area": ["x"], "month": ["2025-01"], "count": ["1"]}).to_csv(tiny / "asb.csv", index=False)
    (tiny / "study.toml").write_text('[study]\n[boundaries]\npath = "wards.geojson"\n'
                                     '[layers.asb_warnings]\npath = "asb.csv"\nlookup = "lookup.csv"\n')
    result = run_cli("validate", str(tiny / "study.toml"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "asb.csv" in result.stderr and "lsoa_code" in result.stderr
