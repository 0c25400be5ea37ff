"""Inference shared by the cluster statistics: conditional permutation, pseudo p-values,
multiple-testing corrections and the permutation count.

p-value convention
------------------
All pseudo p-values here are **two-sided**::

    p = min(1, 2 * (min(M_ge, M_le) + 1) / (R + 1))

where ``R`` is the number of permutations and ``M_ge`` / ``M_le`` count the permuted
statistics at least / at most as large as the observed one (ties count on both sides, which
is conservative). GeoDa and esda (``alternative="directed"``, the esda 2.x default) report
the *folded* value ``(min(M_ge, R - M_ge) + 1) / (R + 1)``, about half of ours; it picks the
tail after seeing the data, so under no spatial pattern about ``2 * alpha`` of wards fall
below ``alpha``. The two-sided form keeps that share at or below ``alpha`` (esda recommends
it and will make it the default). The smallest two-sided p-value is ``2 / (R + 1)``.

Conditional permutation (Anselin 1995)
---------------------------------------
For ward ``i`` with ``k_i`` neighbours, the value of ``i`` is held fixed and its neighbours
are replaced by ``k_i`` wards drawn at random, without replacement, from the other ``n - 1``.
With binary (or row-standardised binary) weights every local statistic used here is a
monotone function of the *sum* of the drawn values, so only that sum is simulated.

The draws are shared by all wards (as esda does): each permutation is the start of one
random ordering of all wards; ward ``i`` takes its first ``k_i`` entries, and when ``i``
itself is among them it is replaced by entry ``k_i + 1``. Removing ``i`` from a uniformly
random ordering leaves a uniformly random ordering of the other wards, so each ward still
gets exactly the conditional-permutation distribution. Sharing lets the sum for every
cardinality be a cumulative sum over one small array, and the counts for all wards with
that cardinality come from one sorted column, so ~100,000 permutations over ~700 wards take
a fraction of a second in plain numpy (no numba, no JIT compile).
"""

from __future__ import annotations

import math

import numpy as np


#: Permutation counts the default is chosen from (R + 1 is 1, 2 or 5 times a power of ten).
_NICE_PERMUTATIONS = tuple(m * 10 ** e - 1 for e in range(3, 8) for m in (1, 2, 5))


def draw_orderings(n: int, length: int, permutations: int, rng: np.random.Generator) -> np.ndarray:
    """The first ``length`` entries of ``permutations`` independent random orderings of ``0..n-1``.

    Column by column, each entry is drawn uniformly from the values not yet in its row
    (rows that drew a repeat draw again), i.e. sequential sampling without replacement.

    Parameters
    ----------
    n
        Number of wards.
    length
        Entries per ordering (at most ``n``).
    permutations
        Number of orderings.
    rng
        Random generator (seeded by the caller).

    Returns
    -------
    numpy.ndarray
        ``(permutations, length)`` integer array, distinct values in each row.
    """
    if length > n:
        raise ValueError(f"cannot draw {length} distinct wards from {n}")
    draws = np.empty((permutations, length), dtype=np.int64)
    for column in range(length):
        todo = np.arange(permutations)
        while todo.size:
            candidate = rng.integers(0, n, size=todo.size)
            repeat = (draws[todo, :column] == candidate[:, None]).any(axis=1)
            draws[todo[~repeat], column] = candidate[~repeat]
            todo = todo[repeat]
    return draws


def conditional_sum_counts(values: np.ndarray, cardinality: np.ndarray, observed_sum: np.ndarray,
                           orderings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Count, per ward, permuted neighbour sums at least / at most the observed neighbour sum.

    Parameters
    ----------
    values
        ``(n,)`` values of the wards (no NaN).
    cardinality
        ``(n,)`` number of neighbours of each ward (at least 1, at most ``n - 1``).
    observed_sum
        ``(n,)`` sum of the values of each ward's actual neighbours.
    orderings
        ``(R, max(cardinality) + 1)`` from :func:`draw_orderings` with the same ``n``.

    Returns
    -------
    at_least, at_most
        ``(n,)`` integer counts out of ``R``. Sums within a tiny tolerance of the observed sum
        count as ties (on both sides), so that rounding in the order of addition cannot turn a
        tie into a win.
    """
    values = np.asarray(values, dtype=float)
    cardinality = np.asarray(cardinality, dtype=np.int64)
    n_perm, length = orderings.shape
    drawn = values[orderings]
    prefix = np.cumsum(drawn, axis=1)            # prefix[r, k - 1]: sum of the first k draws
    tolerance = 1e-9 * max(1.0, float(np.abs(values).max())) * length
    low, high = observed_sum - tolerance, observed_sum + tolerance
    at_least = np.zeros(values.size, dtype=np.int64)
    at_most = np.zeros(values.size, dtype=np.int64)
    for k in np.unique(cardinality):
        wards = np.flatnonzero(cardinality == k)
        column = np.sort(prefix[:, k - 1])
        at_least[wards] = n_perm - np.searchsorted(column, low[wards], side="left")
        at_most[wards] = np.searchsorted(column, high[wards], side="right")
    # Permutations in which ward i drew itself among its first k_i: swap it for draw k_i + 1.
    position = np.arange(length - 1)[None, :]
    rows, cols = np.nonzero(position < cardinality[orderings[:, :-1]])
    wards = orderings[rows, cols]
    k = cardinality[wards]
    wrong = prefix[rows, k - 1]
    right = wrong - values[wards] + drawn[rows, k]
    n = values.size

    def change(now: np.ndarray, before: np.ndarray) -> np.ndarray:
        # Per ward: draws that count after the swap minus draws that counted before it.
        return (np.bincount(wards, now, n) - np.bincount(wards, before, n)).astype(np.int64)

    at_least += change(right >= low[wards], wrong >= low[wards])
    at_most += change(right <= high[wards], wrong <= high[wards])
    return at_least, at_most


def two_sided_p(at_least: np.ndarray, at_most: np.ndarray, permutations: int) -> np.ndarray:
    """Two-sided pseudo p-value ``min(1, 2 (min(M_ge, M_le) + 1) / (R + 1))`` (see module docstring)."""
    extreme = np.minimum(at_least, at_most)
    return np.minimum(1.0, 2.0 * (extreme + 1.0) / (permutations + 1.0))


def adjust_p(p: np.ndarray, correction: str) -> np.ndarray:
    """p-values adjusted for testing every ward, to compare with alpha directly.

    Parameters
    ----------
    p
        Unadjusted p-values (NaN allowed; NaNs are not counted as tests and stay NaN).
    correction
        ``"none"``; ``"bonferroni"``: ``min(1, m p)``; ``"fdr"``: Benjamini–Hochberg (1995)
        adjusted p-values ``q_(i) = min(1, min_{j >= i} m p_(j) / j)`` over the ``m`` tests
        sorted by p (``scipy.stats.false_discovery_control(method="bh")``). ``q <= alpha``
        rejects exactly the hypotheses the BH step-up procedure rejects.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, same shape.
    """
    p = np.asarray(p, dtype=float)
    out = p.copy()
    tested = ~np.isnan(p)
    m = int(tested.sum())
    if correction == "none" or m == 0:
        return out
    if correction == "bonferroni":
        out[tested] = np.minimum(1.0, p[tested] * m)
        return out
    if correction == "fdr":
        from scipy.stats import false_discovery_control  # scipy.stats: ~1 s to import, loaded by gaps anyway

        out[tested] = false_discovery_control(p[tested], method="bh")
        return out
    raise ValueError(f"unknown correction {correction!r}")


def required_permutations(n_tests: int, alpha: float, correction: str) -> int:
    """The fewest permutations ``R`` whose smallest p-value ``2 / (R + 1)`` can be significant.

    With ``"none"`` the bar is ``alpha``. With ``"bonferroni"`` it is ``alpha / n``. With
    ``"fdr"`` the Benjamini–Hochberg threshold of the smallest p-value is also ``alpha / n``
    (a larger cluster can pass at ``k alpha / n``, but a single hot ward cannot), so both
    corrections need ``2 / (R + 1) <= alpha / n``.

    Parameters
    ----------
    n_tests
        Number of wards tested.
    alpha
        Significance level.
    correction
        ``"none"``, ``"bonferroni"`` or ``"fdr"``.

    Returns
    -------
    int
    """
    bar = alpha if correction == "none" else alpha / max(n_tests, 1)
    return max(1, math.ceil(2.0 / bar - 1.0 - 1e-9))


def default_permutations(n_tests: int, alpha: float, correction: str) -> int:
    """Default permutation count: twice the headroom of :func:`required_permutations`, rounded up.

    Rule: the smallest of 999, 1,999, 4,999, 9,999, 19,999, 49,999, 99,999 ... such that
    ``R + 1 >= 2 (required + 1)``, i.e. a ward beaten by one permuted value can still be
    significant after the correction, and never fewer than GeoDa's 999. Examples at
    alpha = 0.05 with ``fdr`` or ``bonferroni``: 20 wards -> 1,999; 704 wards -> 99,999.

    Parameters
    ----------
    n_tests, alpha, correction
        As in :func:`required_permutations`.

    Returns
    -------
    int
    """
    need = 2 * (required_permutations(n_tests, alpha, correction) + 1) - 1
    for count in _NICE_PERMUTATIONS:
        if count >= need:
            return count
    return need


def permutation_warning(permutations: int, n_tests: int, alpha: float, correction: str,
                        measure: str) -> str | None:
    """A warning when a user's permutation count cannot give significant wards, else ``None``.

    Parameters
    ----------
    permutations
        The count the study asked for.
    n_tests, alpha, correction
        As in :func:`required_permutations`.
    measure
        Measure name, for the message.

    Returns
    -------
    str or None
        One line: what happens and what to change.
    """
    need = required_permutations(n_tests, alpha, correction)
    if permutations >= need:
        return None
    smallest = 2.0 / (permutations + 1)
    if correction == "fdr":
        # BH can still pass a group of k wards that all reach the smallest p when k alpha / n >= it.
        group = math.ceil(smallest * n_tests / alpha - 1e-9)
        what = (f"only a group of at least {group} wards that all beat every permutation can be "
                f"significant" if group <= n_tests else "no ward can be significant")
    else:
        what = "no ward can be significant"
    return (f"{measure}: with permutations = {permutations} the smallest LISA p-value is {smallest:.2g}, "
            f"so with correction '{correction}' at alpha {alpha:g} over {n_tests} wards {what}; "
            f"set [clusters] permutations to at least {need} (or leave it out to use the default)")
