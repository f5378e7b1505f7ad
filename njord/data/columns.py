"""Arrow columns as numpy arrays and back, through their buffers.

pyarrow imports pandas, when it is installed, the first time it converts a Python or numpy
value (`pa.array`, a Python scalar in a compute call) or hands out a numpy array
(`to_numpy`): half a second at startup, as long as the loop takes over a month of bars.
The bar feed and the exports move their columns through the buffers instead, which is
zero-copy as well, and leave pyarrow.compute (a tenth of a second to import) to the rarer
paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

Bools = npt.NDArray[np.bool_]
_DTYPES = {pa.int64(): np.dtype(np.int64), pa.float64(): np.dtype(np.float64)}


def numbers(column: pa.Array | pa.ChunkedArray) -> npt.NDArray[Any]:
    """The values of an int64 or float64 column, read-only; a null's slot holds anything
    (check `nulls`). Other types are converted (the rare path: pyarrow's own)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    dtype = _DTYPES.get(column.type)
    if dtype is None:
        return np.asarray(column.to_numpy(zero_copy_only=False))
    data = column.buffers()[1]
    if data is None or not len(column):
        return np.zeros(0, dtype)
    return np.frombuffer(data, dtype, count=len(column), offset=column.offset * dtype.itemsize)


def flags(column: pa.Array) -> Bools:
    """The values of a bool column (a null's slot holds anything)."""
    return _bits(column.buffers()[1], column.offset, len(column))


def nulls(column: pa.Array | pa.ChunkedArray) -> Bools:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not column.null_count:
        return np.zeros(len(column), np.bool_)
    return ~_bits(column.buffers()[0], column.offset, len(column))


def _bits(buffer: pa.Buffer | None, offset: int, n: int) -> Bools:
    if buffer is None or not n:
        return np.zeros(n, np.bool_)
    packed = np.frombuffer(buffer, np.uint8)
    return np.unpackbits(packed, count=offset + n, bitorder="little")[offset:].astype(np.bool_)


def from_numbers(values: npt.ArrayLike, kind: pa.DataType, valid: Bools | None = None) -> pa.Array:
    """An int64 or float64 Arrow array of `values`; `valid` marks the non-null ones."""
    data = np.ascontiguousarray(values, dtype=_DTYPES[kind])
    return pa.Array.from_buffers(kind, len(data), [_validity(valid), pa.py_buffer(data)])


def from_flags(values: Bools) -> pa.Array:
    bits = np.packbits(np.asarray(values, np.bool_), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])


def _validity(valid: Bools | None) -> pa.Buffer | None:
    if valid is None or valid.all():
        return None
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def from_values(values: Sequence[Any], kind: pa.DataType) -> pa.Array:
    """An int64, float64 or string Arrow array of Python values, None for null."""
    valid = None
    if None in values:
        valid = np.array([v is not None for v in values], np.bool_)
        values = [0 if v is None else v for v in values] if kind != pa.string() else values
    if kind != pa.string():
        return from_numbers(np.array(values, _DTYPES[kind]), kind, valid)
    encoded = [b"" if v is None else v.encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    if offsets[-1] >= 2**31:  # beyond a string array's 32-bit offsets: pyarrow's own way
        return pa.array(values, pa.string())
    data = pa.py_buffer(b"".join(encoded))
    buffers = [_validity(valid), pa.py_buffer(offsets.astype(np.int32)), data]
    return pa.Array.from_buffers(pa.string(), len(encoded), buffers)
