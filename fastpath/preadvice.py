"""Pre-advice data (waybill -> destination records couriers send ahead of the parcels).

File format, one record a line, UTF-8:  waybill,destination
An optional first line "waybill,destination" is a header; blank lines and lines starting
with '#' are skipped. The destination is a name from the plan's [destinations].

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
from . import waybill
from .errors import PlanError

HEADER = b"waybill,destination"
MAX_ERRORS_LISTED = 5


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
        destination = self.destination_index.get(name)
        if destination is None:
            self.error(path, line_no, f"no destination {name!r} in the plan",
                       "use a name from the plan's [destinations], or add that destination")
            return 0, 0
        code = waybill.encode(canon)
        if code:
            return code, destination
        if self.slow.get(canon, destination) != destination:
            self.slow_conflicts += 1
        self.slow[canon] = destination
        return 0, 0

    def scan_python(self, path, data):
        keys, destinations, lines = [], [], []
        first = True
        for line_no, raw in enumerate(data.split(b"\n"), start=1):
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

    def scan_compiled(self, core, path, data):
        names = {name.encode("utf-8"): index for name, index in self.destination_index.items()}
        keys, destinations, lines, left = core.scan_preadvice(data, names)
        for at, start, end in left:
            code, destination = self.record(path, int(lines[at]), data[start:end], at == 0)
            keys[at], destinations[at] = code, destination
        if len(left):
            kept = keys != 0
            keys, destinations, lines = keys[kept], destinations[kept], lines[kept]
        return keys, destinations, lines


def load(files, destination_index, plan_path):
    """Pre-advice from CSV files; raises PlanError naming the first bad lines."""
    collector = _Collector(destination_index)
    core = _compiled()
    parts = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PlanError(f"cannot read the pre-advice file {str(path)!r}: {exc.strerror}", file=plan_path,
                            key="[preadvice] files", remedy="check the name; paths are relative to the plan file") from None
        parts.append(collector.scan_compiled(core, path, data) if core else collector.scan_python(path, data))
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
        return f"{files[at]}:{int(parts[at][2][offset])}"

    return build(keys, destinations, collector.slow, warnings, describe)
