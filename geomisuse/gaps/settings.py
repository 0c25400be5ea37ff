"""Settings of the gap stage (the study file's ``[gaps]`` table).

The schema, defaults and checks of :class:`GapSettings` live with every other setting in
:mod:`geomisuse.config`; this module adds the gap stage's own vocabulary.
"""

from __future__ import annotations

from ..config import NEED_CRITERIA, GapSettings
from ..vocabulary import GI_CONFIDENCE

__all__ = ["GI_CONFIDENCE", "GapSettings", "NEED_CRITERIA", "NEED_MEASURE_FALLBACK"]

#: Need measures tried, in order, when the study does not name one.
NEED_MEASURE_FALLBACK = ("possession", "drug_offences", "trafficking")
