"""Ward-level count tables (ward code or name, month, count), shared by the layers that come
either as points or as counts per ward, such as ASB warnings. The same table by small area
(LSOA/OA code, month, count) goes to wards through the layer's ``lookup`` or ``areas``, as every
small-area source does (:mod:`.small_areas`)."""

from __future__ import annotations

import pandas as pd

from ..errors import InputError
from ..config import LayerSpec
from .base import (LayerResult, LoadContext, check_ward_vintage, drop_duplicate_rows, find_columns,
                   parse_months, record_names, reject_bad_numbers, study_ward_codes)
from .small_areas import aggregate_areas, small_area_column

COLUMNS = {
    "ward_code": ["ward_code", "WardCode", "Ward Code", "WD22CD", "WD23CD", "WD24CD", "GSS_CODE", "code"],
    "ward_name": ["ward_name", "WardName", "Ward Name", "WD22NM", "NAME", "ward"],
    "month": ["month", "period", "date", "Month"],
    "count": ["count", "warnings", "asb_warnings", "value", "number", "n"],
}


def ward_counts_from_table(layer: LayerResult, spec: LayerSpec, context: LoadContext, measure: str) -> None:
    """Turn ``layer.table`` (a ward-level table as read) into ``ward_code, month, measure, count``.

    Rows are matched to study wards by code, or by normalised name where the code is blank
    or the file has no code column. Rows of other wards and months outside the study period
    are excluded; rows with an unreadable month or count are rejected. A file whose month
    column does not parse at all is refused (see :func:`parse_months`).

    With ``lookup`` or ``areas`` in the layer's options the rows are by small area instead
    (its code column detected from its values, or mapped as ``columns.lsoa_code``): see
    :func:`geomisuse.layers.small_areas.aggregate_areas` for how areas become wards and how
    their rows are accounted for.
    """
    path = spec.paths[0]
    if spec.options.get("lookup") or spec.options.get("areas"):
        _counts_by_small_area(layer, spec, context, measure)
        return
    columns = find_columns(layer.table, path, layer.kind, COLUMNS, spec.columns,
                           optional=("ward_code", "ward_name"))
    if not columns["ward_code"] and not columns["ward_name"]:
        raise InputError("no ward code or ward name column; map one in the study file", path, column="ward_code")
    check_ward_vintage(layer.table, columns["ward_code"], columns["ward_name"], context, layer.kind, path)
    month = parse_months(layer, columns["month"], context.months)
    codes = study_ward_codes(layer.table, columns["ward_code"], columns["ward_name"], context)
    # A council's table lists the wards with warnings: an unlisted ward had none (no coverage limit).
    record_names(layer, layer.table, codes, columns["ward_name"])
    layer.exclude(layer.table[codes.isna()], "ward not in the study area")
    drop_duplicate_rows(layer, [columns["count"]], path)
    count = reject_bad_numbers(layer, layer.table[columns["count"]], "count", integer=True)
    index = layer.table.index
    result = pd.DataFrame({"ward_code": codes[index], "month": month[index], "measure": measure,
                           "count": count[index].astype("int64")})
    layer.months = sorted(result["month"].unique())
    layer.table = (result.groupby(["ward_code", "month", "measure"], as_index=False)["count"].sum()
                   .sort_values(["ward_code", "month"], kind="stable").reset_index(drop=True))


def _counts_by_small_area(layer: LayerResult, spec: LayerSpec, context: LoadContext, measure: str) -> None:
    """:func:`ward_counts_from_table` for a table by small area (LSOA/OA, month, count)."""
    path = spec.paths[0]
    area_column = spec.columns.get("lsoa_code") or small_area_column(layer.table)
    if area_column is None or area_column not in layer.table:
        raise InputError(f"no small-area code column (LSOA21CD, LSOA11CD, OA21CD ... holding E01.../E00... codes) "
                         f"although [layers.{layer.kind}] names a lookup or areas; map it as columns = "
                         "{lsoa_code = \"...\"}", path, column="LSOA21CD")
    columns = find_columns(layer.table, path, layer.kind, {"month": COLUMNS["month"], "count": COLUMNS["count"]},
                           spec.columns)
    month = parse_months(layer, columns["month"], context.months)
    drop_duplicate_rows(layer, [columns["count"]], path)
    count = reject_bad_numbers(layer, layer.table[columns["count"]], "count", integer=True)
    index = layer.table.index
    layer.table = layer.table.assign(month=month[index], count=count[index])
    summed, mapping = aggregate_areas(layer, area_column, ["count"], spec.options, context, by=["month"])
    layer.paths = [*layer.paths, *mapping.paths]
    layer.warnings.extend(mapping.warnings)
    # As a ward table: an area without rows had none (no coverage limit).
    result = summed.assign(measure=measure, count=summed["count"].astype("int64"))
    layer.months = sorted(result["month"].unique())
    layer.table = (result[["ward_code", "month", "measure", "count"]]
                   .sort_values(["ward_code", "month"], kind="stable").reset_index(drop=True))
