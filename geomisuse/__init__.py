"""geomisuse: ward-level maps of drug-related harm, spatial clusters and outreach gaps.

The notebook API, one function per stage, each taking and returning data frames or small
result objects, never changing what it is given::

    import geomisuse as gm
    study = gm.load_study("data/demo/study.toml")          # config.Study, every section checked
    inputs = gm.load_inputs(study)                          # .boundaries .layers .months .warnings
    table = gm.build_ward_table(inputs.wards, inputs.layers, inputs.months)   # .wards .monthly ...
    clusters = gm.find_clusters(table.wards, seed=study.seed)                 # .wards .global_moran ...
    gaps = gm.find_gaps(clusters.wards, **gm.gap_inputs(table.layers), seed=study.seed)  # .wards .satellites
    gm.publish("maps/mine", study=study, inputs=inputs, table=table, clusters=clusters, gaps=gaps)

Every result carries ``.wards`` (the ward table so far), ``.warnings`` and, for the analysis
stages, ``.columns``, ``.manifest`` and ``.summary_lines``.
"""

import types as _types

from .version import __version__  # noqa: E402,F401  (re-exported: gm.__version__)

from .config import ClusterSettings, GapSettings, PublishSettings, load_study  # noqa: E402
from .layers.sites import gap_inputs  # noqa: E402
from .pipeline import load_inputs  # noqa: E402
from .pipeline import publish as _publish_results  # noqa: E402
from .wardtable import build_ward_table  # noqa: E402
from . import publish as _publish_package  # noqa: E402


class _CallablePackage(_types.ModuleType):
    """``geomisuse.publish`` is both the publishing package and ``gm.publish(...)``.

    Importing the subpackage sets the attribute ``geomisuse.publish`` to it, which would hide
    a function of that name; so the package itself is made callable. The call is
    :func:`geomisuse.pipeline.publish`, resolved here at the top so that the publish package
    never imports the pipeline.
    """

    def __call__(self, *args, **kwargs):
        return _publish_results(*args, **kwargs)


_publish_package.__class__ = _CallablePackage
publish = _publish_package


def __getattr__(name: str):
    # The analysis stages import scipy/esda/spopt: loaded on first use, so `import geomisuse`
    # and the commands that do not analyse stay quick.
    if name == "find_clusters":
        from .clusters import find_clusters
        return find_clusters
    if name == "find_gaps":
        from .gaps import find_gaps
        return find_gaps
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ClusterSettings", "GapSettings", "PublishSettings", "build_ward_table", "find_clusters",
           "find_gaps", "gap_inputs", "load_inputs", "load_study", "publish"]
