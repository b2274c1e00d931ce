"""Big plan arrays: their own mapping, zeroed and writable, unmapped only once nothing uses it."""
import time

import numpy as np

from fastpath import mapped_arrays, hashtable


def _mapping_of(address):
    with open("/proc/self/maps") as f:
        for line in f:
            low, high = (int(x, 16) for x in line.split()[0].split("-"))
            if low <= address < high:
                return line.split()[0]
    return None


def test_a_big_array_is_unmapped_once_nothing_uses_it():
    array = mapped_arrays.zeros(mapped_arrays.MIN_BYTES, np.int64)
    assert array.flags.writeable and not array.any() and array.nbytes == 8 * mapped_arrays.MIN_BYTES
    array[::4096] = 7
    span = _mapping_of(array.__array_interface__["data"][0])
    address = array.__array_interface__["data"][0]
    view = array[5:]
    del array
    time.sleep(0.05)
    assert _mapping_of(address) == span and int(view[4091]) == 7
    del view
    deadline = time.monotonic() + 5
    while _mapping_of(address) == span and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _mapping_of(address) != span


def test_small_arrays_are_plain_and_tables_use_big_ones():
    small = mapped_arrays.zeros(10, np.uint16)
    assert small.base is None and small.dtype == np.uint16
    keys = np.arange(1, 200_001, dtype=np.int64)
    table = hashtable.build(keys, keys % 100, np.uint16)
    assert table.keys.base is not None and table.get(12345) == 45 and table.get(400_000) == 0
