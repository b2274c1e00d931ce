"""Big plan arrays in memory mappings of their own, unmapped by a background thread.

A reload replaces the plan, and the old pre-advice table (160 MB at 10 million records) is
freed wherever its last reference drops: usually on the event loop, between two parcels.
Returning that much memory to the kernel takes from half a millisecond (huge pages) to tens of
milliseconds (4 KB pages), with the GIL held. An array made here lives in its own anonymous
mapping, asks for huge pages (a lookup in a big table then misses the TLB less), and once no
array uses the mapping any more, a background thread unmaps it with the GIL released.
"""
import mmap
import queue
import threading
import time
import weakref

import numpy as np

MIN_BYTES = 1 << 20          # below this, malloc'd memory is cheap to free anywhere

_released = queue.SimpleQueue()
_unmapper = None
_unmapper_lock = threading.Lock()


def zeros(n, dtype):
    """1-D array of n zeros; a big one in its own mapping (anonymous pages read as zeros)."""
    dtype = np.dtype(dtype)
    nbytes = n * dtype.itemsize
    if nbytes < MIN_BYTES:
        return np.zeros(n, dtype)
    # Private: a shared anonymous mapping would be shmem, which gets no huge pages.
    mapping = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        mapping.madvise(mmap.MADV_HUGEPAGE)
    array = np.frombuffer(mapping, dtype, n)
    start_unmapper()
    # The array is the only way to its memory (views and buffers of it keep it alive), so
    # the mapping may go once the array has gone.
    weakref.finalize(array, _released.put, mapping).atexit = False
    return array


def empty(n, dtype):
    """Same as zeros(): fresh anonymous pages cost nothing to zero."""
    return zeros(n, dtype)


def shared(fd, nbytes):
    """The first nbytes of file `fd` mapped read-only (uint8), unmapped in the background too."""
    mapping = mmap.mmap(fd, nbytes, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
    array = np.frombuffer(mapping, np.uint8, nbytes)
    start_unmapper()
    weakref.finalize(array, _released.put, mapping).atexit = False
    return array


def start_unmapper():
    """Start the background thread now (a Router does, at start-up) rather than at the first
    big array: starting a thread waits until it has run, milliseconds on a busy machine."""
    global _unmapper
    with _unmapper_lock:
        if _unmapper is None or not _unmapper.is_alive():
            _unmapper = threading.Thread(target=_unmap_forever, name="fastpath-unmap", daemon=True)
            _unmapper.start()


def _unmap_forever():
    while True:
        mapping = _released.get()
        while True:
            try:
                mapping.close()          # munmap with the GIL released
                break
            except BufferError:          # the array's last view is still being freed
                time.sleep(0.001)
        del mapping
