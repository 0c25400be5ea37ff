"""The plain analyst's script geomisuse is measured against (issue 14): what a competent analyst
writes in an afternoon with pandas (pyarrow engine), geopandas ``sjoin``, esda (without numba)
and folium. It reads every police.uk CSV, keeps Drugs and ASB with coordinates, counts them by
ward, computes rates, global Moran's I and LISA for drug offences, and writes a choropleth.

It does far less than ``geomisuse run``: no accounting of dropped rows, no months, no disclosure
control, no gaps, no briefings, no escaping.

    python benchmarks/plain_script.py ARCHIVE_FOLDER OUT_FOLDER
"""

from __future__ import annotations

import sys
from pathlib import Path

import esda
import folium
import geopandas as gpd
import pandas as pd
from libpysal.weights import Queen

WARDS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "boundaries" / \
    "gla_london_wards_2018.gpkg"


def main(folder: Path, out: Path) -> None:
    frames = [pd.read_csv(path, engine="pyarrow", usecols=["Month", "Longitude", "Latitude", "Crime type"])
              for path in sorted((folder / "police_uk").rglob("*.csv"))]
    crimes = pd.concat(frames, ignore_index=True)
    crimes = crimes[crimes["Crime type"].isin(["Drugs", "Anti-social behaviour"])].dropna(subset=["Longitude"])
    points = gpd.GeoDataFrame(crimes, geometry=gpd.points_from_xy(crimes["Longitude"], crimes["Latitude"]),
                              crs="EPSG:4326").to_crs("EPSG:27700")
    wards = gpd.read_file(WARDS).to_crs("EPSG:27700")
    joined = gpd.sjoin(points, wards[["GSS_CODE", "geometry"]], predicate="within")
    counts = joined.groupby(["GSS_CODE", "Crime type"]).size().unstack(fill_value=0)
    population = pd.read_csv(folder / "population.csv").set_index("ward_code")["population"]
    wards = wards.join(counts, on="GSS_CODE").fillna({"Drugs": 0, "Anti-social behaviour": 0})
    wards["drugs_rate"] = wards["Drugs"] / wards["GSS_CODE"].map(population) * 1000
    weights = Queen.from_dataframe(wards, use_index=False)
    weights.transform = "r"
    moran = esda.Moran(wards["drugs_rate"], weights, permutations=999)
    lisa = esda.Moran_Local(wards["drugs_rate"], weights, permutations=999, seed=1)
    wards["lisa_q"] = lisa.q
    out.mkdir(parents=True, exist_ok=True)
    page = folium.Map(location=[51.5, -0.1], zoom_start=10)
    folium.Choropleth(wards.to_crs("EPSG:4326"), data=wards, columns=["GSS_CODE", "drugs_rate"],
                      key_on="feature.properties.GSS_CODE").add_to(page)
    page.save(out / "map.html")
    wards.drop(columns="geometry").to_csv(out / "wards.csv", index=False)
    print(f"Moran's I {moran.I:.3f} (p {moran.p_sim:.3f}); {len(joined):,} points in wards")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
