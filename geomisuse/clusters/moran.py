"""Moran's I: global (Moran 1950; Cliff & Ord 1981), the empirical-Bayes rate version
(Assunção & Reis 1999) and the local Moran, LISA (Anselin 1995).

Notation (as in the papers): ``y`` the values, ``n`` the number of wards, ``z = y - mean(y)``,
``m2 = sum(z**2) / n``, ``W = (w_ij)`` the weights, ``S0 = sum_ij w_ij``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from ..vocabulary import NOT_SIGNIFICANT, QUADRANT_LABELS
from .inference import conditional_sum_counts, two_sided_p

#: Permuted maps are evaluated this many at a time (bounds memory at ~n * 2,000 floats).
_CHUNK = 2000


@dataclass(frozen=True)
class Moran:
    """Global Moran's I of one map, with esda's attribute names (``esda.Moran``).

    Attributes
    ----------
    I
        Moran's I.
    EI
        Its expectation under no spatial pattern, ``-1 / (n - 1)``.
    VI_rand
        Its variance under the randomisation assumption (Cliff & Ord 1981, eq. 1.38).
    z_rand
        ``(I - EI) / sqrt(VI_rand)``.
    p_sim
        Two-sided permutation pseudo p-value (see :mod:`geomisuse.clusters.inference`;
        esda's ``p_sim`` is the folded one-sided value, about half); NaN without permutations.
    z_sim
        ``(I - mean) / sd`` of the permuted values (GeoDa's "z-value"); NaN without permutations.
    permutations
        Number of permutations (0: none).
    """

    I: float  # noqa: E741 (esda's name)
    EI: float
    VI_rand: float
    z_rand: float
    p_sim: float
    z_sim: float
    permutations: int


@dataclass(frozen=True)
class MoranLocal:
    """Local Moran's I (LISA) of every ward, with esda's attribute names (``esda.Moran_Local``).

    Every attribute is an ``(n,)`` array in the order of the values.

    Attributes
    ----------
    Is
        Local I, GeoDa's value (esda's ``Is`` is ``(n - 1) / n`` times it).
    EI, VI
        Expectation and variance of local I under total randomisation (Anselin 1995, eq. 13).
    z_rand
        ``(Is - EI) / sqrt(VI)``, the analytical z (``M_lisa_z``).
    q
        Moran-scatterplot quadrant: 1 High-High, 2 Low-High, 3 Low-Low, 4 High-Low
        (:data:`geomisuse.vocabulary.QUADRANT_LABELS`).
    p_sim
        Two-sided conditional-permutation pseudo p-value (twice esda's folded value); NaN
        when no permutation test was run.
    """

    Is: np.ndarray
    EI: np.ndarray
    VI: np.ndarray
    z_rand: np.ndarray
    q: np.ndarray
    p_sim: np.ndarray


def global_moran(y: np.ndarray, weights: sparse.csr_array, permutations: int,
                 rng: np.random.Generator) -> Moran:
    """Global Moran's I with its randomisation moments and a permutation test.

    ``I = (n / S0) * sum_ij w_ij z_i z_j / sum_i z_i**2``, ``E[I] = -1 / (n - 1)``.
    ``Var[I]`` under the randomisation assumption (Cliff & Ord 1981, eq. 1.38)::

        Var = [n((n^2 - 3n + 3) S1 - n S2 + 3 S0^2) - b2((n^2 - n) S1 - 2n S2 + 6 S0^2)]
              / ((n - 1)(n - 2)(n - 3) S0^2) - E[I]^2

    with ``S1 = 1/2 sum_ij (w_ij + w_ji)^2``, ``S2 = sum_i (w_i. + w_.i)^2`` and the
    kurtosis ``b2 = n sum z^4 / (sum z^2)^2``.

    Parameters
    ----------
    y
        ``(n,)`` values, no NaN, not all equal.
    weights
        ``(n, n)`` weights (row-standardised in this project).
    permutations
        Number of random relabellings of the map for the pseudo p-value (0: none).
    rng
        Seeded random generator.

    Returns
    -------
    Moran
    """
    y = np.asarray(y, dtype=float)
    n = y.size
    z = y - y.mean()
    s0 = float(weights.sum())
    moran_i = _moran_i(z, weights, s0)
    expected = -1.0 / (n - 1)
    symmetric = weights + weights.T
    s1 = 0.5 * float(symmetric.multiply(symmetric).sum())
    s2 = float(((np.asarray(weights.sum(axis=1)).ravel() + np.asarray(weights.sum(axis=0)).ravel()) ** 2).sum())
    b2 = n * (z ** 4).sum() / (z ** 2).sum() ** 2
    numerator = (n * ((n * n - 3 * n + 3) * s1 - n * s2 + 3 * s0 * s0)
                 - b2 * ((n * n - n) * s1 - 2 * n * s2 + 6 * s0 * s0))
    variance = numerator / ((n - 1) * (n - 2) * (n - 3) * s0 * s0) - expected ** 2
    p_sim = z_sim = np.nan
    if permutations:
        simulated = _permuted_moran(z, weights, s0, permutations, rng)
        at_least = int((simulated >= moran_i - 1e-12).sum())
        at_most = int((simulated <= moran_i + 1e-12).sum())
        p_sim = float(two_sided_p(np.array(at_least), np.array(at_most), permutations))
        z_sim = float((moran_i - simulated.mean()) / simulated.std())
    return Moran(I=moran_i, EI=expected, VI_rand=variance, z_rand=(moran_i - expected) / np.sqrt(variance),
                 p_sim=p_sim, z_sim=z_sim, permutations=int(permutations))


def empirical_bayes_standardise(counts: np.ndarray, population: np.ndarray) -> np.ndarray:
    """Assunção & Reis (1999) empirical-Bayes standardised rates, for Moran's I of rates.

    With ``r_i = counts_i / population_i``::

        b   = sum(counts) / sum(population)                      (prior mean rate)
        s2  = sum(population_i (r_i - b)^2) / sum(population)
        a   = s2 - b / mean(population)                          (prior variance)
        v_i = a + b / population_i,  or b / population_i where that is negative
        z_i = (r_i - b) / sqrt(v_i)

    Small wards' rates swing by chance; dividing by ``sqrt(v_i)`` stops them dominating I.
    Same as ``esda.smoothing.assuncao_rate``.

    Parameters
    ----------
    counts
        ``(n,)`` event counts.
    population
        ``(n,)`` populations at risk, all above 0.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` standardised rates.
    """
    counts = np.asarray(counts, dtype=float)
    population = np.asarray(population, dtype=float)
    rate = counts / population
    b = counts.sum() / population.sum()
    s2 = (population * (rate - b) ** 2).sum() / population.sum()
    a = s2 - b / population.mean()
    v = a + b / population
    v = np.where(v < 0, b / population, v)
    return (rate - b) / np.sqrt(v)


def local_moran(y: np.ndarray, adjacency: sparse.csr_array, orderings: np.ndarray | None) -> MoranLocal:
    """Local Moran's I (Anselin 1995) with analytical moments and conditional-permutation p.

    With row-standardised binary weights ``w_ij = 1 / k_i`` for the ``k_i`` neighbours::

        I_i    = (z_i / m2) * sum_j w_ij z_j                          (Anselin 1995, eq. 12)
        E[I_i] = -w_i / (n - 1),  w_i = sum_j w_ij = 1                (eq. 13)
        Var[I_i] = w_i(2) (n - b2) / (n - 1)
                   + 2 w_i(kh) (2 b2 - n) / ((n - 1)(n - 2)) - w_i^2 / (n - 1)^2

    with ``w_i(2) = sum_j w_ij^2``, ``2 w_i(kh) = sum_{k != h} w_ik w_ih = w_i^2 - w_i(2)`` and
    ``b2 = m4 / m2^2``: the moments under total randomisation. GeoDa's local I is the same
    number; esda's ``Moran_Local.Is`` is ``(n - 1) / n`` times it.

    Parameters
    ----------
    y
        ``(n,)`` values, no NaN, not all equal.
    adjacency
        ``(n, n)`` binary neighbours, every ward with at least one.
    orderings
        Shared random orderings from :func:`~geomisuse.clusters.inference.draw_orderings`
        (``n`` wards, ``max k_i + 1`` columns), or ``None`` to skip the permutation test.

    Returns
    -------
    MoranLocal
        ``q``: ward above/below the mean, neighbours' mean above/below the mean; ``p_sim``:
        ward's value fixed, its ``k_i`` neighbours drawn at random from the other wards.
    """
    y = np.asarray(y, dtype=float)
    n = y.size
    k = np.diff(adjacency.indptr).astype(np.int64)
    neighbour_sum = adjacency @ y
    z = y - y.mean()
    m2 = (z ** 2).sum() / n
    b2 = ((z ** 4).sum() / n) / m2 ** 2
    lag = neighbour_sum / k - y.mean()                  # row-standardised lag of z
    local_i = z / m2 * lag
    w_i = np.ones(n)                                    # row sums of the row-standardised W
    w_i2 = 1.0 / k                                      # sum_j (1/k)^2 over k neighbours
    w_ikh = w_i ** 2 - w_i2
    expected = -w_i / (n - 1)
    variance = (w_i2 * (n - b2) / (n - 1) + w_ikh * (2 * b2 - n) / ((n - 1) * (n - 2))
                - w_i ** 2 / (n - 1) ** 2)
    scale = max(1.0, float(np.abs(y).max()))
    high, high_lag = z > 0, lag > 0
    quadrant = np.where(high, np.where(high_lag, 1, 4), np.where(high_lag, 2, 3))
    p = np.full(n, np.nan)
    if orderings is not None:
        at_least, at_most = conditional_sum_counts(y, k, neighbour_sum, orderings)
        # I_i is monotone in the neighbour sum (increasing if z_i > 0, decreasing if < 0),
        # so the two-sided p of I_i is the two-sided p of the sum.
        p = two_sided_p(at_least, at_most, orderings.shape[0])
        # A ward exactly at the mean has I_i = 0 under every permutation: nothing to test.
        p[np.abs(z) <= 1e-12 * scale] = 1.0
    return MoranLocal(Is=local_i, EI=expected, VI=variance, z_rand=(local_i - expected) / np.sqrt(variance),
                      q=quadrant, p_sim=p)


def lisa_labels(quadrant: np.ndarray, significant: np.ndarray) -> np.ndarray:
    """``High-High`` / ``Low-Low`` / ``High-Low`` / ``Low-High`` where significant, else ``Not significant``."""
    labels = np.array([QUADRANT_LABELS[int(q)] for q in quadrant], dtype=object)
    labels[~np.asarray(significant, dtype=bool)] = NOT_SIGNIFICANT
    return labels


def _moran_i(z: np.ndarray, weights: sparse.csr_array, s0: float) -> float:
    """``(n / S0) z'Wz / z'z`` for centred values ``z``."""
    return float(z.size / s0 * (z @ (weights @ z)) / (z @ z))


def _permuted_moran(z: np.ndarray, weights: sparse.csr_array, s0: float, permutations: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Moran's I of ``permutations`` random relabellings of the map, computed in chunks."""
    n = z.size
    factor = n / s0 / (z @ z)
    simulated = np.empty(permutations)
    for start in range(0, permutations, _CHUNK):
        size = min(_CHUNK, permutations - start)
        order = rng.permuted(np.broadcast_to(np.arange(n), (size, n)), axis=1)
        maps = z[order].T                                   # (n, size): one permuted map per column
        simulated[start:start + size] = factor * (maps * (weights @ maps)).sum(axis=0)
    return simulated
