"""Errors that reach the user as one line and an exit code."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input or usage: the CLI prints the message on one line and exits with code 2.

    Parameters
    ----------
    message
        What is wrong and what to do about it.
    path
        The file concerned, when there is one; prefixed to the message.
    row
        1-based row number in the file (the header is row 1) when the problem is one row.
    column
        The column concerned, when there is one.
    """

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None,
                 row: int | None = None, column: str | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.row = row
        self.column = column
        where = []
        if self.path:
            where.append(self.path)
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)
