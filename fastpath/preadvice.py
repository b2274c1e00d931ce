"""Pre-advice data (waybill -> destination records couriers send ahead of the parcels).

File format, one record a line, UTF-8:  waybill,destination
An optional first line "waybill,destination" is a header; blank lines and lines starting
with '#' are skipped. The destination is a name from the plan's [destinations].

Records whose waybill fits the 64-bit code go into a flat open-addressing table (about 17
bytes a record at 10 million); the rare rest into a dict by canonical bytes. When the same
waybill comes twice with different destinations the later record wins (couriers resend
corrections) and the plan carries a warning.
"""
import dataclasses

import numpy as np

from . import hashtable
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

    @property
    def nbytes(self):
        return self.table.nbytes + sum(len(k) + 100 for k in self.slow)


def empty():
    return build(np.zeros(0, np.int64), np.zeros(0, np.uint16), {}, [])


def build(keys, destinations, slow, warnings, origins=None, describe_origin=None):
    """Table from encoded keys (int64, nonzero) and destination indexes, last record wins."""
    keys = np.asarray(keys, dtype=np.int64)
    destinations = np.asarray(destinations, dtype=np.uint16)
    if len(keys):
        order = np.argsort(keys, kind="stable")
        sorted_keys, sorted_destinations = keys[order], destinations[order]
        repeated = sorted_keys[1:] == sorted_keys[:-1]
        conflicts = np.flatnonzero(repeated & (sorted_destinations[1:] != sorted_destinations[:-1]))
        last = np.ones(len(keys), dtype=bool)
        last[:-1] = ~repeated
        if len(conflicts):
            where = ""
            if origins is not None and describe_origin is not None:
                where = " (first: " + describe_origin(int(origins[order[conflicts[0] + 1]])) + ")"
            warnings.append(f"{len(conflicts)} pre-advice records repeat a waybill with another destination; "
                            f"the later record is used{where}")
        keep = order[last]
        keys, destinations = keys[keep], destinations[keep]
    table = hashtable.build(keys, destinations)
    return Preadvice(table, slow, len(keys) + len(slow), warnings)


class _Collector:
    def __init__(self, files, destination_index):
        self.files = files
        self.destination_index = destination_index
        self.keys = []
        self.destinations = []
        self.origins = []
        self.slow = {}
        self.slow_conflicts = 0
        self.errors = []
        self.error_count = 0

    def error(self, file_no, line, problem, remedy):
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_LISTED:
            self.errors.append((file_no, line, problem, remedy))

    def add_file(self, file_no, data):
        seen_record = False
        for line_no, raw in enumerate(data.split(b"\n"), start=1):
            line = raw.strip()
            if not line or line.startswith(b"#"):
                continue
            if not seen_record:
                seen_record = True
                if line.lower().replace(b" ", b"") == HEADER:
                    continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                self.error(file_no, line_no, "the line is not UTF-8 text", "save the file as UTF-8")
                continue
            fields = text.split(",")
            if len(fields) != 2:
                self.error(file_no, line_no, f"expected 2 fields 'waybill,destination', found {len(fields)}",
                           "write one record a line as waybill,destination")
                continue
            canon = waybill.canonical(fields[0])
            name = fields[1].strip()
            if not canon:
                self.error(file_no, line_no, "the waybill is empty", "write the waybill number before the comma")
                continue
            destination = self.destination_index.get(name)
            if destination is None:
                self.error(file_no, line_no, f"no destination {name!r} in the plan",
                           "use a name from the plan's [destinations], or add that destination")
                continue
            code = waybill.encode(canon)
            if code:
                self.keys.append(code)
                self.destinations.append(destination)
                self.origins.append(file_no << 32 | line_no)
            else:
                if self.slow.get(canon, destination) != destination:
                    self.slow_conflicts += 1
                self.slow[canon] = destination

    def describe(self, origin):
        return f"{self.files[origin >> 32]}:{origin & 0xFFFFFFFF}"


def load(files, destination_index, plan_path):
    """Pre-advice from CSV files; raises PlanError naming the first bad lines."""
    collector = _Collector(files, destination_index)
    for file_no, path in enumerate(files):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PlanError(f"cannot read the pre-advice file {str(path)!r}: {exc.strerror}", file=plan_path,
                            key="[preadvice] files", remedy="check the name; paths are relative to the plan file") from None
        collector.add_file(file_no, data)
    if collector.errors:
        file_no, line, problem, remedy = collector.errors[0]
        if collector.error_count > 1:
            others = ", ".join(f"{collector.files[f].name}:{n}" for f, n, _, _ in collector.errors[1:])
            problem += f" ({collector.error_count - 1} more bad lines: {others}{', ...' if collector.error_count > MAX_ERRORS_LISTED else ''})"
        raise PlanError(problem, file=files[file_no], line=line, remedy=remedy)
    warnings = []
    if collector.slow_conflicts:
        warnings.append(f"{collector.slow_conflicts} pre-advice records repeat a waybill with another destination; "
                        "the later record is used")
    return build(collector.keys, collector.destinations, collector.slow, warnings,
                 np.asarray(collector.origins, dtype=np.int64), collector.describe)
