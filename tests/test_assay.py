import numpy as np
import pandas as pd
import pytest

from vsearch.evaluate.assay import assay_table, call_hits, robust_z_prime


def test_robust_z_prime_by_hand():
    # positive: median 11, |deviations| 1 1 0 2 2 -> MAD 1; negative: median 2, |deviations| 1 0 1 -> MAD 1
    # Z' = 1 - 3 (1.4826 + 1.4826) / |11 - 2| = 1 - 8.8956 / 9 = 0.01160
    assert robust_z_prime([10, 12, 11, 13, 9], [1, 2, 3]) == pytest.approx(0.0116, abs=1e-6)
    # separated tight controls approach 1; overlapping ones go negative
    assert robust_z_prime([100, 100.5, 99.5], [0, 0.5, -0.5]) == pytest.approx(1 - 3 * 2 * 1.4826 * 0.5 / 100)
    assert robust_z_prime([1, 5, 9], [2, 6, 10]) < 0
    with pytest.raises(ValueError, match="needs both controls"):
        robust_z_prime([], [1.0])


def test_hit_calls_follow_the_positive_control_side():
    assert call_hits([0, 4, 6, 10], positive=[10, 10], negative=[0, 0]).tolist() == [False, False, True, True]
    assert call_hits([0, 4, 6, 10], positive=[0], negative=[10]).tolist() == [True, True, False, False]


def test_assay_table_agreement():
    rows = []
    for source, treated in (("real", [1, 2, 8, 9]), ("pred", [1, 7, 8, 9])):
        for i, v in enumerate([0, 0.5, 10, 10.5]):
            rows.append(
                {
                    "source": source,
                    "cell_type": "lung",
                    "plate": "P",
                    "well": f"C{i}",
                    "is_control": "neg" if i < 2 else "pos",
                    "f": v,
                }
            )
        for i, v in enumerate(treated):
            rows.append(
                {"source": source, "cell_type": "lung", "plate": "P", "well": f"W{i}", "is_control": "none", "f": v}
            )
    table = assay_table(pd.DataFrame(rows), ["f"])
    row = table.iloc[0]
    assert row.call_agreement == 0.75 and row.wells_called == 4  # the second treated well flips
    assert row.z_prime_real == row.z_prime_pred == pytest.approx(1 - 3 * 2 * 1.4826 * 0.25 / 10)
    assert np.isfinite(row.z_prime_real)
