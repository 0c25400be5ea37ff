"""Publish: what a run writes, with small counts protected.

- :mod:`.disclosure`: small-count suppression (the one module that protects);
- :mod:`.tables`: the ward tables, the manifest and atomic writing of the output folder;
- :mod:`.maps`: the interactive map;
- :mod:`.briefings`: the ward briefings and the borough overview;
- :mod:`.escaping`: text safe for HTML and JavaScript.

Publishing reads a finished run's results; it never imports the analysis stages.
"""

from .tables import PublishSettings, write_outputs

__all__ = ["PublishSettings", "write_outputs"]
