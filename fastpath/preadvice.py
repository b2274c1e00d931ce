"""Pre-advice data (waybill -> destination records couriers send ahead of the parcels).

File format, one record a line, UTF-8 (with or without the BOM Excel writes):  waybill,destination
An optional first line "waybill,destination" is a header; blank lines and lines starting
with '#' are skipped. The destination is a name from the plan's [destinations]. A waybill
has at most waybill.MAX_CHARS characters.

Files are read in blocks (text_files.blocks), each cut at its last line end and scanned on its
own, so that a file of a gigabyte never sits in memory twice.

Records whose waybill fits the 64-bit code go into a flat open-addressing table (about 17
bytes a record at 10 million); the rare rest into a dict by canonical bytes. When the same
waybill comes twice with different destinations the later record wins (couriers resend
corrections) and the plan carries a warning.

With the compiled core, plain lines are scanned in C with the GIL released; every other
line (header, odd characters, errors) goes through the Python rules below, so both give the
same records and the same messages.
"""
import dataclasses

import numpy as np

from . import hashtable
from . import implementation
from . import text_files
from . import waybill
from .errors import PlanError

HEADER = b"waybill,destination"
MAX_ERRORS_LISTED = 5
SHOWN_CHARS = 24                 # of a field too long to show whole in a message


@dataclasses.dataclass
class Preadvice:
    table: hashtable.CodeTable
    slow: dict                 # canonical bytes -> destination index, for waybills without a code
    count: int                 # distinct waybills
    warnings: list


def _compiled():
    module = implementation.engine_module()
    return module if module.__name__.endswith("_core") else None


def empty():
    return build(np.zeros(0, np.int64), np.zeros(0, np.uint16), {}, [])


def build(keys, destinations, slow, warnings, describe=None):
    """Table from encoded keys (int64, nonzero, file order) and destination indexes."""
    core = _compiled()
    table = hashtable.build(keys, destinations, fill=core.fill_table if core else None)
    if table.conflicts:
        where = f" (first: {describe(table.first_conflict)})" if describe else ""
        warnings.append(f"{table.conflicts} pre-advice records repeat a waybill with another destination; "
                        f"the later record is used{where}")
    return Preadvice(table, slow, table.count + len(slow), warnings)


def _shown(text):
    """A field as a message shows it: whole when short, else its start and its length."""
    if len(text) <= SHOWN_CHARS:
        return repr(text)
    return f"{text[:SHOWN_CHARS]!r}... ({len(text):,} characters)"


class _Collector:
    def __init__(self, destination_index):
        self.destination_index = destination_index
        self.slow = {}
        self.slow_conflicts = 0
        self.errors = []
        self.error_count = 0

    def error(self, path, line_no, problem, remedy):
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_LISTED:
            self.errors.append((path, line_no, problem, remedy))

    def record(self, path, line_no, line, first):
        """Code and destination of one stripped, non-blank, non-comment line; (0, 0) if none."""
        if first and line.lower().replace(b" ", b"") == HEADER:
            return 0, 0
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self.error(path, line_no, "the line is not UTF-8 text", "save the file as UTF-8")
            return 0, 0
        fields = text.split(",")
        if len(fields) != 2:
            self.error(path, line_no, f"expected 2 fields 'waybill,destination', found {len(fields)}",
                       "write one record a line as waybill,destination")
            return 0, 0
        canon = waybill.canonical(fields[0])
        name = fields[1].strip()
        if not canon:
            self.error(path, line_no, "the waybill is empty", "write the waybill number before the comma")
            return 0, 0
        if len(canon) > waybill.MAX_CHARS and len(canon.decode("utf-8", "replace")) > waybill.MAX_CHARS:
            self.error(path, line_no, f"the waybill {_shown(fields[0].strip())} is longer than a waybill "
                       f"({waybill.MAX_CHARS} characters at most)",
                       "check the export: one record a line, the waybill number, a comma, the destination")
            return 0, 0
        destination = self.destination_index.get(name)
        if destination is None:
            self.error(path, line_no, f"no destination {_shown(name)} in the plan",
                       "use a name from the plan's [destinations], or add that destination")
            return 0, 0
        code = waybill.encode(canon)
        if code:
            return code, destination
        if self.slow.get(canon, destination) != destination:
            self.slow_conflicts += 1
        self.slow[canon] = destination
        return 0, 0

    def scan_python(self, path, data, first_line, header_possible):
        keys, destinations, lines = [], [], []
        first = header_possible
        for line_no, raw in enumerate(data.split(b"\n"), start=first_line):
            line = raw.strip()
            if not line or line.startswith(b"#"):
                continue
            code, destination = self.record(path, line_no, line, first)
            first = False
            if code:
                keys.append(code)
                destinations.append(destination)
                lines.append(line_no)
        return (np.asarray(keys, np.int64), np.asarray(destinations, np.uint16), np.asarray(lines, np.int32))

    def scan_compiled(self, core, path, data, first_line, header_possible):
        names = {name.encode("utf-8"): index for name, index in self.destination_index.items()}
        keys, destinations, lines, left = core.scan_preadvice(data, names)
        lines += first_line - 1
        for at, start, end in left:
            code, destination = self.record(path, int(lines[at]), data[start:end], header_possible and at == 0)
            keys[at], destinations[at] = code, destination
        if len(left):
            kept = keys != 0
            keys, destinations, lines = keys[kept], destinations[kept], lines[kept]
        return keys, destinations, lines

    def scan_file(self, core, path, others_bytes):
        """Scan one file block by block; (parts, bytes read). A block ends at its last line end:
        the rest of the line goes with the next block."""
        parts, carry, first_line, header_possible, size = [], [], 1, True, 0
        for block in text_files.blocks(path, text_files.PREADVICE, others_bytes):
            size += len(block)
            cut = block.rfind(b"\n") + 1
            if cut == 0:                  # one line longer than a block: it goes on in the next
                carry.append(block)
                continue
            data = b"".join(carry + [block[:cut]]) if carry else block[:cut]
            carry = [block[cut:]]
            parts.append(self._scan(core, path, data, first_line, header_possible))
            header_possible = header_possible and not _has_record(data)
            first_line += data.count(b"\n")
        tail = b"".join(carry)
        if tail:
            parts.append(self._scan(core, path, tail, first_line, header_possible))
        return parts, size

    def _scan(self, core, path, data, first_line, header_possible):
        if core:
            return self.scan_compiled(core, path, data, first_line, header_possible)
        return self.scan_python(path, data, first_line, header_possible)


def _has_record(data):
    """Whether a block holds a line that is neither blank nor a comment: after it, no line of the
    file can be the header. Looks no further than that line."""
    at = 0
    while at < len(data):
        end = data.find(b"\n", at)
        end = len(data) if end < 0 else end
        line = data[at:end].strip()
        if line and not line.startswith(b"#"):
            return True
        at = end + 1
    return False


def load(files, destination_index, plan_path):
    """Pre-advice from CSV files; raises PlanError naming the first bad lines."""
    collector = _Collector(destination_index)
    core = _compiled()
    parts, part_files, taken_bytes = [], [], 0
    for path in files:
        try:
            file_parts, size = collector.scan_file(core, path, taken_bytes)
        except text_files.FileRefused as exc:
            raise PlanError(exc.problem, file=exc.path, line=exc.line, remedy=exc.remedy) from None
        except OSError as exc:
            raise PlanError(f"cannot read the pre-advice file {str(path)!r}: {exc.strerror}", file=plan_path,
                            key="[preadvice] files", remedy="check the name; paths are relative to the plan file") from None
        taken_bytes += size
        parts += file_parts
        part_files += [path] * len(file_parts)
    if collector.errors:
        path, line, problem, remedy = collector.errors[0]
        if collector.error_count > 1:
            others = ", ".join(f"{p.name}:{n}" for p, n, _, _ in collector.errors[1:])
            more = ", ..." if collector.error_count > MAX_ERRORS_LISTED else ""
            problem += f" ({collector.error_count - 1} more bad lines: {others}{more})"
        raise PlanError(problem, file=path, line=line, remedy=remedy)
    warnings = []
    if collector.slow_conflicts:
        warnings.append(f"{collector.slow_conflicts} pre-advice records repeat a waybill with another destination; "
                        "the later record is used")
    keys = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    destinations = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.uint16)
    sizes = np.cumsum([len(p[0]) for p in parts])

    def describe(position):
        at = int(np.searchsorted(sizes, position, side="right"))
        offset = position - (int(sizes[at - 1]) if at else 0)
        return f"{part_files[at]}:{int(parts[at][2][offset])}"

    return build(keys, destinations, collector.slow, warnings, describe)
