"""Disclosure control for published outputs.

Counts from 1 to ``threshold - 1`` are *primary* suppressed and shown as ``<5`` (threshold
5). A suppressed cell must not be recoverable by arithmetic on published figures. Published
figures are tied together by additive relations — a ward's months add up to its period
count, the wards add up to a borough total, possession and trafficking add up to all drug
offences — and any relation with exactly one hidden member gives that member away. So, for
every relation with exactly one hidden member, the smallest other non-zero member is hidden
too (*secondary* suppression, shown as ``c``, the ONS "confidential" mark), repeated until
no relation has a lone hidden member. Rates are not computed from hidden cells. The analysis
itself uses the real values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # protection reads a run's results; it never drives the pipeline
    from ..pipeline import StudyRun

#: Mark for a cell suppressed to protect another cell.
SECONDARY_MARK = "c"
#: Partner choice: a total is hidden in preference to a part up to twice its size.
TOTAL_COST_FACTOR = 0.5


def primary_mask(values: np.ndarray, threshold: int) -> np.ndarray:
    """Cells with a count from 1 to ``threshold - 1``."""
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return (values >= 1) & (values < threshold)


def link_suppression(values: np.ndarray, hidden: np.ndarray, relations: Sequence[np.ndarray],
                     fixed: np.ndarray | None = None, cost_factor: np.ndarray | None = None) -> np.ndarray:
    """Secondary suppression over additive relations between cells.

    Parameters
    ----------
    values
        1-D array of every cell's count (NaN for cells with no data).
    hidden
        Cells already hidden (primary suppression, or decided elsewhere).
    relations
        Each an array of cell positions whose values are tied by one published linear relation
        (parts and their total, or parts of a total published elsewhere).
    fixed
        Cells whose status was decided elsewhere (e.g. a ward-table count when protecting
        monthly counts): they count as members but are never chosen as partners.
    cost_factor
        Multiplies each cell's value when choosing a partner (the cheapest is hidden). Totals
        get a lower factor than their parts, so that a small trafficking count costs the
        all-drug-offences figure rather than the possession figure analysts look at.

    Returns
    -------
    numpy.ndarray
        The final hidden mask (includes ``hidden``).
    """
    values = np.asarray(values, dtype=float)
    hidden = np.array(hidden, dtype=bool, copy=True)
    unusable = np.isnan(values) | (values == 0)
    if fixed is not None:
        unusable |= fixed
    cost = np.where(unusable, np.inf, values * (1.0 if cost_factor is None else cost_factor))
    changed = True
    while changed:
        changed = False
        for members in relations:
            if hidden[members].sum() != 1:
                continue
            choice = np.where(hidden[members], np.inf, cost[members])
            if np.isfinite(choice).any():  # else the lone cell equals a total that is small itself
                hidden[members[int(np.argmin(choice))]] = True
                changed = True
    return hidden


def format_counts(values: np.ndarray, primary: np.ndarray, secondary: np.ndarray, threshold: int) -> np.ndarray:
    """Counts as published text: ``<threshold``, ``c``, blank for missing, else the integer."""
    values = np.asarray(values, dtype=float)
    out = np.where(np.isnan(values), "", np.char.mod("%d", np.nan_to_num(values).astype(np.int64))).astype(object)
    out[primary] = f"<{threshold}"
    out[secondary] = SECONDARY_MARK
    return out


class CellGrid:
    """Named count columns of a table laid out as one vector of cells, for :func:`link_suppression`.

    Parameters
    ----------
    frame
        The table; ``columns`` are its count columns (rows are e.g. wards).
    columns
        Count columns to protect.
    """

    def __init__(self, frame: pd.DataFrame, columns: list[str]) -> None:
        self.frame = frame
        self.columns = list(columns)
        self.rows = len(frame)
        self.values = frame[self.columns].astype("float64").to_numpy().T.ravel()

    def cells(self, column: str) -> np.ndarray:
        """Cell positions of one column (one per row)."""
        start = self.columns.index(column) * self.rows
        return np.arange(start, start + self.rows)

    def column_relations(self) -> list[np.ndarray]:
        """Each column adds up to a published total (e.g. the borough's)."""
        return [self.cells(c) for c in self.columns]

    def row_relations(self, parts: list[str], total: str) -> list[np.ndarray]:
        """In every row, ``parts`` add up to ``total``."""
        cells = np.column_stack([self.cells(c) for c in parts + [total]])
        return list(cells)

    def publish(self, hidden: np.ndarray, primary: np.ndarray, threshold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The frame with the protected columns as text, and a frame of hidden flags."""
        text = format_counts(self.values, primary, hidden & ~primary, threshold).reshape(len(self.columns), self.rows)
        published = self.frame.copy()
        flags = pd.DataFrame(hidden.reshape(len(self.columns), self.rows).T, index=self.frame.index,
                             columns=self.columns)
        for i, column in enumerate(self.columns):
            published[column] = text[i]
        return published, flags


def protect_table(frame: pd.DataFrame, count_columns: list[str], threshold: int,
                  additive: Sequence[tuple[list[str], str]] = (), column_totals: bool = True
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Suppress the count columns of a table, primary and secondary.

    Parameters
    ----------
    frame
        Table with count columns (integers, or floats with NaN).
    count_columns
        The columns to protect (all of them together: relations may cross columns).
    threshold
        Smallest published non-zero count.
    additive
        ``(parts, total)`` column groups where the parts add up to the total in every row
        (e.g. possession + trafficking = all drug offences).
    column_totals
        Whether each column's total over all rows may be published (e.g. a borough total).

    Returns
    -------
    (published, hidden)
        ``published``: copy of ``frame`` with the protected columns as text;
        ``hidden``: boolean frame of the cells not shown as numbers (for blanking rates).
    """
    grid = CellGrid(frame, count_columns)
    primary = primary_mask(grid.values, threshold)
    relations = grid.column_relations() if column_totals else []
    factor = np.ones_like(grid.values)
    for parts, total in additive:
        relations += grid.row_relations(parts, total)
        factor[grid.cells(total)] = TOTAL_COST_FACTOR
    hidden = link_suppression(grid.values, primary, relations, cost_factor=factor)
    return grid.publish(hidden, primary, threshold)


def blank_derived(published: pd.DataFrame, hidden: pd.DataFrame, derived: dict[str, list[str]]) -> pd.DataFrame:
    """Empty every figure computed from a hidden count (a change, its percentage, its p-value).

    A change ``a - b`` next to a published ``b`` gives ``a`` back, and so does the p-value of a
    test of ``a`` against ``b``; such figures are shown only where every count they use is.

    Parameters
    ----------
    published
        The table as it will be published (changed in a copy).
    hidden
        Boolean frame of hidden count cells (from :func:`protect_table`), same index.
    derived
        Derived column -> the count columns it is computed from.

    Returns
    -------
    pandas.DataFrame
        A copy with the derived cells emptied wherever one of their counts is hidden.
    """
    out = published.copy()
    for column, sources in derived.items():
        if column not in out:
            continue
        mask = np.zeros(len(out), dtype=bool)
        for source in sources:
            if source in hidden:
                mask |= hidden[source].to_numpy(dtype=bool)
        if mask.any():
            out[column] = out[column].mask(mask)
    return out


def suppress_value(value: float | int | None, threshold: int) -> str:
    """One count as published text (primary suppression only; for single figures in prose)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    value = int(value)
    return f"<{threshold}" if 1 <= value < threshold else str(value)


def secondary_mask(values: np.ndarray, suppressed: np.ndarray, row_totals: bool, column_totals: bool) -> np.ndarray:
    """Secondary suppression on a 2-D table whose row and/or column totals are published.

    Returns the cells to hide in addition to ``suppressed`` (see :func:`link_suppression`).
    """
    values = np.asarray(values, dtype=float)
    index = np.arange(values.size).reshape(values.shape)
    relations = (list(index) if row_totals else []) + (list(index.T) if column_totals else [])
    hidden = link_suppression(values.ravel(), np.asarray(suppressed, dtype=bool).ravel(), relations)
    return hidden.reshape(values.shape) & ~np.asarray(suppressed, dtype=bool)


# --------------------------------------------------------------------------------------------
# The audit: what an attacker can work out by linear programming
# --------------------------------------------------------------------------------------------

#: Mark of a count rounded to the nearest 5 under ``rule = "round5"`` (shown as a number).
ROUND_BASE = 5
#: Under ``rule = "round5"`` counts 1-7 are suppressed (NHS Digital's convention).
ROUND5_THRESHOLD = 8
#: Slack for floating-point LP bounds (counts are integers; this is far below one).
LP_TOLERANCE = 1e-6


def required_width(threshold: int) -> float:
    """The narrowest attacker interval allowed for a hidden cell: that of the mark ``<threshold``.

    A cell shown as ``<5`` is known to lie in 1..4, an interval of width 3 (4 possible
    values); the audit requires every hidden cell, primary or secondary, to keep at least
    that much, so that no attacker learns more about a hidden count than ``<5`` says.
    """
    return float(max(threshold - 2, 0))


def attacker_bounds(values: np.ndarray, hidden: np.ndarray, marked_small: np.ndarray, threshold: int,
                    rule: str = "threshold") -> tuple[np.ndarray, np.ndarray]:
    """What a reader knows about each cell from its published text alone.

    Parameters
    ----------
    values
        Every cell's real count (NaN: no data, shown blank and known to be absent).
    hidden
        Cells not shown as numbers.
    marked_small
        Hidden cells shown as ``<threshold`` (known to be 1..threshold-1); the other hidden
        cells are shown as ``c``, which says nothing (any count, zero included).
    threshold
        Smallest count shown as a number.
    rule
        ``"threshold"``: published numbers are exact; ``"round5"``: they are rounded to the
        nearest 5 and known to be at least ``threshold``.

    Returns
    -------
    (lower, upper)
        Bounds per cell (NaN cells get 0, 0: they take no part in any relation).
    """
    values = np.asarray(values, dtype=float)
    present = ~np.isnan(values)
    lower = np.where(present, values, 0.0)
    upper = lower.copy()
    if rule == "round5":
        shown = present & ~hidden & (values > 0)
        rounded = rounded_counts(values)
        lower[shown] = np.maximum(rounded[shown] - (ROUND_BASE // 2), threshold)
        upper[shown] = rounded[shown] + ROUND_BASE // 2
    small = hidden & marked_small
    lower[small], upper[small] = 1.0, threshold - 1.0
    anything = hidden & ~marked_small & present
    lower[anything], upper[anything] = 0.0, np.inf
    return lower, upper


def rounded_counts(values: np.ndarray) -> np.ndarray:
    """Counts rounded to the nearest :data:`ROUND_BASE` (halves up: 12.5 does not occur)."""
    values = np.asarray(values, dtype=float)
    return np.floor(values / ROUND_BASE + 0.5) * ROUND_BASE


@dataclass
class AuditResult:
    """The outcome of :func:`audit_intervals`.

    Attributes
    ----------
    lower, upper
        Per target cell: an interval the attacker cannot narrow further *at least* this
        wide. For cells reported narrow it is the exact LP interval; for the others it is
        the range seen over feasible solutions, which already proves the width.
    narrow
        Target cells whose interval is narrower than ``width``.
    lps
        Linear programs solved.
    """

    lower: np.ndarray
    upper: np.ndarray
    narrow: np.ndarray
    lps: int


def audit_intervals(lower: np.ndarray, upper: np.ndarray, relations: Sequence[tuple[int, np.ndarray]],
                    targets: np.ndarray, width: float, seed: int = 0) -> AuditResult:
    """The tightest interval an attacker can give each target cell, by linear programming.

    The attacker knows every cell's bounds (:func:`attacker_bounds`) and every published
    additive relation ``cell[total] = sum(cell[parts])``. For each target cell the audit
    needs to know whether ``max x - min x`` over all non-negative solutions is at least
    ``width``. Cells whose bounds are equal are constants; the rest are LP variables, split
    into independent components. In each component a few LPs with random objectives (and
    their negations) usually push every cell to both ends of its range, which proves it wide
    enough; only the cells left unproven get their own two LPs (HiGHS through highspy,
    warm-started), and each of those solutions proves more cells.

    Parameters
    ----------
    lower, upper
        Attacker's bounds per cell (``upper`` may be ``inf``).
    relations
        ``(total, parts)`` cell positions.
    targets
        Cell positions to audit (the hidden cells).
    width
        Required interval width.
    seed
        Seed of the random objectives (the result does not depend on it, only the work).

    Returns
    -------
    AuditResult
    """
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    lower = np.asarray(lower, dtype=float)
    upper = np.asarray(upper, dtype=float)
    targets = np.asarray(targets, dtype=np.int64)
    n = lower.size
    free = upper - lower > LP_TOLERANCE
    free_index = np.full(n, -1, dtype=np.int64)
    free_cells = np.flatnonzero(free)
    free_index[free_cells] = np.arange(free_cells.size)
    rows, cols, coef, rhs = [], [], [], []
    for total, parts in relations:
        members = np.append(np.asarray(parts, dtype=np.int64), total)
        signs = np.append(-np.ones(len(parts)), 1.0)
        is_free = free[members]
        if not is_free.any():
            continue
        r = len(rhs)
        rows += [r] * int(is_free.sum())
        cols += free_index[members[is_free]].tolist()
        coef += signs[is_free].tolist()
        rhs.append(-float(np.dot(signs[~is_free], lower[members[~is_free]])))
    result_lo = np.full(targets.size, np.nan)
    result_hi = np.full(targets.size, np.nan)
    fixed_targets = ~free[targets]
    result_lo[fixed_targets] = lower[targets[fixed_targets]]
    result_hi[fixed_targets] = upper[targets[fixed_targets]]
    lps = 0
    if free_cells.size and (~fixed_targets).any():
        A = sparse.csr_matrix((coef, (rows, cols)), shape=(len(rhs), free_cells.size))
        b = np.asarray(rhs)
        incidence = sparse.bmat([[None, A.T.tocsr()], [A, None]]).tocsr()  # variables then rows
        _, label = connected_components(incidence, directed=False)
        var_label, row_label = label[:free_cells.size], label[free_cells.size:]
        rng = np.random.default_rng(seed)
        target_var = free_index[targets]
        for comp in np.unique(var_label[target_var[target_var >= 0]]):
            vars_c = np.flatnonzero(var_label == comp)
            rows_c = np.flatnonzero(row_label == comp)
            mine = np.flatnonzero((target_var >= 0) & (var_label[np.maximum(target_var, 0)] == comp))
            local = np.searchsorted(vars_c, target_var[mine])
            lo_c, hi_c, solved = _component_intervals(
                A[rows_c][:, vars_c], b[rows_c], lower[free_cells[vars_c]], upper[free_cells[vars_c]],
                local, width, rng)
            result_lo[mine], result_hi[mine] = lo_c, hi_c
            lps += solved
    narrow = targets[(result_hi - result_lo) < width - LP_TOLERANCE]
    return AuditResult(lower=result_lo, upper=result_hi, narrow=narrow, lps=lps)


#: Random objective pairs tried per component before solving cells one by one.
RANDOM_OBJECTIVES = 3


def _component_intervals(A, b: np.ndarray, lower: np.ndarray, upper: np.ndarray, targets: np.ndarray,
                         width: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """Intervals of ``targets`` (local variable positions) in one component; see :func:`audit_intervals`.

    The component's LP is built once in HiGHS (highspy); each solve only changes the
    objective, so the simplex starts from the previous basis (a few pivots per solve).
    """
    import highspy

    n = lower.size
    # The plain binding: highspy.Highs() prints a banner on stdout when it sets up callbacks.
    highs = highspy._Highs() if hasattr(highspy, "_Highs") else highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("presolve", "off")  # keep the basis between solves
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, A.shape[0]
    lp.col_cost_ = np.zeros(n)
    lp.col_lower_ = lower.astype(float)
    lp.col_upper_ = np.where(np.isinf(upper), highspy.kHighsInf, upper).astype(float)
    lp.row_lower_ = lp.row_upper_ = np.asarray(b, dtype=float)
    csc = A.tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n, A.shape[0]
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = csc.indptr, csc.indices, csc.data.astype(float)
    highs.passModel(lp)
    costs = np.zeros(n)
    seen_lo = np.full(targets.size, np.inf)
    seen_hi = np.full(targets.size, -np.inf)
    exact_lo = np.full(targets.size, np.nan)
    exact_hi = np.full(targets.size, np.nan)
    solved = 0

    def solve(objective: np.ndarray) -> np.ndarray | None:
        nonlocal solved, costs
        solved += 1
        changed = np.flatnonzero(objective != costs).astype(np.int32)
        if changed.size:
            highs.changeColsCost(changed.size, changed, objective[changed].astype(float))
        costs = objective.copy()
        highs.run()
        status = highs.getModelStatus()
        if status not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kUnbounded):
            # The warm start can stall on a degenerate basis: solve this one from scratch.
            highs.clearSolver()
            highs.run()
            status = highs.getModelStatus()
        if status == highspy.HighsModelStatus.kUnbounded:
            return None
        if status == highspy.HighsModelStatus.kOptimal:
            return np.asarray(highs.getSolution().col_value)
        from scipy.optimize import linprog

        res = linprog(objective, A_eq=A, b_eq=b, bounds=list(zip(lower, np.where(np.isinf(upper), None, upper))),
                      method="highs")
        if res.status == 3:
            return None
        if res.status != 0:
            raise RuntimeError(f"disclosure audit: linear program failed ({res.message})")
        return res.x

    def record(x: np.ndarray | None) -> None:
        if x is not None:
            np.minimum(seen_lo, x[targets], out=seen_lo)
            np.maximum(seen_hi, x[targets], out=seen_hi)

    def proven() -> np.ndarray:
        return seen_hi - seen_lo >= width - LP_TOLERANCE

    stalled = 0
    while stalled < RANDOM_OBJECTIVES and not proven().all():
        # Random directions on the cells not yet proven (the others are left free to move).
        before = int(proven().sum())
        objective = np.zeros(n)
        open_cells = targets[~proven()]
        objective[open_cells] = rng.choice([-1.0, 1.0], size=open_cells.size) * rng.uniform(0.5, 1.5,
                                                                                               size=open_cells.size)
        record(solve(objective))
        record(solve(-objective))
        stalled = stalled + 1 if int(proven().sum()) == before else 0
    for k in np.argsort(targets, kind="stable"):
        if proven()[k]:
            continue
        unit = np.zeros(n)
        unit[targets[k]] = 1.0
        x = solve(unit)
        record(x)
        exact_lo[k] = x[targets[k]]
        if proven()[k]:
            continue
        x = solve(-unit)
        record(x)
        exact_hi[k] = np.inf if x is None else x[targets[k]]
        if x is None:
            seen_hi[k] = np.inf
    lo = np.where(np.isnan(exact_lo), seen_lo, exact_lo)
    hi = np.where(np.isnan(exact_hi), seen_hi, exact_hi)
    return lo, hi, solved


# --------------------------------------------------------------------------------------------
# Protection: primary, secondary, then the audit until nothing is narrow
# --------------------------------------------------------------------------------------------

#: Audit rounds before giving up (each round hides more cells; real tables need a few).
MAX_AUDIT_ROUNDS = 100


@dataclass
class CellProtection:
    """The outcome of :func:`protect_cells`.

    Attributes
    ----------
    hidden
        Cells not shown as numbers.
    marked_small
        Hidden cells shown as ``<threshold``; the other hidden cells are shown as ``c``.
    rounds, lps
        Audit rounds run and linear programs solved.
    narrowest
        The narrowest attacker interval left among hidden cells (``inf`` with none hidden).
    """

    hidden: np.ndarray
    marked_small: np.ndarray
    rounds: int
    lps: int
    narrowest: float


def protect_cells(values: np.ndarray, relations: Sequence[tuple[int, np.ndarray]], threshold: int,
                  rule: str = "threshold", cost_factor: np.ndarray | None = None, seed: int = 0) -> CellProtection:
    """Primary and secondary suppression of linked cells, audited by linear programming.

    1. Primary: counts 1..threshold-1 are hidden and shown as ``<threshold``.
    2. Secondary: :func:`link_suppression` (no relation keeps a lone hidden member).
    3. Audit (:func:`audit_intervals`): for every hidden cell, the interval an attacker gets
       from every relation and every published mark must be at least
       :func:`required_width` wide. For each narrow cell the cheapest published non-zero cell
       of one of its relations is hidden too; where there is none (the cell is pinned by the
       bounds of ``<threshold`` marks themselves, e.g. a ward's ``<5`` over four months that
       are each ``<5``), the cell is shown as ``c`` instead, which drops its bounds. Repeat
       until no hidden cell is narrow.

    Parameters
    ----------
    values
        Every cell's count (NaN: no data).
    relations
        ``(total, parts)`` cell positions: published additive relations.
    threshold
        Smallest count shown as a number.
    rule
        ``"threshold"`` or ``"round5"`` (published numbers rounded to the nearest 5).
    cost_factor
        Multiplies a cell's value when choosing which cell to hide next (lower: hidden first).
    seed
        Seed of the audit's random objectives.

    Returns
    -------
    CellProtection
    """
    from scipy import sparse

    values = np.asarray(values, dtype=float)
    factor = np.ones_like(values) if cost_factor is None else np.asarray(cost_factor, dtype=float)
    primary = primary_mask(values, threshold)
    members = [np.append(np.asarray(parts, dtype=np.int64), total) for total, parts in relations]
    hidden = link_suppression(values, primary, members, cost_factor=factor)
    marked = primary.copy()
    if members:
        lengths = [len(m) for m in members]
        incidence = sparse.csr_matrix((np.ones(sum(lengths)), (np.concatenate(members),
                                                               np.repeat(np.arange(len(members)), lengths))),
                                      shape=(values.size, len(members)))
        incidence_t = incidence.T.tocsr()
    width = required_width(threshold)
    # A zero may be hidden too once the audit asks for more ("c" says any value, zero included):
    # beside small counts it widens what they could be at the cost of no published figure.
    unusable = np.isnan(values)
    lps, rounds = 0, 0
    # Hiding more only ever widens what an attacker can say (every published mark it replaces
    # allows the old value too), so a cell proven wide stays proven; later rounds audit the rest.
    proven_width = np.full(values.size, np.nan)
    while hidden.any() and members:
        rounds += 1
        lower, upper = attacker_bounds(values, hidden, marked, threshold, rule)
        targets = np.flatnonzero(hidden & np.isnan(proven_width))
        audit = audit_intervals(lower, upper, relations, targets, width, seed)
        lps += audit.lps
        widths = audit.upper - audit.lower
        wide = widths >= width - LP_TOLERANCE
        proven_width[targets[wide]] = widths[wide]
        if not audit.narrow.size:
            break
        if rounds >= MAX_AUDIT_ROUNDS:
            raise RuntimeError(f"disclosure audit: {audit.narrow.size} cell(s) still narrow after "
                               f"{MAX_AUDIT_ROUNDS} rounds")
        # Cells next to a dropped mark were audited against the old bounds: audit them again first.
        stale = np.zeros(values.size, dtype=bool)
        changed, last_resort = False, []

        def loosen(cells: np.ndarray) -> None:
            marked[cells] = False
            for c in cells:
                for r in incidence.indices[incidence.indptr[c]:incidence.indptr[c + 1]]:
                    stale[members[r]] = True

        for cell in audit.narrow:
            if stale[cell]:
                continue
            linked = incidence.indices[incidence.indptr[cell]:incidence.indptr[cell + 1]]
            candidates, depth = _published_nearby(cell, incidence, incidence_t, hidden, unusable)
            own = [relations[r][1] for r in linked if relations[r][0] == cell]
            parts = np.concatenate(own).astype(np.int64) if own else np.array([], np.int64)
            parts = parts[marked[parts]]
            if parts.size:
                # A hidden total pinned by its parts' "<5" marks (each at least 1): show the
                # parts as "c" (the total keeps its mark) rather than hide anything else.
                loosen(parts)
                changed = True
            elif candidates.size:
                # Hide the cheapest published cell near it (nearer is cheaper: the pin usually
                # runs through the relations next to the cell).
                hidden[candidates[np.argmin((values[candidates] + 0.5) * factor[candidates] * depth)]] = True
                changed = True
            elif marked[cell]:
                loosen(np.array([cell]))
                changed = True
            else:
                last_resort.append(linked)
        if not changed:
            # Nothing else left: drop every mark in the relations of the cells still narrow.
            for linked in last_resort:
                for r in linked:
                    loosen(members[r][marked[members[r]]])
        hidden = link_suppression(values, hidden, members, cost_factor=factor)
    shown = proven_width[hidden & ~np.isnan(proven_width)]
    narrowest = float(shown.min()) if shown.size else (width if hidden.any() else np.inf)
    return CellProtection(hidden=hidden, marked_small=marked & hidden, rounds=rounds, lps=lps, narrowest=narrowest)


#: How many relations away from a narrow cell published cells are considered for hiding.
NEARBY_DEPTH = 3


def _published_nearby(cell: int, incidence, incidence_t, hidden: np.ndarray,
                      unusable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Published non-zero cells linked to ``cell`` through chains of hidden cells, with the
    number of relations in between (up to :data:`NEARBY_DEPTH` once one is found).

    ``incidence`` is the cells x relations matrix (CSR) and ``incidence_t`` its transpose."""
    n = hidden.size
    seen = np.zeros(n, dtype=bool)
    seen[cell] = True
    frontier = np.zeros(n)
    frontier[cell] = 1.0
    depth_of = np.zeros(n)
    depth = 0
    while frontier.any() and (depth < NEARBY_DEPTH or not (depth_of > 0).any()):
        depth += 1
        relations = (incidence_t @ frontier) > 0
        reached = (incidence @ relations.astype(float)) > 0
        new = reached & ~seen
        seen |= new
        depth_of[new & ~hidden & ~unusable] = depth
        frontier = (new & hidden).astype(float)
    cells = np.flatnonzero(depth_of > 0)
    return cells, depth_of[cells]


def published_text(values: np.ndarray, protection: CellProtection | None, threshold: int,
                   rule: str = "threshold") -> np.ndarray:
    """Cells as published: ``<threshold``, ``c``, blank for no data, else the count (rounded
    to the nearest 5 under ``round5``); with ``protection=None`` every count as it is."""
    values = np.asarray(values, dtype=float)
    if protection is None:
        return format_counts(values, np.zeros(values.shape, bool), np.zeros(values.shape, bool), threshold)
    shown = rounded_counts(values) if rule == "round5" else values
    return format_counts(shown, protection.marked_small, protection.hidden & ~protection.marked_small, threshold)


# --------------------------------------------------------------------------------------------
# The policy: which counts are protected, by source
# --------------------------------------------------------------------------------------------

#: Sources whose publisher already releases the counts at ward level, with who publishes them.
PUBLISHED_BY_PUBLISHER: dict[str, str] = {
    "mps_ward": "the Metropolitan Police publishes these ward counts in full (London Datastore)",
    "police_uk": "police.uk publishes every point; counts by ward restate them",
    "mps_lsoa": "the Metropolitan Police publishes these counts in full by LSOA (London Datastore); ward "
                "counts add them up",
}
#: ``[publish] suppress``: ``"sources"`` protects what is not already public, ``"all"`` everything.
SUPPRESS_MODES = ("sources", "all")
#: ``[publish] rule``: ``"threshold"`` (1..t-1 as ``<t``) or ``"round5"`` (NHS: 1-7 hidden, rest to 5).
RULES = ("threshold", "round5")
#: The police.uk point counts of the ward table and the measure of each.
POLICE_UK_COLUMNS = {"police_uk_drugs_count": "drug_offences", "police_uk_asb_count": "asb"}
#: Published ward statistics that are functions of a measure's counts (withheld when it is protected).
STATISTIC_SUFFIXES = ("_lisa_i", "_lisa_p", "_lisa_p_adjusted", "_lisa_z", "_gi_z", "_gi_p", "_gi_p_adjusted")


@dataclass
class SourcePolicy:
    """How the counts of one source are published.

    Attributes
    ----------
    source
        Layer kind (``mps_ward``, ``police_uk``, ``asb_warnings`` ...).
    protected
        Whether its counts are suppressed and audited.
    reason
        Why, in words (shown in the manifest and on every page).
    """

    source: str
    protected: bool
    reason: str


def source_policy(source: str, public: bool | None, suppress: str, unsuppressed: bool = False) -> SourcePolicy:
    """The rule for one source.

    Parameters
    ----------
    source
        Layer kind.
    public
        The layer's ``public`` key in the study file (``None`` when not given).
    suppress
        ``[publish] suppress``: ``"sources"`` (default) or ``"all"``.
    unsuppressed
        An internal run: nothing is protected.
    """
    if unsuppressed:
        return SourcePolicy(source, False, "not suppressed: internal run")
    if suppress == "all":
        return SourcePolicy(source, True, 'protected: [publish] suppress = "all"')
    if public is False:
        return SourcePolicy(source, True, "protected: the study marks this layer public = false")
    if public is True:
        return SourcePolicy(source, False, "published in full: the study marks this layer public = true")
    if source in PUBLISHED_BY_PUBLISHER:
        return SourcePolicy(source, False, f"published in full: {PUBLISHED_BY_PUBLISHER[source]}")
    return SourcePolicy(source, True, "protected: records that are not published by their source")


# --------------------------------------------------------------------------------------------
# One study: every published count, protected together
# --------------------------------------------------------------------------------------------

#: Borough totals are hidden only as a last resort.
BOROUGH_COST_FACTOR = 100.0
#: Which cells give way first: a month before a half-period count before a ward's period count
#: (the headline analysts rank wards by).
BLOCK_COST_FACTOR = {"months": 1.0, "years": 1.5, "halves": 2.0, "previous": 3.0, "period": 4.0}


@dataclass
class StudyProtection:
    """Every count a study publishes, as published, and the rule that applied to each.

    Attributes
    ----------
    threshold, rule
        The suppression threshold in force (8 under ``round5``) and the rule.
    policies
        Measure (or police.uk column) -> :class:`SourcePolicy`.
    ward_text
        Ward-table count column -> published values (protected columns only), ward order.
    ward_hidden
        Ward-table count column -> cells not shown as numbers (protected columns only).
    monthly_text
        Count column -> published monthly counts, wards x months (protected measures only).
    yearly_text
        Count column -> published yearly counts (``wards_yearly.csv``), wards x ``years``
        (protected measures only).
    years
        The years of the run's yearly table, in order.
    borough_text
        ``(measure, part)`` -> published borough total, part ``period``, ``previous``,
        ``half1`` or ``half2`` (protected measures only).
    halves
        Measure -> half-period comparison: ``months`` (first, second), ``texts`` per ward
        ``[first, second]`` and ``borough`` ``[first, second]`` (measures without a previous
        period, when the study has at least two months). A measure some wards of which have
        only annual counts (the MPS LSOA file) is halved by whole years (the middle year of
        an odd number left out), its ``months`` those of the years.
    audit
        Summary for the manifest: cells, hidden, rounds, LPs, narrowest interval.
    """

    threshold: int
    rule: str
    policies: dict[str, SourcePolicy]
    ward_text: dict[str, np.ndarray] = field(default_factory=dict)
    ward_hidden: dict[str, np.ndarray] = field(default_factory=dict)
    monthly_text: dict[str, np.ndarray] = field(default_factory=dict)
    yearly_text: dict[str, np.ndarray] = field(default_factory=dict)
    years: list[str] = field(default_factory=list)
    borough_text: dict[tuple[str, str], str] = field(default_factory=dict)
    halves: dict[str, dict] = field(default_factory=dict)
    audit: dict = field(default_factory=dict)

    def protected(self, measure: str) -> bool:
        """Whether a measure's (or police.uk column's) counts are protected."""
        policy = self.policies.get(measure)
        return bool(policy and policy.protected)

    def rules_text(self) -> list[str]:
        """One line per source and rule saying which measures it applied to (for pages and the
        manifest), e.g. ``Drug possession, drug trafficking and all drug offences (mps_ward):
        published in full: ...``."""
        from ..config import MEASURE_LABELS

        groups: dict[tuple[str, str], list[str]] = {}
        for m, p in self.policies.items():
            if m in MEASURE_LABELS:
                groups.setdefault((p.source, p.reason), []).append(MEASURE_LABELS[m])
        lines = []
        for (source, reason), labels in groups.items():
            names = labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"
            lines.append(f"{names[:1].upper()}{names[1:]} ({source}): {reason}")
        return lines


class _Cells:
    """Cells of one protection problem, added block by block, and the relations between them."""

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []
        self.costs: list[np.ndarray] = []
        self.size = 0
        self.relations: list[tuple[int, np.ndarray]] = []
        self._values: list[float] = []

    def add(self, values, cost: float = 1.0) -> np.ndarray:
        """Add cells; returns their positions in the shape of ``values``."""
        values = np.asarray(values, dtype=float)
        positions = np.arange(self.size, self.size + values.size).reshape(values.shape)
        self.blocks.append(values.ravel())
        self.costs.append(np.full(values.size, cost))
        self._values += values.ravel().tolist()
        self.size += values.size
        return positions

    def relate(self, total: int, parts) -> None:
        """``total = sum(parts)`` is published; no-data parts drop out, a no-data total (or a
        relation the values do not satisfy) is not a relation anyone can use."""
        parts = np.asarray(parts, dtype=np.int64).ravel()
        t = self._values[int(total)]
        part_values = np.array([self._values[int(p)] for p in parts])
        present = ~np.isnan(part_values)
        if np.isnan(t) or not present.any() or abs(t - part_values[present].sum()) > 0.5:
            return
        self.relations.append((int(total), parts[present]))

    def values(self) -> np.ndarray:
        return np.concatenate(self.blocks) if self.blocks else np.empty(0)

    def cost(self) -> np.ndarray:
        return np.concatenate(self.costs) if self.costs else np.empty(0)


def _halves(months: list[str]) -> tuple[list[str], list[str]] | None:
    """First and second half of a period (the middle month of an odd period is in neither)."""
    half = len(months) // 2
    return (months[:half], months[-half:]) if half else None


def protect_study(run: "StudyRun", threshold: int, rule: str = "threshold", suppress: str = "sources",
                  unsuppressed: bool = False, seed: int = 0) -> StudyProtection:
    """Protect every count a study publishes, all together.

    For each protected measure the cells are the ward period counts, the previous-period
    counts, the monthly and yearly counts, the half-period counts of the briefings' comparisons and the
    borough totals of each; the relations are everything an attacker can add up from the
    outputs: a ward's months make its period count, its years and its halves, its years
    make its period count (a whole-year period), the wards make the
    borough totals, MPS possession and trafficking make all drug offences at every level,
    and police.uk point counts equal the ward counts they restate. :func:`protect_cells`
    suppresses and audits them as one problem. Counts of public sources are published as
    they are.

    Parameters
    ----------
    run
        The analysed study (ward table, monthly counts, months, measure sources).
    threshold
        Smallest count shown as a number (``round5`` uses :data:`ROUND5_THRESHOLD`).
    rule
        One of :data:`RULES`.
    suppress
        One of :data:`SUPPRESS_MODES`.
    unsuppressed
        Internal run: every count as it is.
    seed
        Seed of the audit's random objectives.

    Returns
    -------
    StudyProtection
    """
    from ..config import MEASURES

    if rule == "round5":
        threshold = ROUND5_THRESHOLD
    wards = run.wards
    sources = run.sources
    measures = [m for m in MEASURES if m in run.measures and f"{m}_count" in wards]

    def public_flag(source: str) -> bool | None:
        spec = run.study.layers.get(source)
        value = None if spec is None else spec.options.get("public")
        return None if value is None else bool(value)

    policies = {m: source_policy(sources.get(m, "?"), public_flag(sources.get(m, "?")), suppress, unsuppressed)
                for m in measures}
    police_columns = [c for c in POLICE_UK_COLUMNS if c in wards]
    for column in police_columns:
        policies[column] = source_policy("police_uk", public_flag("police_uk"), suppress, unsuppressed)
    result = StudyProtection(threshold=threshold, rule=rule, policies=policies)
    months = list(run.months)
    halves_months = _halves(months)
    monthly = run.monthly.set_index(["ward_code", "month"]) if len(run.monthly) else None
    codes = wards["ward_code"].to_numpy()

    def grid(measure: str) -> np.ndarray | None:
        column = f"{measure}_count"
        if monthly is None or column not in monthly or not months:
            return None
        return (monthly[column].astype("float64").unstack("month").reindex(index=codes, columns=months)
                .to_numpy(dtype=float))

    yearly = run.yearly.set_index(["ward_code", "year"]) if getattr(run, "yearly", None) is not None \
        and len(run.yearly) else None
    years = sorted(yearly.index.get_level_values("year").unique()) if yearly is not None else []
    result.years = years

    def year_grid(measure: str) -> np.ndarray | None:
        column = f"{measure}_count"
        if yearly is None or column not in yearly:
            return None
        return (yearly[column].astype("float64").unstack("year").reindex(index=codes, columns=years)
                .to_numpy(dtype=float))

    def has_previous(measure: str) -> bool:
        column = f"{measure}_previous_count"
        return column in wards and wards[column].notna().any()

    cells = _Cells()
    positions: dict[str, dict[str, np.ndarray]] = {}
    real: dict[str, dict[str, np.ndarray]] = {}
    halves_of: dict[str, tuple[str, list[list[str]]]] = {}  # measure -> ("months"|"years", the two halves)
    for m in measures:
        g = grid(m)
        blocks = {"period": wards[f"{m}_count"].astype("float64").to_numpy()}
        if has_previous(m):
            blocks["previous"] = wards[f"{m}_previous_count"].astype("float64").to_numpy()
        yg = year_grid(m)
        if yg is not None:
            blocks["years"] = yg
        if g is not None:
            blocks["months"] = g
        # Wards with years but no months (an annual source) can only be halved by whole years.
        no_months = np.isnan(g).all(axis=1) if g is not None else np.ones(len(codes), dtype=bool)
        annual = yg is not None and bool((no_months & ~np.isnan(yg).all(axis=1)).any())
        if not has_previous(m):
            if annual and _halves(years):
                halves_of[m] = ("years", list(_halves(years)))
            elif g is not None and halves_months:
                halves_of[m] = ("months", list(halves_months))
        if m in halves_of:
            unit, parts_of = halves_of[m]
            source, steps = (yg, years) if unit == "years" else (g, months)
            index = {step: k for k, step in enumerate(steps)}
            blocks["halves"] = np.column_stack([
                pd.DataFrame(source[:, [index[step] for step in part]]).sum(axis=1, min_count=len(part)).to_numpy(float)
                for part in parts_of])
        real[m] = blocks
        if not policies[m].protected:
            continue
        cost = TOTAL_COST_FACTOR if m == "drug_offences" else 1.0
        pos = {name: cells.add(v, cost * BLOCK_COST_FACTOR[name]) for name, v in blocks.items()}
        for name in ("period", "previous"):
            if name in blocks:
                pos[f"borough_{name}"] = cells.add([_total(blocks[name])], BOROUGH_COST_FACTOR)
                cells.relate(pos[f"borough_{name}"][0], pos[name])
        if "months" in pos:
            for w in range(len(codes)):
                cells.relate(pos["period"][w], pos["months"][w])
        if "years" in pos:
            # relate() drops what does not add up: a year with a month missing, a period of part-years.
            in_year = {y: [k for k, mo in enumerate(months) if mo[:4] == y] for y in years}
            for w in range(len(codes)):
                cells.relate(pos["period"][w], pos["years"][w])
                if "months" in pos:
                    for k, y in enumerate(years):
                        if in_year[y]:
                            cells.relate(pos["years"][w, k], pos["months"][w, in_year[y]])
        if "halves" in pos:
            unit, parts_of = halves_of[m]
            index = {step: k for k, step in enumerate(years if unit == "years" else months)}
            for h, part in enumerate(parts_of):
                cols = [index[step] for step in part]
                for w in range(len(codes)):
                    cells.relate(pos["halves"][w, h], pos[unit][w, cols])
                pos[f"borough_half{h + 1}"] = cells.add([_total(blocks["halves"][:, h])], BOROUGH_COST_FACTOR)
                cells.relate(pos[f"borough_half{h + 1}"][0], pos["halves"][:, h])
        positions[m] = pos
    parts = [m for m in ("possession", "trafficking") if m in positions and sources.get(m) == "mps_ward"]
    if parts and "drug_offences" in positions and sources.get("drug_offences") == "mps_ward":
        for name, total_pos in positions["drug_offences"].items():
            if all(name in positions[p] for p in parts):
                for k, t in enumerate(total_pos.ravel()):
                    cells.relate(t, [positions[p][name].ravel()[k] for p in parts])
    police_pos = {}
    for column in police_columns:
        if not policies[column].protected:
            continue
        values = wards[column].astype("float64").to_numpy()
        police_pos[column] = pos_c = cells.add(values)
        cells.relate(cells.add([_total(values)], BOROUGH_COST_FACTOR)[0], pos_c)
        measure = POLICE_UK_COLUMNS[column]
        if measure in positions and sources.get(measure) == "police_uk":
            for w in range(len(codes)):
                cells.relate(pos_c[w], [positions[measure]["period"][w]])

    values = cells.values()
    protection = protect_cells(values, cells.relations, threshold, rule, cells.cost(), seed) if values.size else None
    texts = published_text(values, protection, threshold, rule) if values.size else np.empty(0, object)
    hidden = protection.hidden if protection is not None else np.zeros(0, bool)
    result.audit = {
        "cells": int(values.size), "relations": len(cells.relations),
        "hidden": int(hidden.sum()),
        "shown_as_small": int(protection.marked_small.sum()) if protection else 0,
        "rounds": protection.rounds if protection else 0, "linear_programs": protection.lps if protection else 0,
        "narrowest_interval": (None if protection is None or not np.isfinite(protection.narrowest)
                               else round(protection.narrowest, 3)),
        "required_interval": required_width(threshold),
    }
    for m, pos in positions.items():
        result.ward_text[f"{m}_count"] = texts[pos["period"]]
        result.ward_hidden[f"{m}_count"] = hidden[pos["period"]]
        if "previous" in pos:
            result.ward_text[f"{m}_previous_count"] = texts[pos["previous"]]
            result.ward_hidden[f"{m}_previous_count"] = hidden[pos["previous"]]
        if "months" in pos:
            result.monthly_text[f"{m}_count"] = texts[pos["months"]]
        if "years" in pos:
            result.yearly_text[f"{m}_count"] = texts[pos["years"]]
        for name in ("period", "previous", "half1", "half2"):
            if f"borough_{name}" in pos:
                result.borough_text[(m, name)] = str(texts[pos[f"borough_{name}"][0]])
    for column, pos_c in police_pos.items():
        result.ward_text[column] = texts[pos_c]
        result.ward_hidden[column] = hidden[pos_c]
    for m, blocks in real.items():
        if "halves" not in blocks:
            continue
        if m in positions:
            half_texts = texts[positions[m]["halves"]].tolist()
            borough = [result.borough_text.get((m, f"half{h}"), "") for h in (1, 2)]
        else:
            half_texts = published_text(blocks["halves"], None, threshold).tolist()
            borough = [str(published_text(np.array([_total(blocks["halves"][:, h])]), None, threshold)[0])
                       for h in (0, 1)]
        unit, parts_of = halves_of[m]
        half_months = (tuple([mo for mo in months if mo[:4] in part] for part in parts_of) if unit == "years"
                       else halves_months)
        result.halves[m] = {"months": half_months, "texts": half_texts, "borough": borough}
    return result


def _total(values: np.ndarray) -> float:
    """Sum of the cells with data (NaN when none has data)."""
    values = np.asarray(values, dtype=float)
    return float(np.nansum(values)) if (~np.isnan(values)).any() else np.nan
