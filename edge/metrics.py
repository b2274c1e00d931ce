"""Prometheus text exposition for the controller, without a client library.

A handful of counters, gauges and fixed-bucket histograms is all a line needs; writing the
exposition format directly keeps start-up light and the hot path free of locks.
"""
import bisect
import math

STAGE_BUCKETS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)


def _labels(names, values) -> str:
    if not names:
        return ""
    inner = ",".join(f'{n}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                     for n, v in zip(names, values))
    return "{" + inner + "}"


class _Metric:
    kind = ""

    def __init__(self, name: str, help_: str, labels: tuple = ()):
        self.name, self.help, self.label_names = name, help_, labels
        self.values: dict = {}

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def inc(self, *labels, by: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + by

    def render(self) -> list[str]:
        return self.header() + [f"{self.name}{_labels(self.label_names, k)} {v:g}" for k, v in self.values.items()]


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, *labels) -> None:
        self.values[labels] = float(value)


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name, help_, labels=(), buckets=STAGE_BUCKETS_S):
        super().__init__(name, help_, labels)
        self.buckets = tuple(buckets)

    def observe(self, value: float, *labels) -> None:
        counts, total = self.values.setdefault(labels, ([0] * (len(self.buckets) + 1), [0.0]))
        counts[bisect.bisect_left(self.buckets, value)] += 1
        total[0] += value

    def render(self) -> list[str]:
        out = self.header()
        for key, (counts, total) in self.values.items():
            running = 0
            for bound, n in zip((*self.buckets, math.inf), counts):
                running += n
                le = "+Inf" if bound == math.inf else f"{bound:g}"
                out.append(f"{self.name}_bucket{_labels((*self.label_names, 'le'), (*key, le))} {running}")
            out.append(f"{self.name}_sum{_labels(self.label_names, key)} {total[0]:g}")
            out.append(f"{self.name}_count{_labels(self.label_names, key)} {running}")
        return out


class ControllerMetrics:
    def __init__(self):
        self.parcels = Counter("sortline_parcels_total", "Parcels decided, by reason", ("reason",))
        self.reads = Counter("sortline_label_reads_total", "Label reading outcomes", ("outcome",))
        self.stage = Histogram("sortline_stage_seconds", "Time spent per stage per parcel", ("stage",))
        self.slack = Histogram("sortline_deadline_slack_seconds", "Time left before the decision point",
                               buckets=(0.0, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5))
        self.late = Counter("sortline_decisions_late_total", "Decisions made after the parcel's decision point")
        self.confirmations = Counter("sortline_confirmations_total", "Divert confirmations from the PLC",
                                     ("result",))
        self.link_up = Gauge("sortline_plc_link_up", "1 while the PLC link answers")
        self.anomalies = Gauge("sortline_plc_link_anomalies", "Link anomalies counted since start", ("kind",))
        self.state = Gauge("sortline_state", "1 for the controller's current machine state", ("state",))
        self.record_errors = Counter("sortline_record_write_errors_total", "Record writes that failed")
        self.hedged = Gauge("sortline_label_reads_hedged", "Images read by a second, idle reader too, since start")
        self.loop_held = Gauge("sortline_event_loop_held_seconds", "Longest time the controller's event loop was "
                               "held within the last minute")
        self.loop_held_max = Gauge("sortline_event_loop_held_max_seconds", "Longest time the event loop was held "
                                   "since start")
        self.alarm = Gauge("sortline_alarm", "1 while an alarm is active, by key", ("key",))
        self.alarms_raised = Gauge("sortline_alarms_raised", "Times each alarm was raised since start", ("key",))
        self.reader_restarts = Gauge("sortline_label_reader_restarts", "Label readers started again after a crash "
                                     "or a stuck read, since start")

    def render(self) -> str:
        lines = []
        for metric in vars(self).values():
            lines += metric.render()
        return "\n".join(lines) + "\n"
