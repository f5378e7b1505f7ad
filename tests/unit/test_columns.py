"""njord.data.columns: Arrow columns to numpy and back through their buffers, the same
values pyarrow's own conversions give (which import pandas)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from njord.data.columns import flags, from_flags, from_numbers, from_values, nulls, numbers


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([3, -1, None, 2**62, 0], pa.int64()),
        ([1.5, None, float("-inf"), -0.0, 1e300], pa.float64()),
        (["BUY", None, "", "nj1a2b-28401-0", "é"], pa.string()),
        ([1, 2, 3], pa.int64()),
        ([], pa.float64()),
    ],
)
def test_from_values_is_what_pa_array_makes(values: list[Any], kind: pa.DataType) -> None:
    made = from_values(values, kind)
    made.validate(full=True)
    assert made.equals(pa.array(values, kind))


def test_numbers_and_nulls_follow_a_slice() -> None:
    whole = pa.array([1, None, 3, 4, None, 6], pa.int64())
    part = whole.slice(2, 3)  # 3, 4, None: an offset into the buffers
    assert numbers(part)[:2].tolist() == [3, 4]
    assert nulls(part).tolist() == [False, False, True]
    assert nulls(pa.chunked_array([part, whole.slice(0, 1)])).tolist() == [0, 0, 1, 0]
    assert not nulls(pa.array([1.0, 2.0])).any()


def test_flags_round_trip_at_every_offset() -> None:
    bits = np.array([i % 3 == 0 for i in range(21)])
    array = from_flags(bits)
    assert array.equals(pa.array(bits.tolist(), pa.bool_()))
    for start in range(9):
        assert flags(array.slice(start, 10)).tolist() == bits[start : start + 10].tolist()


def test_from_numbers_marks_invalid_rows_null() -> None:
    made = from_numbers(np.array([1.0, 0.0, 3.0]), pa.float64(), np.array([True, False, True]))
    assert made.to_pylist() == [1.0, None, 3.0]
