"""Outreach gaps: where need is high and provision is far away, and satellite sites to close them.

The stage is :func:`find_gaps` over the ward table (after the cluster stage); its settings come
from the study file's ``[gaps]`` table through :meth:`GapSettings.from_options`. Modules:

- :mod:`.walking`: resident points per ward and walking distance to the nearest services;
- :mod:`.sites`: the maximal covering model for satellite outreach sites;
- :mod:`.stage`: need, access, gap reasons and the stage itself.
"""

from .stage import GapResult, GapSettings, find_gaps

__all__ = ["GapResult", "GapSettings", "find_gaps"]
