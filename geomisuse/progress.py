"""Progress bars on a terminal, silence elsewhere (CI logs, pipes, notebooks' captured output)."""

from __future__ import annotations

import sys
from typing import Iterable, Iterator, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def on_terminal() -> bool:
    """Whether standard error is an interactive terminal."""
    return sys.stderr.isatty()


def progress(items: Iterable[T], label: str, total: int | None = None) -> Iterator[T]:
    """Iterate over ``items`` with a progress bar on a terminal, quietly otherwise."""
    return iter(tqdm(items, desc=label, total=total, disable=not on_terminal(), leave=False, unit="step"))
