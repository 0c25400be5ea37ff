"""Metropolitan Police ward-level crime, the London Datastore wide CSV.

One row per ward and minor crime category, one column per month (``YYYYMM``). This is the
source that splits drug possession from trafficking. Both label vintages are read:
``Drug Offences``/``Possession of Drugs``/``Drug Trafficking`` (to about 2023) and
``DRUG OFFENCES``/``POSSESSION OF DRUGS``/``TRAFFICKING OF DRUGS`` (later).
"""

from __future__ import annotations

import re

import pandas as pd

from ..errors import InputError
from ..config import LayerSpec
from .base import (LayerResult, LoadContext, apply_where, check_ward_vintage, drop_duplicate_rows,
                   find_columns, read_table, record_coverage, reject_bad_numbers, study_ward_codes)

#: Normalised minor category -> measure.
MEASURE_OF_MINOR = {
    "possession of drugs": "possession",
    "drug trafficking": "trafficking",
    "trafficking of drugs": "trafficking",
}
DRUG_MAJOR = "drug offences"

COLUMNS = {
    "major": ["MajorText", "Major Class Description", "major_category"],
    "minor": ["MinorText", "Minor Class Description", "minor_category"],
    "ward_code": ["WardCode", "Ward Code", "ward_code"],
    "ward_name": ["WardName", "Ward Name", "ward_name"],
}
_MONTH_COLUMN = re.compile(r"^\d{6}$")


def load_mps_ward(spec: LayerSpec, context: LoadContext) -> LayerResult:
    """Read the MPS ward-level wide CSV into a long table of monthly counts per ward.

    Parameters
    ----------
    spec
        ``[layers.mps_ward]``: ``path``, optional ``columns`` mapping and ``where``.
    context
        The study's wards (rows of other wards are excluded; names are matched when a row
        has no code) and period (other month columns are ignored).

    Returns
    -------
    LayerResult
        ``table``: DataFrame with ``ward_code``, ``month`` (``YYYY-MM``), ``measure``
        (``possession``, ``trafficking``, ``drug_offences``) and ``count``. ``drug_offences``
        is the whole Drug Offences major category. Accounting is per source row
        (ward × category).
    """
    path = spec.paths[0]
    frame = read_table(path, "mps_ward")
    layer = LayerResult("mps_ward", [path], frame, rows_read=len(frame))
    apply_where(layer, spec.options.get("where"), path)
    columns = find_columns(frame, path, "mps_ward", COLUMNS, spec.columns, optional=("ward_code", "ward_name"))
    if not columns["ward_code"] and not columns["ward_name"]:
        raise InputError("no WardCode or WardName column; map one in the study file", path, column="WardCode")
    month_columns = _month_columns(frame, path)
    wanted = [c for c in month_columns if context.months is None or _as_month(c) in context.months]
    if not wanted:
        raise InputError(f"no month column falls in the study period (file has {_as_month(month_columns[0])} "
                         f"to {_as_month(month_columns[-1])}); change [study] period", path)
    table = layer.table
    check_ward_vintage(table, columns["ward_code"], columns["ward_name"], context, "MPS ward-level", path,
                       f"its months are {_as_month(month_columns[0])} to {_as_month(month_columns[-1])}")
    record_coverage(layer, table, columns["ward_code"], columns["ward_name"], context,
                    borough_column=next((c for c in table.columns if c.lower() == "lookup_boroughname"), None))
    major = table[columns["major"]].astype(str).str.strip().str.lower()
    minor = table[columns["minor"]].astype(str).str.strip().str.lower()
    layer.exclude(table[major != DRUG_MAJOR], "crime category not analysed")

    codes = study_ward_codes(layer.table, columns["ward_code"], columns["ward_name"], context)
    layer.exclude(layer.table[codes.isna()], "ward not in the study area")
    drop_duplicate_rows(layer, month_columns, path)
    table = layer.table
    counts = reject_bad_numbers(layer, table[wanted], "count", integer=True)
    table = layer.table

    counts.columns = [_as_month(c) for c in counts.columns]
    long = counts.assign(ward_code=codes[table.index], measure=minor[table.index].map(MEASURE_OF_MINOR))
    long = long.melt(id_vars=["ward_code", "measure"], var_name="month", value_name="count")
    total = long.groupby(["ward_code", "month"], as_index=False)["count"].sum().assign(measure="drug_offences")
    parts = long.dropna(subset=["measure"]).groupby(["ward_code", "month", "measure"], as_index=False)["count"].sum()
    result = pd.concat([parts, total], ignore_index=True)[["ward_code", "month", "measure", "count"]]
    result["count"] = result["count"].astype("int64")
    layer.table = result.sort_values(["measure", "ward_code", "month"], kind="stable").reset_index(drop=True)
    layer.months = sorted({_as_month(c) for c in wanted})
    return layer


def _month_columns(frame: pd.DataFrame, path) -> list[str]:
    columns = [c for c in frame.columns if _MONTH_COLUMN.match(c)]
    for column in columns:
        if not 1 <= int(column[4:]) <= 12:
            raise InputError(f"month column '{column}' is not YYYYMM; fix the header", path, column=column)
    if not columns:
        raise InputError("no month columns (YYYYMM, e.g. 202401); is this the MPS ward-level wide file?", path)
    return sorted(columns)


def _as_month(column: str) -> str:
    return f"{column[:4]}-{column[4:]}"
