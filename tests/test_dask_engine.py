"""The Dask engine gives exactly the local engine's ward table, monthly table and accounting.

A three-year generated police.uk archive (36 monthly files, with damaged rows and a zip) is
run through ``prepare`` twice: locally, and on a ``LocalCluster`` of two worker processes
(the picklable ward locator and the reading code travel to real separate processes).
"""

from __future__ import annotations

import zipfile

import pandas as pd
import pytest

from geomisuse.config import load_study, months_between
from geomisuse.demo.archive import write_archive
from geomisuse.pipeline import prepare, uses_dask
from geomisuse.publish.tables import unmatched_rows

from conftest import tiny_wards

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local


def write_study(folder, engine: str, scheduler: str | None = None) -> str:
    text = (f'[study]\nname = "Archive"\nengine = "{engine}"\nperiod = ["2022-07", "2024-06"]\n'
            + (f'scheduler = "{scheduler}"\n' if scheduler else "")
            + '\n[boundaries]\npath = "wards.geojson"\n\n[layers.police_uk]\npaths = ["archive", "extra.zip"]\n')
    path = folder / f"study-{engine}.toml"
    path.write_text(text)
    return str(path)


def test_dask_engine_on_two_worker_processes_equals_the_local_engine(tiny, cluster):
    months = months_between("2021-07", "2024-06")
    write_archive(tiny / "archive", tiny_wards().geometry.to_numpy(), months, rows_per_month=1_500, damage=True)
    # The zip holds the month after the period (its rows are excluded, and counted as such). No
    # damage there: damaged rows plant stray months, and two files of one force-month are refused.
    extra = write_archive(tiny / "extra", tiny_wards().geometry.to_numpy(), ["2024-07"], rows_per_month=700,
                          seed=3)
    with zipfile.ZipFile(tiny / "extra.zip", "w") as bundle:
        bundle.write(extra.files[0], "2024-07-extra-street.csv")
    local = prepare(load_study(write_study(tiny, "local")))
    dask_study = load_study(write_study(tiny, "dask", cluster.scheduler_address))
    assert uses_dask(dask_study)
    distributed = prepare(dask_study)

    acc_local = local.layers["police_uk"].accounting()
    acc_dask = distributed.layers["police_uk"].accounting()
    assert acc_dask == acc_local
    assert acc_local["rows_read"] == 36 * 1_500 + 700 + 13
    assert acc_local["rows_rejected"]["outside the study area"] >= 1
    # The period and the 24 months before it are read (briefings compare): the planted 2019 row and
    # the zip's month after the period are out.
    assert acc_local["rows_excluded"]["month outside the study period"] == 1 + 700
    assert distributed.layers["police_uk"].months == local.layers["police_uk"].months
    pd.testing.assert_frame_equal(distributed.monthly, local.monthly)
    columns = [c for c in local.wards.columns if c != "geometry"]
    pd.testing.assert_frame_equal(pd.DataFrame(distributed.wards[columns]), pd.DataFrame(local.wards[columns]))
    assert int(local.wards["police_uk_drugs_count"].sum()) > 0
    pd.testing.assert_frame_equal(unmatched_rows(distributed), unmatched_rows(local))


def test_auto_engine_stays_local_for_a_small_archive(tiny):
    write_archive(tiny / "archive", tiny_wards().geometry.to_numpy(), ["2024-01"], rows_per_month=100)
    (tiny / "extra.zip").write_bytes(b"")
    with zipfile.ZipFile(tiny / "extra.zip", "w") as bundle:
        bundle.writestr("empty.csv", "Month,Crime type,Longitude,Latitude\n")
    assert not uses_dask(load_study(write_study(tiny, "auto")))
