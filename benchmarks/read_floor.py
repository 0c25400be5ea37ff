"""The read floor: pyarrow reading four columns of every police.uk CSV, and nothing else.

    python benchmarks/read_floor.py ARCHIVE_FOLDER
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.csv as pa_csv

COLUMNS = ["Month", "Longitude", "Latitude", "Crime type"]


def main(folder: Path) -> None:
    rows = 0
    for path in sorted((folder / "police_uk").rglob("*.csv")):
        rows += pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(include_columns=COLUMNS)).num_rows
    print(f"{rows:,} rows")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
