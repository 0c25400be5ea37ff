"""Independent pieces of work spread over forked worker processes.

Publishing a London study draws 657 ward pages and 33 borough overviews, each a pure function
of the run's results. :func:`fork_map` hands them to worker processes forked from this one, so
the workers start in milliseconds with the run already in memory (nothing is pickled on the way
in) and only each piece's result comes back. :func:`start` does one piece of work in a worker
while this process goes on (the wards' contiguity while the crime layers load). Where ``fork``
is not available (Windows, macOS' default), on one core, or for a few items, the work runs
here; the results are the same either way.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from .errors import InputError

T = TypeVar("T")
R = TypeVar("R")

#: Fewer items than this run in this process: forking costs more than they take.
MIN_ITEMS = 48

#: The work of the current :func:`fork_map`, inherited by its forked workers.
_WORK: tuple[Callable, Sequence] | None = None
#: True in a worker: work it hands on runs there (a pool's workers cannot fork workers).
_IN_WORKER = False


#: Environment variable that sets the number of worker processes (1: work in one process).
WORKERS_VARIABLE = "GEOMISUSE_WORKERS"


def cores() -> int:
    """Worker processes to use: ``GEOMISUSE_WORKERS`` when set (on a shared server), else the
    cores this process may run on (its CPU affinity, not the machine's count).

    Raises
    ------
    InputError
        ``GEOMISUSE_WORKERS`` is not a whole number of 1 or more.
    """
    text = os.environ.get(WORKERS_VARIABLE, "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            raise InputError(f"{WORKERS_VARIABLE}={text!r} must be a whole number of worker processes, 1 or more "
                             "(1 works in one process)")
        return int(text)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def fork_map(function: Callable[[T], R], items: Sequence[T], *, workers: int | None = None,
             min_items: int | None = None) -> list[R]:
    """``[function(item) for item in items]``, spread over forked worker processes.

    Parameters
    ----------
    function
        Any callable (a closure is fine: the workers inherit it); it must not rely on changing
        this process's state, since a worker's changes are lost. Its results must pickle.
    items
        The work, in order.
    workers
        Worker processes (default: :func:`cores`); 1 runs everything in this process.
    min_items
        Fewer items than this run in this process (default :data:`MIN_ITEMS`).

    Returns
    -------
    list
        The results in the order of ``items``. An exception in a worker is raised here.
    """
    global _WORK
    workers = cores() if workers is None else workers
    workers = min(workers, len(items))
    min_items = MIN_ITEMS if min_items is None else min_items
    if workers < 2 or len(items) < min_items or not _can_fork():
        return [function(item) for item in items]
    # Contiguous runs, a few per worker, so a slow stretch of items does not hold one worker back.
    size = max(1, -(-len(items) // (workers * 4)))
    runs = [(start, min(start + size, len(items))) for start in range(0, len(items), size)]
    _WORK = (function, items)
    # Objects the workers inherit stay out of their garbage collector's sweeps, which would
    # write to every one of them and so copy the parent's memory page by page.
    gc.freeze()
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_run, runs, chunksize=1)
    finally:
        _WORK = None
        gc.unfreeze()
    return [result for part in parts for result in part]


def _can_fork() -> bool:
    """Whether work may go to forked workers from here (not from a worker: a pool's workers
    cannot fork workers of their own)."""
    return not _IN_WORKER and "fork" in multiprocessing.get_all_start_methods()


def _run(bounds: tuple[int, int]) -> list:
    """In a worker: the results of ``items[start:stop]`` of the inherited work."""
    global _IN_WORKER
    _IN_WORKER = True
    function, items = _WORK
    start, stop = bounds
    return [function(items[k]) for k in range(start, stop)]


class Pending(Generic[R]):
    """A result being worked out in a forked process while this one goes on (:func:`start`).

    Without ``fork``, on one core, or inside a worker, nothing runs until :meth:`result`
    asks, and then it runs here.
    """

    def __init__(self, function: Callable[[], R]) -> None:
        self._function = function
        self._outcome: tuple[bool, object] | None = None
        self._process = None
        self._receiver = None
        self._owner = os.getpid()
        if cores() > 1 and _can_fork():
            context = multiprocessing.get_context("fork")
            self._receiver, sender = context.Pipe(duplex=False)
            # A daemon: a run that stops early (bad input) does not wait for it.
            self._process = context.Process(target=_deliver, args=(function, sender), daemon=True)
            self._process.start()
            sender.close()

    def result(self) -> R:
        """The function's result (waiting for the worker if it is still at it); an exception
        it raised is raised here."""
        if self._outcome is not None:
            outcome = self._outcome
        elif os.getpid() != self._owner:
            # Asked in another worker, which inherited this object: the worker and its answer
            # belong to the process that started them.
            outcome = _outcome_of(self._function)
        else:
            outcome = self._outcome = self._receive()
        ok, value = outcome
        if not ok:
            raise value
        return value

    def _receive(self) -> tuple[bool, object]:
        """The worker's outcome (worked out here when there is no worker, or it died)."""
        if self._process is None:
            return _outcome_of(self._function)
        try:
            outcome = self._receiver.recv()
        except EOFError:  # the worker died without an answer
            outcome = _outcome_of(self._function)
        self._process.join()
        self._receiver.close()
        return outcome

    def cancel(self) -> None:
        """Stop the worker if its result has not been asked for (it would otherwise wait,
        holding its answer, until this process ends)."""
        if self._outcome is None and self._process is not None and os.getpid() == self._owner:
            self._process.terminate()
            self._process.join()
            self._receiver.close()
            self._process = None


def start(function: Callable[[], R]) -> Pending[R]:
    """Begin ``function()`` in a forked worker process; ask for it with ``.result()``.

    For work whose inputs are ready before this process needs its result (the wards'
    contiguity, while the crime layers are still being read). ``function`` must not change
    this process's state; its result must pickle.
    """
    return Pending(function)


def _outcome_of(function: Callable[[], R]) -> tuple[bool, object]:
    try:
        return True, function()
    except Exception as error:
        return False, error


def _deliver(function: Callable[[], R], sender) -> None:
    """In the worker: send ``function()``'s outcome back."""
    global _IN_WORKER
    _IN_WORKER = True
    sender.send(_outcome_of(function))
    sender.close()
