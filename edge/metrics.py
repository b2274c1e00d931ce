"""The controller's Prometheus metrics, with prometheus-client.

Two kinds of figures. What happens per parcel (decisions by reason, read outcomes, stage times,
late decisions, the PLC's verdicts) is counted as it happens, in metrics of this registry. What
the controller already counts or knows elsewhere (scans, assignments sent, link anomalies, alarms,
the records backlog, the machine state, the active plan) is read when Prometheus scrapes, by
`_Figures`, so that nothing is counted twice and a counter never goes down.

Every label value the product can produce is there from the start with a zero sample: a reason or
an outcome that has not happened yet is 0, not absent, so `rate()` and the alert rules see it.
"""
import platform
import shutil

from prometheus_client import (CollectorRegistry, Counter, GCCollector, Histogram,
                               PlatformCollector, ProcessCollector, disable_created_metrics, generate_latest)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

from drivers.regmap import DivertResult
from fastpath.decision import Reason

from . import __version__
from .state import State

# The *_created series double the number of series and say nothing a restart's reset does not.
disable_created_metrics()

# The text format every Prometheus 2.x reads (the names here need none of 1.0.0's quoting).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
STAGE_BUCKETS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
SLACK_BUCKETS_S = (0.0, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)
STAGES = ("image", "read", "decide", "total")
READ_OUTCOMES = ("read", "multi_read", "no_read")
# Link anomalies the alert rules name: zero from the start; the others appear when first counted.
LINK_ANOMALIES = ("link_lost", "plc_restart", "no_answer", "assignment_refused")


class _Family:
    """A metric and its children by label values, the known ones made at once (their zero samples)."""

    def __init__(self, metric, known=()):
        self.metric = metric
        self._children: dict = {}
        for values in known:
            self.child(*(values if isinstance(values, tuple) else (values,)))

    def child(self, *values):
        found = self._children.get(values)
        if found is None:
            found = self._children[values] = self.metric.labels(*values) if values else self.metric
        return found

    def inc(self, *labels, by: float = 1.0) -> None:
        self.child(*labels).inc(by)

    def observe(self, value: float, *labels) -> None:
        self.child(*labels).observe(value)


class ControllerMetrics:
    """The registry /metrics serves. With `controller`, its figures are read at every scrape."""

    def __init__(self, controller=None):
        self.registry = r = CollectorRegistry()
        self.parcels = _Family(Counter("sortline_parcels", "Parcels decided, by reason", ["reason"], registry=r),
                               [reason.name for reason in Reason])
        self.reads = _Family(Counter("sortline_label_reads", "Label reading outcomes, one per parcel decided",
                                     ["outcome"], registry=r), READ_OUTCOMES)
        self.stage = _Family(Histogram("sortline_stage_seconds", "Time spent per stage per parcel", ["stage"],
                                       buckets=STAGE_BUCKETS_S, registry=r), STAGES)
        self.slack = _Family(Histogram("sortline_deadline_slack_seconds", "Time left before the decision point "
                                       "when the decision was made (0 when late)", buckets=SLACK_BUCKETS_S,
                                       registry=r))
        self.late = _Family(Counter("sortline_decisions_late", "Decisions made after the parcel's decision point",
                                    registry=r))
        self.confirmations = _Family(Counter("sortline_confirmations", "Divert confirmations from the PLC, by "
                                             "what the PLC did with the parcel", ["result"], registry=r),
                                     [result.name for result in DivertResult])
        self._build = {"version": __version__, "python": platform.python_version()}
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        r.register(_Figures(controller, self._build))
        self._extra: list = []

    def add(self, collector) -> None:
        """Figures of another part (the line screen's connections), read at every scrape."""
        self.registry.register(collector)
        self._extra.append(collector)

    def remove(self, collector) -> None:
        if collector in self._extra:
            self._extra.remove(collector)
            self.registry.unregister(collector)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def render(self) -> str:
        return self.exposition().decode()


class _Figures:
    """What the controller counts or knows anyway, read at scrape time from the event loop.

    Its counts are the controller's own (Stats, the link's anomalies, the alarms' tally), which a
    later change might set back (a new shift); the counters exported from them never go down."""

    def __init__(self, controller, build: dict):
        self.controller, self.build = controller, build
        self._counted: dict[tuple, tuple[float, float]] = {}     # (name, label) -> (last count seen, total)

    def _total(self, name: str, count: float, label: str = "") -> float:
        """The counter for a count that may be set back: its increases summed, never less than before."""
        last, total = self._counted.get((name, label), (0.0, 0.0))
        total += count - last if count >= last else count
        self._counted[(name, label)] = (count, total)
        return total

    def collect(self):
        yield InfoMetricFamily("sortline_build", "Version of the controller software", value=self.build)
        c = self.controller
        if c is None:
            return
        yield from self._decisions(c)
        yield from self._link(c)
        yield from self._alarms(c)
        yield from self._records(c)
        yield from self._readers(c)
        report = c.state.report
        state = GaugeMetricFamily("sortline_state", "1 for the controller's current machine state", labels=["state"])
        for s in State:
            state.add_metric([s.value], 1 if s == report.state else 0)
        yield state
        plan = c.plan
        yield InfoMetricFamily("sortline_plan", "The sort plan the controller decides by",
                               value={"version": str(plan.version), "name": str(getattr(plan, "name", ""))})
        yield GaugeMetricFamily("sortline_plan_refused", "1 while the last plan reload was refused",
                                value=1 if c.plan_refused else 0)
        yield GaugeMetricFamily("sortline_start_time_seconds", "When the controller started (Unix time)",
                                value=c.started_wall)

    def _decisions(self, c):
        st = c.stats
        for name, help_, value in (
                ("sortline_scans", "Scan events from the PLC: parcels seen at the scan photo-eye", st.scans),
                ("sortline_assignments_sent", "Assignments (chute decisions) written to the PLC", st.sent),
                ("sortline_assignments_failed", "Assignments the PLC link could not write", st.send_failed),
                ("sortline_internal_errors", "Parcels whose handling failed inside the controller", st.internal_errors)):
            yield CounterMetricFamily(name, help_, value=self._total(name, value))

    def _link(self, c):
        status = c.link.status
        yield GaugeMetricFamily("sortline_plc_link_up", "1 while the PLC link answers", value=1 if status.connected else 0)
        anomalies = CounterMetricFamily("sortline_plc_link_anomalies", "Link anomalies counted since start, by kind",
                                        labels=["kind"])
        seen = dict(status.anomalies)
        for kind in sorted(set(LINK_ANOMALIES) | set(seen)):
            anomalies.add_metric([kind], self._total("anomalies", seen.get(kind, 0), kind))
        yield anomalies

    def _alarms(self, c):
        # The alarm keys the line screen has titles for: a zero sample each before it is ever raised.
        # Imported here, at the first scrape: a server is running then, and the web package with it.
        from .web.i18n import ALARMS
        raised = dict(c.alarms.raised_total)
        active = {a.key for a in c.alarms.active()}
        now = GaugeMetricFamily("sortline_alarm", "1 while an alarm is active, by key", labels=["key"])
        total = CounterMetricFamily("sortline_alarms_raised", "Times each alarm was raised since start", labels=["key"])
        for key in sorted(set(ALARMS) | set(raised) | active):
            now.add_metric([key], 1 if key in active else 0)
            total.add_metric([key], self._total("alarms", raised.get(key, 0), key))
        yield now
        yield total
        yield GaugeMetricFamily("sortline_alarms_active", "Alarms active now", value=len(active))

    def _records(self, c):
        records = c.records
        yield CounterMetricFamily("sortline_record_write_errors", "Record writes that failed",
                                  value=self._total("write_errors", records.write_errors))
        yield GaugeMetricFamily("sortline_records_backlog_rows", "Parcel records waiting in memory to be written",
                                value=records.pending)
        try:
            disk = shutil.disk_usage(records.folder)
        except OSError:
            return
        yield GaugeMetricFamily("sortline_records_disk_free_bytes", "Free space for the parcel records' file system",
                                value=disk.free)
        yield GaugeMetricFamily("sortline_records_disk_size_bytes", "Size of the parcel records' file system",
                                value=disk.total)

    def _readers(self, c):
        readers, watch = c.readers, c.loop_watch
        yield CounterMetricFamily("sortline_label_reads_hedged", "Images read by a second, idle reader too",
                                  value=self._total("hedged", readers.hedged))
        yield CounterMetricFamily("sortline_label_reader_restarts", "Label readers started again after a crash "
                                  "or a stuck read", value=self._total("restarts", readers.restarted))
        yield GaugeMetricFamily("sortline_label_readers_running", "Label reader processes running",
                                value=readers.running)
        yield GaugeMetricFamily("sortline_event_loop_held_seconds", "Longest time the controller's event loop "
                                "was held within the last minute", value=watch.recent_longest_s)
        yield GaugeMetricFamily("sortline_event_loop_held_max_seconds", "Longest time the event loop was held "
                                "since start", value=watch.longest_s)
