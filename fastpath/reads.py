"""Turning the reads handed to decide() into at most one canonical waybill, for both cores."""
from . import waybill



class _MultiRead:
    def __repr__(self):
        return "MULTI_READ"


NO_READ = None
MULTI_READ = _MultiRead()


def single_read(waybills):
    """The one canonical waybill read, NO_READ (None) or MULTI_READ.

    Reads that are empty after stripping count as nothing read; reads that are the same once
    canonical (case, surrounding spaces) count once. A bare str or bytes is one read; None
    is no read.
    """
    if waybills is None:
        return NO_READ
    if isinstance(waybills, (str, bytes, bytearray)):
        waybills = (waybills,)
    found = None
    for read in waybills:
        canon = waybill.canonical(read)
        if not canon:
            continue
        if found is None:
            found = canon
        elif canon != found:
            return MULTI_READ
    return found
