"""Reading the files technicians write: regular files only, bounded in size, UTF-8 with or without a BOM.

A line config, a sort plan or a pre-advice file is whatever was saved under its name. A named
pipe there makes a plain open() wait for a writer forever; /dev/zero (or a link to it) never
ends and fills the memory; a folder, a file of gigabytes, a file saved as UTF-16 by a Windows
editor each fail with an error a technician cannot act on. Every technician file is read here:
opened without blocking, checked to be a regular file of a size its kind allows, and decoded
with the remedy in the message. Files that do not exist or may not be read raise OSError as
open() does: each caller already says what to do then.

Notepad and Excel start UTF-8 files with a byte order mark (EF BB BF): it is skipped. It sits
before the first character of line 1, so line numbers stay right.
"""
import codecs
import dataclasses
import os
import stat

BLOCK_BYTES = 64 << 20           # pre-advice files are read in blocks of this size
HEAD_BYTES = 4096                # what tells a file's encoding

MB = 1_000_000


@dataclasses.dataclass(frozen=True)
class Kind:
    """A kind of technician file: what a message calls it, how big it may be, how to save it."""
    noun: str                    # "line config", "sort plan", "pre-advice file"
    limit_bytes: int
    limit_text: str              # the limit as a technician reads it, with what it means
    too_big_remedy: str
    save_as_utf8: str = "Save it as UTF-8: in the editor's Save As, choose the encoding UTF-8"


# A line config is a few kilobytes; a megabyte is a wrong file, not a big line.
CONFIG = Kind("line config", 1 * MB, "1 MB",
              "A line config is a few kilobytes: check that the line config, not another file, was saved "
              "under this name")
# The shipped plan is 4 KB; 65,535 destinations with a rule each come to about 8 MB.
PLAN = Kind("sort plan", 16 * MB, "16 MB",
            "A plan this big is not a hand-written plan: check that the plan, not a pre-advice file or an "
            "export, was saved under this name. Pre-advice records go in the files named under [preadvice]; "
            "hundreds of thousands of [[routes]] are better written as prefix or range rules")
# Pre-advice is big by nature (millions of records); the limit is what a line keeps in memory:
# 2 GB is about 70 million records, 1.2 GB in the table and as much again while it is built.
PREADVICE = Kind("pre-advice file", 2000 * MB, "2 GB, all the plan's pre-advice files together",
                 "The line keeps every record in memory: drop the records of parcels already delivered, or "
                 "split the feed over two lines' plans",
                 'Save it as UTF-8: in Excel, Save As "CSV UTF-8 (Comma delimited)"')
# A line screen's token file: a line per technician.
TOKENS = Kind("screen token file", 64_000, "64 kB",
              "A token file has a line per technician: check that the token file, not another file, is named "
              "by [screen] token_file")


class FileRefused(Exception):
    """A technician file that is not read: the parts of the message, as PlanError and the
    config checker's Problem have them."""

    def __init__(self, path, problem, remedy, line=None):
        self.path = str(path)
        self.problem = problem
        self.remedy = remedy
        self.line = line
        where = self.path + (f":{line}" if line else "")
        super().__init__(f"{where}: {problem}. {remedy}")


def size_text(n_bytes: int) -> str:
    if n_bytes >= 1000 * MB:
        return f"{n_bytes / (1000 * MB):.1f} GB"
    if n_bytes >= MB:
        return f"{n_bytes / MB:.1f} MB"
    return f"{n_bytes:,} bytes"


def open_regular(path, kind: Kind) -> tuple[int, int]:
    """(descriptor, size) of `path` opened for reading, once it is known to be a regular file
    no bigger than its kind allows; FileRefused otherwise, OSError when it cannot be opened.

    O_NONBLOCK: opening a named pipe for reading otherwise waits until something writes to it.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_a_file(path, st.st_mode, kind)
        check_size(path, st.st_size, kind)
    except BaseException:
        os.close(fd)
        raise
    return fd, st.st_size


def check_size(path, n_bytes: int, kind: Kind, others_bytes: int = 0) -> None:
    """Refuse a file of `n_bytes` when, with `others_bytes` of files of its kind read before it
    (the plan's other pre-advice files), it comes to more than the kind's limit."""
    if n_bytes + others_bytes <= kind.limit_bytes:
        return
    if others_bytes:
        problem = (f"the {kind.noun} is {size_text(n_bytes)}; with the plan's other {kind.noun}s "
                   f"({size_text(others_bytes)}) that is more than a line takes ({kind.limit_text})")
    else:
        problem = f"the {kind.noun} is {size_text(n_bytes)}, more than a {kind.noun} may be ({kind.limit_text})"
    raise FileRefused(path, problem, kind.too_big_remedy)


def _not_a_file(path, mode: int, kind: Kind) -> FileRefused:
    what = ("a named pipe" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode) else
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else
            "not a regular file")
    target = os.path.realpath(path)
    if target != os.path.abspath(path):
        what += f" ({path} points to {target})"
    if stat.S_ISDIR(mode):
        remedy = f"Give the path of the {kind.noun} itself, or put the file back where a folder now is"
    else:
        remedy = f"Save the {kind.noun} as a regular file"
    return FileRefused(path, f"the {kind.noun} is {what}, not a file", remedy)


def read_bytes(path, kind: Kind) -> bytes:
    """The whole file, checked as open_regular checks it; a file that grows past the limit while
    it is read is refused too."""
    fd, size = open_regular(path, kind)
    try:
        return _read_up_to(fd, path, kind, size)
    finally:
        os.close(fd)


def _read_up_to(fd: int, path, kind: Kind, expected: int) -> bytes:
    parts, total = [], 0
    while True:
        # One read for a file of the size fstat gave; a bigger one (it grew) reads on.
        want = min(max(expected + 1 - total, 1 << 16), kind.limit_bytes + 1 - total)
        chunk = os.read(fd, want)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        total += len(chunk)
        check_size(path, total, kind)


def read_text(path, kind: Kind) -> str:
    """The file as text: checked, BOM skipped, UTF-16 and bytes that are not UTF-8 named."""
    return decode(path, read_bytes(path, kind), kind)


def decode(path, data: bytes, kind: Kind) -> str:
    check_encoding(path, data, kind)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FileRefused(path, f"the {kind.noun} is not UTF-8 text ({exc.reason} at byte {exc.start})",
                          "Save it as UTF-8 in the editor", line=line) from None


def skip_bom(data: bytes) -> bytes:
    """The first block of a file without its UTF-8 byte order mark."""
    return data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data


def check_encoding(path, head: bytes, kind: Kind) -> None:
    """Refuse UTF-16 and UTF-32 from the first bytes of a file, with or without their BOM."""
    wide = _wide_encoding(head[:HEAD_BYTES])
    if wide:
        raise FileRefused(path, f"the {kind.noun} is {wide} text, not UTF-8", kind.save_as_utf8)


def _wide_encoding(head: bytes) -> str | None:
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "UTF-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16"
    # Without a BOM: ASCII text in UTF-16 has a zero byte beside every character. UTF-8 text
    # has no zero bytes at all (and TOML refuses them).
    sample = head[:512]
    if len(sample) >= 4 and sample.count(0) * 3 >= len(sample):
        return "UTF-32" if sample.count(b"\0\0\0") * 4 >= len(sample) // 2 else "UTF-16"
    return None


def blocks(path, kind: Kind, others_bytes: int = 0):
    """The file in blocks of BLOCK_BYTES (cut anywhere), checked as open_regular checks it, the
    first block without its BOM. `others_bytes`: what files of the same kind read before it
    took of the kind's limit (check_size)."""
    fd, size = open_regular(path, kind)
    try:
        check_size(path, size, kind, others_bytes)
        total = 0
        while True:
            first = total == 0
            # The first block holds the whole head that tells the encoding and the BOM.
            wanted = max(BLOCK_BYTES, HEAD_BYTES) if first else BLOCK_BYTES
            block = os.read(fd, max(1, min(wanted, kind.limit_bytes + 1 - others_bytes - total)))
            if not block:
                return
            if first:
                check_encoding(path, block, kind)
            total += len(block)
            check_size(path, total, kind, others_bytes)
            yield skip_bom(block) if first else block
    finally:
        os.close(fd)
