"""Ward briefings: one printable page per ward and a borough overview (HTML, optionally PDF)."""

from .pages import build_data, resolve_ward, write_briefings

__all__ = ["build_data", "resolve_ward", "write_briefings"]
