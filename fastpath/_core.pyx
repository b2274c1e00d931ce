# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The routing decision compiled: typed loops over bytes and flat numpy tables.

The twin of _pure.py, decision for decision. Everything here works on plain numbers and
bytes; plan parsing, checking and policy stay in Python (plan.py). The few reads that do
not fit the 64-bit codes (odd characters, very long numbers or routing codes) leave the
typed path and are looked up by canonical bytes exactly as _pure.py does.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp

import numpy as np

from . import couriers as _couriers
from . import routing_code as _routing_code
from . import waybill as _waybill
from .batch import BatchResult
from .decision import Decision, Reason
from .reads import MULTI_READ, single_read

cdef enum:
    R_PREADVICE = 1
    R_ROUTING_CODE = 2
    R_COURIER_RULE = 3
    R_COURIER_OVERRIDE = 4
    R_NO_READ = 5
    R_MULTI_READ = 6
    R_NO_RULE = 7
    R_OVERFLOW = 8
    R_REJECT = 9
    MAX_FORMAT_LEN = 32
    N_CLASSES = 37
    MAX_SEGMENTS = 12
    ROUND_ROBIN = 0
    DECISION_CACHE_LIMIT = 65536
    BATCH_CHUNK = 32

cdef uint64_t MULTIPLIER = 0x9E3779B97F4A7C15ULL
cdef int64_t RANGE_ROOT_KEY = -1
cdef int64_t SHAPE_OFFSETS[5 * 3 * 19]
cdef int64_t POW10[19]
cdef int64_t S10_WEIGHTS[8]

for _i, _v in enumerate(_waybill.SHAPE_OFFSETS):
    SHAPE_OFFSETS[_i] = _v
for _i in range(19):
    POW10[_i] = 10 ** _i
for _i, _v in enumerate((8, 6, 4, 2, 3, 5, 9, 7)):
    S10_WEIGHTS[_i] = _v

assert _routing_code.MAX_ENCODED_LEN == 12 and _routing_code.MAX_RANGE_DIGITS == 9
assert _couriers.MAX_FORMAT_LEN == MAX_FORMAT_LEN and _couriers.N_CLASSES == N_CLASSES
assert _waybill.MAX_LETTERS == 4 and _waybill.MAX_SUFFIX == 2 and _waybill.MAX_DIGITS == 18


cdef inline bint is_space(uint8_t c) noexcept nogil:
    # bytes.strip(): space, \t, \n, \v, \f, \r
    return c == 32 or (9 <= c <= 13)


cdef inline uint8_t upper(uint8_t c) noexcept nogil:
    return c - 32 if 97 <= c <= 122 else c


cdef inline void strip(const uint8_t* s, Py_ssize_t n, Py_ssize_t* start, Py_ssize_t* end) noexcept nogil:
    cdef Py_ssize_t a = 0, b = n
    while a < b and is_space(s[a]):
        a += 1
    while b > a and is_space(s[b - 1]):
        b -= 1
    start[0] = a
    end[0] = b


cdef int64_t encode_waybill(const uint8_t* s, Py_ssize_t n) noexcept nogil:
    """waybill.encode() on canonical-to-be bytes (upper-cased here); 0 when it does not fit."""
    cdef Py_ssize_t i = 0, p, d, sfx
    cdef int64_t letters = 0, digits = 0, base
    cdef uint8_t c
    while i < n:
        c = upper(s[i])
        if c < 65 or c > 90:
            break
        letters = letters * 26 + (c - 65)
        i += 1
        if i > 4:
            return 0
    p = i
    while i < n and 48 <= s[i] <= 57:
        digits = digits * 10 + (s[i] - 48)
        i += 1
        if i - p > 18:
            return 0
    d = i - p
    if d == 0:
        return 0
    while i < n:
        c = upper(s[i])
        if c < 65 or c > 90:
            return 0
        letters = letters * 26 + (c - 65)
        i += 1
        if i - p - d > 2:
            return 0
    sfx = i - p - d
    base = SHAPE_OFFSETS[(p * 3 + sfx) * 19 + d]
    if base < 0:
        return 0
    return base + letters * POW10[d] + digits


cdef inline int char_class(uint8_t c) noexcept nogil:
    if 48 <= c <= 57:
        return c - 48
    if 65 <= c <= 90:
        return c - 55
    if c == 45:
        return 36
    return -1


cdef inline int64_t probe(const int64_t* keys, int shift, uint64_t mask, int64_t key) noexcept nogil:
    """Slot holding `key` in an open-addressing table, or -1."""
    cdef uint64_t slot = (<uint64_t>key * MULTIPLIER) >> shift
    cdef int64_t found
    while True:
        found = keys[slot]
        if found == key:
            return <int64_t>slot
        if found == 0:
            return -1
        slot = (slot + 1) & mask


cdef extern from *:
    """
    static inline void sortline_prefetch(const void* p) { __builtin_prefetch(p); }
    """
    void prefetch "sortline_prefetch"(const void* p) noexcept nogil


cdef struct Prepared:
    const uint8_t* w          # the read, stripped (not yet upper-cased)
    Py_ssize_t wn
    const uint8_t* rc         # the routing code as given
    Py_ssize_t rn
    int64_t key               # 64-bit code of the read, 0 if none or it does not fit
    bint multi


cdef struct Parcel:
    int courier
    int destination
    int reason
    int chute


cdef class Engine:
    cdef readonly object plan
    cdef object _flags_obj, _slow, _route_slow
    cdef dict _cache
    cdef list _couriers, _destinations
    cdef uint8_t[::1] flags
    # pre-advice
    cdef const int64_t[::1] pa_keys
    cdef const uint16_t[::1] pa_values
    cdef int pa_shift
    cdef uint64_t pa_mask
    # courier formats
    cdef const int32_t[::1] fmt_first, fmt_candidates, fmt_courier
    cdef const uint8_t[::1] fmt_s10
    cdef const uint64_t[::1] fmt_masks
    cdef const int32_t[::1] courier_rule
    # routes
    cdef const int64_t[::1] ex_keys, px_keys, rg_keys
    cdef const uint16_t[::1] ex_values, px_values, rg_destination
    cdef const uint32_t[::1] rg_values
    cdef int ex_shift, px_shift, rg_shift
    cdef uint64_t ex_mask, px_mask, rg_mask
    cdef const int32_t[::1] rg_start, rg_count
    cdef const int64_t[::1] rg_low, rg_high
    # chute groups
    cdef const int32_t[::1] override_group
    cdef int override_stride
    cdef const int32_t[::1] group_start, group_count, group_chutes
    cdef int32_t[::1] cursors
    cdef const uint8_t[::1] group_policy
    cdef int no_read, multi_read, no_rule, overflow, reject

    def __init__(self, plan, flags):
        self.plan = plan
        self._flags_obj = flags
        self.flags = flags
        self._slow = plan.preadvice.slow
        self._route_slow = plan.route
        self._cache = {}
        self._couriers = [None] + list(plan.couriers)
        self._destinations = [None] + list(plan.destinations)
        table = plan.preadvice.table
        self.pa_keys = table.keys
        self.pa_values = table.values
        self.pa_shift = table.shift
        self.pa_mask = table.mask
        flat = plan.flat
        self._load_couriers(flat)
        self._load_routes(flat)
        self._load_groups(flat)
        special = plan.special
        self.no_read, self.multi_read, self.no_rule = special["no_read"], special["multi_read"], special["no_rule"]
        self.overflow, self.reject = special["overflow"], special["reject"]

    def _load_couriers(self, flat):
        self.fmt_first = flat.format_first
        self.fmt_candidates = flat.format_candidates
        self.fmt_courier = flat.format_courier
        self.fmt_s10 = flat.format_s10
        self.fmt_masks = flat.format_masks
        self.courier_rule = flat.courier_rule

    def _load_routes(self, flat):
        self.ex_keys, self.ex_values = flat.exact.keys, flat.exact.values
        self.ex_shift, self.ex_mask = flat.exact.shift, flat.exact.mask
        self.px_keys, self.px_values = flat.prefix.keys, flat.prefix.values
        self.px_shift, self.px_mask = flat.prefix.shift, flat.prefix.mask
        self.rg_keys, self.rg_values = flat.range_parent.keys, flat.range_parent.values
        self.rg_shift, self.rg_mask = flat.range_parent.shift, flat.range_parent.mask
        self.rg_start, self.rg_count = flat.range_start, flat.range_count
        self.rg_low, self.rg_high, self.rg_destination = flat.range_low, flat.range_high, flat.range_destination

    def _load_groups(self, flat):
        self.group_start, self.group_count = flat.group_start, flat.group_count
        self.group_chutes, self.group_policy = flat.group_chutes, flat.group_policy
        self.override_group, self.override_stride = flat.override_group, flat.override_stride
        # Spread cursors are this engine's own: a new plan starts its round robin afresh.
        self.cursors = np.full(len(flat.group_count), -1, np.int32)

    # ---- typed steps -------------------------------------------------------------------

    cdef int detect(self, const uint8_t* s, Py_ssize_t n) noexcept nogil:
        cdef int f, i, cls, total, at, bucket
        cdef const uint64_t* masks
        if n == 0 or n > MAX_FORMAT_LEN:
            return 0
        cls = char_class(upper(s[0]))
        if cls < 0:
            return 0
        bucket = n * N_CLASSES + cls
        for at in range(self.fmt_first[bucket], self.fmt_first[bucket + 1]):
            f = self.fmt_candidates[at]
            masks = &self.fmt_masks[f * MAX_FORMAT_LEN]
            for i in range(1, n):
                cls = char_class(upper(s[i]))
                if cls < 0 or not (masks[i] >> cls) & 1:
                    break
            else:
                if self.fmt_s10[f]:
                    total = 0
                    for i in range(8):
                        total += S10_WEIGHTS[i] * (s[2 + i] - 48)
                    total = 11 - total % 11
                    if total == 10:
                        total = 0
                    elif total == 11:
                        total = 5
                    if s[10] - 48 != total:
                        continue
                return self.fmt_courier[f]
        return 0

    cdef int preadvice(self, int64_t key) noexcept nogil:
        cdef int64_t slot = probe(&self.pa_keys[0], self.pa_shift, self.pa_mask, key)
        return 0 if slot < 0 else self.pa_values[slot]

    cdef int route(self, const uint8_t* s, Py_ssize_t n) noexcept nogil:
        """Destination of a raw routing code; -1 when it needs the slow path, -2 when empty."""
        cdef int64_t value = 0, number = 0, parent = RANGE_ROOT_KEY, slot
        cdef int64_t prefixes[MAX_SEGMENTS]
        cdef int n_prefixes = 0, v, length = 0, digits = 0, lo, hi, mid, start, dest
        cdef bint pending = False, all_digits = True
        cdef uint8_t c
        cdef Py_ssize_t a, b, i
        strip(s, n, &a, &b)
        for i in range(a, b):
            c = s[i]
            if c == 45 or c == 32:
                pending = length > 0
                continue
            c = upper(c)
            if 48 <= c <= 57:
                v = c - 47
            elif 65 <= c <= 90:
                v = c - 54
            else:
                return -1
            if pending:
                prefixes[n_prefixes] = value
                n_prefixes += 1
                parent = value
                value = value * 37 + 37
                length += 1
                pending = False
                digits = 0
                number = 0
                all_digits = True
            value = value * 37 + v
            length += 1
            if length > 12:
                return -1
            if v <= 10:
                digits += 1
                number = number * 10 + (v - 1)
            else:
                all_digits = False
        if length == 0:
            return -2
        slot = probe(&self.ex_keys[0], self.ex_shift, self.ex_mask, value)
        if slot >= 0:
            return self.ex_values[slot]
        if all_digits and digits <= 9:
            slot = probe(&self.rg_keys[0], self.rg_shift, self.rg_mask, parent)
            if slot >= 0:
                start = self.rg_start[self.rg_values[slot] - 1]
                lo = 0
                hi = self.rg_count[self.rg_values[slot] - 1]
                while lo < hi:
                    mid = (lo + hi) // 2
                    if self.rg_low[start + mid] <= number:
                        lo = mid + 1
                    else:
                        hi = mid
                if lo > 0 and self.rg_high[start + lo - 1] >= number:
                    return self.rg_destination[start + lo - 1]
        slot = probe(&self.px_keys[0], self.px_shift, self.px_mask, value)
        if slot >= 0:
            return self.px_values[slot]
        while n_prefixes > 0:
            n_prefixes -= 1
            slot = probe(&self.px_keys[0], self.px_shift, self.px_mask, prefixes[n_prefixes])
            if slot >= 0:
                return self.px_values[slot]
        return 0

    cdef int pick(self, int group) noexcept nogil:
        cdef int n = self.group_count[group], start = self.group_start[group], step, at, chute
        if self.group_policy[group] == ROUND_ROBIN:
            for step in range(1, n + 1):
                at = (self.cursors[group] + step) % n
                chute = self.group_chutes[start + at]
                if not self.flags[chute]:
                    self.cursors[group] = at
                    return chute
            return 0
        for at in range(n):
            chute = self.group_chutes[start + at]
            if not self.flags[chute]:
                return chute
        return 0

    cdef inline int special(self, int chute) noexcept nogil:
        return chute if not self.flags[chute] else self.reject

    cdef void finish(self, Parcel* p) noexcept nogil:
        """Courier rule, override, spread and overflow, once pre-advice and routes are done."""
        cdef int group = 0
        if not p.destination and p.courier:
            p.destination = self.courier_rule[p.courier]
            p.reason = R_COURIER_RULE
        if p.courier:
            group = self.override_group[p.courier * self.override_stride + p.destination]
            if not group:
                group = self.override_group[p.courier * self.override_stride]
        if group:
            p.reason = R_COURIER_OVERRIDE
        elif p.destination:
            group = p.destination
        else:
            p.reason = R_NO_RULE
            p.chute = self.special(self.no_rule)
            return
        p.chute = self.pick(group)
        if p.chute:
            return
        if not self.flags[self.overflow]:
            p.chute = self.overflow
            p.reason = R_OVERFLOW
        else:
            p.chute = self.reject
            p.reason = R_REJECT

    # ---- from Python objects to plain bytes, then to a Parcel --------------------------------

    cdef object prepare(self, object waybills, object code, Prepared* q):
        """Point q at the read and routing-code bytes; returns an object to keep alive, if any."""
        cdef object keep = None, wobj
        cdef Py_ssize_t a = 0, b = 0
        q.w = NULL
        q.wn = 0
        q.rc = NULL
        q.rn = 0
        q.key = 0
        q.multi = False
        if waybills is None:
            pass
        elif type(waybills) is list or type(waybills) is tuple:
            if len(waybills) == 1:
                wobj = waybills[0]
                q.w = _bytes_of(wobj, &q.wn)
                if q.w == NULL:
                    keep = _waybill.canonical(wobj)
            elif len(waybills) > 1:
                keep = self.prepare_several(waybills, q)
                if keep is waybills:
                    keep = single_read(waybills)    # a read C cannot take as it is
        elif type(waybills) is str or type(waybills) is bytes:
            q.w = _bytes_of(waybills, &q.wn)
            if q.w == NULL:
                keep = _waybill.canonical(waybills)
        else:
            keep = single_read(waybills)
        if keep is not None:
            if keep is MULTI_READ:
                q.multi = True
                return None
            q.w = <const uint8_t*>PyBytes_AS_STRING(keep)
            q.wn = PyBytes_GET_SIZE(keep)
        if q.w != NULL:
            strip(q.w, q.wn, &a, &b)
            q.w += a
            q.wn = b - a
            q.key = encode_waybill(q.w, q.wn)
        if code is not None:
            q.rc = _bytes_of(code, &q.rn)
            if q.rc == NULL:
                code = _routing_code.canonical(code)
                if code is not None:
                    q.rc = <const uint8_t*>PyBytes_AS_STRING(code)
                    q.rn = PyBytes_GET_SIZE(code)
                    keep = (keep, code)
        return keep

    cdef object prepare_several(self, object waybills, Prepared* q):
        """single_read() on two or more reads without making canonical copies of them.

        Points q at the first non-empty read (the list keeps it alive) and returns None, or
        returns MULTI_READ; returns waybills itself, q untouched, at the first read that is not
        plain str/bytes: Python then decides the whole list, in the same order.
        """
        cdef const uint8_t* w
        cdef Py_ssize_t wn, a, b
        for read in waybills:
            w = _bytes_of(read, &wn)
            if w == NULL:
                q.w = NULL
                q.wn = 0
                return waybills
            strip(w, wn, &a, &b)
            if a == b:
                continue
            if q.w == NULL:
                q.w = w + a
                q.wn = b - a
            elif not _same_canonical(q.w, q.wn, w + a, b - a):
                q.w = NULL
                q.wn = 0
                return MULTI_READ
        return None

    cdef int complete(self, Prepared* q, Parcel* p) except -1:
        p.courier = 0
        p.destination = 0
        p.reason = 0
        p.chute = 0
        if q.multi:
            p.reason = R_MULTI_READ
            p.chute = self.special(self.multi_read)
            return 0
        cdef bint has_code = q.rc != NULL
        if q.wn > 0:
            p.courier = self.detect(q.w, q.wn)
            if q.key:
                p.destination = self.preadvice(q.key)
            elif self._slow:
                p.destination = self._slow.get(bytes(q.w[:q.wn]).upper(), 0)
            p.reason = R_PREADVICE
        if not p.destination and has_code:
            p.destination = self.route(q.rc, q.rn)
            if p.destination == -1:
                p.destination = self._route_slow(_routing_code.canonical(bytes(q.rc[:q.rn])))
            if p.destination == -2:
                p.destination = 0
                has_code = False
            else:
                p.reason = R_ROUTING_CODE
        if q.wn == 0 and not has_code:
            p.reason = R_NO_READ
            p.chute = self.special(self.no_read)
            return 0
        self.finish(p)
        return 0

    cdef object decision_of(self, Parcel* p):
        cdef int64_t key = ((<int64_t>p.chute * 16 + p.reason) * 256 + p.courier) * 65536 + p.destination
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= DECISION_CACHE_LIMIT:
                self._cache.clear()
            found = Decision(p.chute, Reason(p.reason), self._couriers[p.courier], self._destinations[p.destination])
            self._cache[key] = found
        return found

    def decide(self, waybills, code=None):
        cdef Prepared q
        cdef Parcel p
        keep = self.prepare(waybills, code, &q)
        self.complete(&q, &p)
        return self.decision_of(&p)

    def decide_batch(self, waybills, codes=None):
        """Decisions for many parcels in order: arrays chute, reason, courier, destination.

        Works in chunks: first every parcel of the chunk is turned into bytes and its
        pre-advice slot prefetched, then the chunk is decided, so that the table's cache
        misses overlap instead of queueing.
        """
        cdef Py_ssize_t i, j, start, stop, n = len(waybills)
        cdef uint64_t slot
        cdef Prepared qs[BATCH_CHUNK]
        cdef Parcel p
        if codes is not None and len(codes) != n:
            raise ValueError(f"{n} waybill entries but {len(codes)} routing codes")
        cdef list reads = waybills if type(waybills) is list else list(waybills)
        cdef list route_codes = None if codes is None else (codes if type(codes) is list else list(codes))
        out = BatchResult(n, self.plan)
        cdef int16_t[::1] chute = out.chute
        cdef uint8_t[::1] reason = out.reason, courier = out.courier
        cdef uint16_t[::1] destination = out.destination
        cdef list keep = [None] * BATCH_CHUNK
        for start in range(0, n, BATCH_CHUNK):
            stop = min(n, start + BATCH_CHUNK)
            for i in range(start, stop):
                j = i - start
                keep[j] = self.prepare(reads[i], None if route_codes is None else route_codes[i], &qs[j])
                if qs[j].key:
                    slot = (<uint64_t>qs[j].key * MULTIPLIER) >> self.pa_shift
                    prefetch(&self.pa_keys[slot])
                    prefetch(&self.pa_values[slot])
            for i in range(start, stop):
                self.complete(&qs[i - start], &p)
                chute[i] = p.chute
                reason[i] = p.reason
                courier[i] = p.courier
                destination[i] = p.destination
        return out


cdef bint _same_canonical(const uint8_t* s, Py_ssize_t n, const uint8_t* t, Py_ssize_t m) noexcept nogil:
    """Whether two stripped reads are the same waybill: equal once upper-cased (bytes.upper)."""
    cdef Py_ssize_t i
    if n != m:
        return False
    for i in range(n):
        if upper(s[i]) != upper(t[i]):
            return False
    return True


cdef const uint8_t* _bytes_of(object obj, Py_ssize_t* n) except? NULL:
    """UTF-8 bytes of a str or bytes without copying; NULL when Python must handle it."""
    cdef const char* data
    if type(obj) is str:
        try:
            data = PyUnicode_AsUTF8AndSize(obj, n)
        except UnicodeEncodeError:
            return NULL
        return <const uint8_t*>data
    if type(obj) is bytes:
        n[0] = PyBytes_GET_SIZE(obj)
        return <const uint8_t*>PyBytes_AS_STRING(obj)
    return NULL


# ---- building tables (run in the reload thread, GIL released) ------------------------------

def fill_table(const int64_t[::1] keys, const uint16_t[::1] values, int64_t[::1] table_keys,
               uint16_t[::1] table_values, int shift):
    """Insert keys in order, later duplicates winning: (distinct, conflicts, first conflict)."""
    cdef Py_ssize_t i, n = keys.shape[0], distinct = 0, conflicts = 0, first = -1
    cdef uint64_t mask = table_keys.shape[0] - 1, slot
    cdef int64_t key
    with nogil:
        for i in range(n):
            key = keys[i]
            slot = (<uint64_t>key * MULTIPLIER) >> shift
            while True:
                if table_keys[slot] == 0:
                    table_keys[slot] = key
                    table_values[slot] = values[i]
                    distinct += 1
                    break
                if table_keys[slot] == key:
                    if table_values[slot] != values[i]:
                        conflicts += 1
                        if first < 0:
                            first = i
                        table_values[slot] = values[i]
                    break
                slot = (slot + 1) & mask
    return distinct, conflicts, first


cdef inline uint64_t fnv1a(const uint8_t* s, Py_ssize_t n) noexcept nogil:
    cdef uint64_t h = 1469598103934665603ULL
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ s[i]) * 1099511628211ULL
    return h


def scan_preadvice(const uint8_t[::1] data, dict names):
    """Plain lines of a pre-advice file, scanned without the GIL.

    Returns (keys, destinations, lines, left): one slot per record line in file order; a
    plain line ("WAYBILL , name" in printable ASCII with a waybill that has a code and a
    known destination) is filled here, every other one is left at key 0 and listed in
    `left` as (slot, start, end) for the Python rules, as is the first record line (it may
    be a header).
    """
    cdef Py_ssize_t size = data.shape[0], n_lines = 1, i
    with nogil:
        for i in range(size):
            if data[i] == 10:
                n_lines += 1
    # Destination names in a small open-addressing table keyed by FNV-1a.
    name_list = list(names.items())
    cdef Py_ssize_t capacity = 16
    while capacity < 2 * len(name_list):
        capacity *= 2
    blob = b"".join(name for name, _ in name_list)
    cdef const uint8_t[::1] name_bytes = blob if blob else b"\0"
    cdef int64_t[::1] name_start = np.zeros(len(name_list) + 1, np.int64)
    cdef int32_t[::1] name_index = np.zeros(len(name_list) + 1, np.int32)
    cdef int32_t[::1] name_slots = np.zeros(capacity, np.int32)
    cdef Py_ssize_t offset = 0, k
    cdef uint64_t h
    for k, (name, index) in enumerate(name_list):
        name_start[k] = offset
        name_index[k] = index
        offset += len(name)
        h = fnv1a(&name_bytes[name_start[k]], len(name)) & (capacity - 1) if len(name) else 0
        while name_slots[h]:
            h = (h + 1) & (capacity - 1)
        name_slots[h] = k + 1
    name_start[len(name_list)] = offset

    keys_arr = np.zeros(n_lines, np.int64)
    destinations_arr = np.zeros(n_lines, np.uint16)
    lines_arr = np.zeros(n_lines, np.int32)
    left_arr = np.zeros((0, 3), np.int64)
    cdef int64_t[::1] keys = keys_arr
    cdef uint16_t[::1] destinations = destinations_arr
    cdef int32_t[::1] lines = lines_arr
    cdef Py_ssize_t pos = 0, end, a, b, comma, slot = 0, line_no = 0, w_a, w_b, d_a, d_b, n_left = 0, cap_left = 1024
    cdef bint plain, seen_first = False
    cdef uint8_t c
    cdef int64_t key
    cdef int32_t found
    cdef int64_t* left = <int64_t*>malloc(cap_left * 3 * sizeof(int64_t))
    cdef int64_t* grown
    if left == NULL:
        raise MemoryError()
    try:
        with nogil:
            while pos <= size:
                end = pos
                while end < size and data[end] != 10:
                    end += 1
                line_no += 1
                _strip_span(&data[0], pos, end, &a, &b)
                if a < b and data[a] != 35:
                    lines[slot] = <int32_t>line_no
                    plain = seen_first
                    seen_first = True
                    comma = -1
                    if plain:
                        for i in range(a, b):
                            c = data[i]
                            if c < 32 or c == 127 or (c >= 128 and comma < 0):
                                plain = False
                                break
                            if c == 44:
                                if comma >= 0:
                                    plain = False
                                    break
                                comma = i
                        plain = plain and comma >= 0
                    if plain:
                        w_a, w_b = a, comma
                        while w_a < w_b and data[w_a] == 32:
                            w_a += 1
                        while w_b > w_a and data[w_b - 1] == 32:
                            w_b -= 1
                        key = encode_waybill(&data[w_a], w_b - w_a) if w_b > w_a else 0
                        d_a, d_b = comma + 1, b
                        while d_a < d_b and data[d_a] == 32:
                            d_a += 1
                        while d_b > d_a and data[d_b - 1] == 32:
                            d_b -= 1
                        found = 0
                        if key and d_b > d_a:
                            h = fnv1a(&data[d_a], d_b - d_a) & (capacity - 1)
                            while name_slots[h]:
                                k = name_slots[h] - 1
                                if (name_start[k + 1] - name_start[k] == d_b - d_a
                                        and memcmp(&name_bytes[name_start[k]], &data[d_a], d_b - d_a) == 0):
                                    found = name_index[k]
                                    break
                                h = (h + 1) & (capacity - 1)
                        if found:
                            keys[slot] = key
                            destinations[slot] = <uint16_t>found
                        else:
                            plain = False
                    if not plain:
                        if n_left == cap_left:
                            cap_left *= 2
                            grown = <int64_t*>realloc(left, cap_left * 3 * sizeof(int64_t))
                            if grown == NULL:
                                with gil:
                                    raise MemoryError()
                            left = grown
                        left[n_left * 3] = slot
                        left[n_left * 3 + 1] = a
                        left[n_left * 3 + 2] = b
                        n_left += 1
                    slot += 1
                pos = end + 1
        if n_left:
            left_arr = np.asarray(<int64_t[:n_left * 3]>left).reshape(n_left, 3).copy()
    finally:
        free(left)
    return keys_arr[:slot], destinations_arr[:slot], lines_arr[:slot], left_arr.tolist()


cdef inline void _strip_span(const uint8_t* s, Py_ssize_t start, Py_ssize_t end, Py_ssize_t* a, Py_ssize_t* b) noexcept nogil:
    while start < end and is_space(s[start]):
        start += 1
    while end > start and is_space(s[end - 1]):
        end -= 1
    a[0] = start
    b[0] = end


def waybill_code(data):
    """64-bit code of a read (str or bytes) as the compiled path computes it; 0 if it does not fit."""
    cdef Py_ssize_t n = 0, a = 0, b = 0
    cdef const uint8_t* s = _bytes_of(data, &n)
    if s == NULL:
        data = _waybill.canonical(data)
        s = <const uint8_t*>PyBytes_AS_STRING(data)
        n = PyBytes_GET_SIZE(data)
    strip(s, n, &a, &b)
    return encode_waybill(s + a, b - a)
