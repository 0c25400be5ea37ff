"""Outreach gaps: where need is high and provision is far away, and satellite sites to close them.

The stage is :func:`find_gaps` over the ward table (after the cluster stage); its settings come
from the study file's ``[gaps]`` table through :meth:`GapSettings.from_options`. Modules:

- :mod:`.settings`: the ``[gaps]`` settings and their defaults;
- :mod:`.need`: the need measure and which wards have high need;
- :mod:`.walking`: resident points per ward, walking distance to the nearest services, the
  access verdict;
- :mod:`.sites`: candidate sites and the maximal covering model for satellite outreach sites;
- :mod:`.reasons`: every ward's gap reason in words, and the printed summary;
- :mod:`.stage`: the stage itself: scores, ranks and the output columns.
"""

from .stage import GapResult, GapSettings, find_gaps

__all__ = ["GapResult", "GapSettings", "find_gaps"]
