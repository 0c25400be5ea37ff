"""Disclosure control: primary suppression, secondary suppression against published totals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from geomisuse.publish.disclosure import primary_mask, protect_table, secondary_mask, suppress_value


def test_primary_suppression_of_one_to_four():
    assert primary_mask(np.array([0, 1, 4, 5, np.nan]), 5).tolist() == [False, True, True, False, False]
    assert [suppress_value(v, 5) for v in (0, 1, 4, 5, None)] == ["0", "<5", "<5", "5", ""]


def test_lone_suppressed_cell_in_a_row_with_published_total_gets_a_partner():
    frame = pd.DataFrame({"possession": [3, 10, 20], "trafficking": [8, 2, 0], "drug_offences": [11, 12, 20]})
    published, hidden = protect_table(frame, ["possession", "trafficking", "drug_offences"], 5,
                                      additive=[(["possession", "trafficking"], "drug_offences")],
                                      column_totals=False)
    # The total is hidden rather than a part up to twice its size.
    assert published["possession"].tolist() == ["<5", "10", "20"]
    assert published["trafficking"].tolist() == ["8", "<5", "0"]
    assert published["drug_offences"].tolist() == ["c", "c", "20"]
    assert hidden["possession"].tolist() == [True, False, False]
    assert hidden["drug_offences"].tolist() == [True, True, False]


def test_no_line_is_left_with_one_hidden_cell_on_random_tables():
    rng = np.random.default_rng(0)
    for _ in range(200):
        values = rng.poisson(rng.uniform(0.5, 12), size=(8, 6)).astype(float)
        primary = primary_mask(values, 5)
        hidden = primary | secondary_mask(values, primary, row_totals=True, column_totals=True)
        # Every row and column has 0 or >= 2 hidden cells, unless the line's only non-zero
        # cells are hidden (then its total is itself small and suppressed where published).
        for axis in (0, 1):
            lines = hidden if axis == 1 else hidden.T
            vals = values if axis == 1 else values.T
            for line, line_values in zip(lines, vals):
                if line.sum() == 1:
                    assert ((line_values > 0) & ~line).sum() == 0


def test_secondary_suppression_prefers_small_non_zero_cells():
    values = np.array([[2.0, 50.0, 7.0, 0.0]])
    primary = primary_mask(values, 5)
    secondary = secondary_mask(values, primary, row_totals=True, column_totals=False)
    assert secondary.tolist() == [[False, False, True, False]]
