"""Waybill reads: the canonical form, and the 64-bit code the routing core looks them up by.

A read is canonical once it is UTF-8 bytes, stripped of ASCII whitespace at both ends and
with ASCII letters upper-cased: barcodes give upper case, OCR may not, and pre-advice files
carry stray spaces.

The code packs the shapes every courier uses into one signed 64-bit integer (0 = "does not
fit", which also marks an empty slot in the pre-advice table):

    letters (p)  digits (d)  letters (s)   e.g.
    0            1..18       0             ZTO/Yunda/STO/EMS domestic (12-15 digits)
    1            1..16       0
    2            1..15       0             SF, YT, JT + 13 digits
    3            1..14       0             JDX/JDK + 12 digits
    4            1..12       0             JDV? + 11 digits
    2            1..10       2             UPU S10 (RR123456785CN)

Each (p, s, d) shape owns a disjoint range of codes, so the code is a bijection on these
strings (leading zeros count). Anything else (longer numbers, other characters, non-ASCII)
takes the slow path: the same lookup by the canonical bytes in a Python dict.
"""

MAX_LETTERS = 4
MAX_SUFFIX = 2
MAX_DIGITS = 18
# The longest waybill a pre-advice record may carry. Real numbers have 10 to 22 characters (UPU
# S10 13, SF and J&T 15, the longest digit runs 18); a courier format may spell out 32
# (couriers.MAX_FORMAT_LEN). A longer field is a broken export (columns run together, a text
# pasted into the cell), not a waybill.
MAX_CHARS = 40
_SHAPE_LIMITS = {(0, 0): 18, (1, 0): 16, (2, 0): 15, (3, 0): 14, (4, 0): 12, (2, 2): 10}


def _shape_offsets():
    """Flat table indexed by (p * 3 + s) * 19 + d: first code of that shape, or -1."""
    offsets = [-1] * (5 * 3 * 19)
    next_code = 1
    for (p, s), max_d in _SHAPE_LIMITS.items():
        for d in range(1, max_d + 1):
            offsets[(p * 3 + s) * 19 + d] = next_code
            next_code += 26 ** (p + s) * 10 ** d
    assert next_code < 2 ** 63
    return offsets


SHAPE_OFFSETS = _shape_offsets()


def canonical(read):
    """Canonical bytes of one read (str or bytes); b"" when nothing is left."""
    if isinstance(read, str):
        raw = read.encode("utf-8", "surrogatepass")
    elif isinstance(read, (bytes, bytearray, memoryview)):
        raw = bytes(read)
    else:
        raise TypeError(f"a waybill read must be str or bytes, not {type(read).__name__}")
    return raw.strip().upper()


def encode(canon):
    """64-bit code of canonical bytes, or 0 when they do not fit one of the shapes.

    Linear in the length, and it stops as soon as a run is too long for any shape: the letters
    and digits are summed into integers, which would grow with the run (a 5 MB field took
    minutes), as the compiled core's encode_waybill stops too.
    """
    n = len(canon)
    i = 0
    letters = 0
    while i < n and 65 <= canon[i] <= 90:
        if i == MAX_LETTERS:
            return 0
        letters = letters * 26 + (canon[i] - 65)
        i += 1
    p = i
    digits = 0
    while i < n and 48 <= canon[i] <= 57:
        if i - p == MAX_DIGITS:
            return 0
        digits = digits * 10 + (canon[i] - 48)
        i += 1
    d = i - p
    if d == 0:
        return 0
    while i < n and 65 <= canon[i] <= 90:
        if i - p - d == MAX_SUFFIX:
            return 0
        letters = letters * 26 + (canon[i] - 65)
        i += 1
    s = i - p - d
    if i != n:
        return 0
    base = SHAPE_OFFSETS[(p * 3 + s) * 19 + d]
    if base < 0:
        return 0
    return base + letters * 10 ** d + digits


def _shape_starts():
    starts = []
    for index, base in enumerate(SHAPE_OFFSETS):
        if base >= 0:
            p_s, d = divmod(index, 19)
            p, s = divmod(p_s, 3)
            starts.append((base, p, s, d))
    return sorted(starts)


_SHAPE_STARTS = _shape_starts()
_SHAPE_BASES = [base for base, _, _, _ in _SHAPE_STARTS]


def decode(code):
    """Canonical bytes of a code made by encode(); inverse of encode on its shapes."""
    import bisect
    if code <= 0:
        raise ValueError(f"{code} is not a waybill code")
    base, p, s, d = _SHAPE_STARTS[bisect.bisect_right(_SHAPE_BASES, code) - 1]
    letters, digits = divmod(code - base, 10 ** d)
    if letters >= 26 ** (p + s):
        raise ValueError(f"{code} is not a waybill code")
    chars = []
    for _ in range(p + s):
        letters, c = divmod(letters, 26)
        chars.append(chr(65 + c))
    chars.reverse()
    return ("".join(chars[:p]) + str(digits).zfill(d) + "".join(chars[p:])).encode("ascii")
