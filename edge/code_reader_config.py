"""[reader] checks that need several keys: the layout, the matching rule, the time budget."""
from __future__ import annotations

from .code_reader_format import Layout, LayoutError
from .config_problems import Draft

READER_CHECKS = [
    "[reader] (when mode is not \"off\"): template names {codes} and only {trigger}, {codes} and {skip}, or pattern "
    "is a regular expression with a group named codes; not both are given; match = \"trigger\" needs a {trigger} "
    "field; wait_ms is at most [camera] image_wait_ms + [vision] budget_ms (the reader's wait takes the image "
    "stages' time); in server mode, the port is not the PLC's or the screen's on the same host.",
]

LAYOUT_KEYS = ("prefix", "template", "pattern", "code_separator", "no_read", "match")


def reader_problems(d: Draft) -> None:
    reader = d.values.get("reader", {})
    if reader.get("mode", "off") == "off" or not d.ok(*(("reader", k) for k in LAYOUT_KEYS)):
        return
    given = d.raw.get("reader", {}) if isinstance(d.raw.get("reader"), dict) else {}
    if "template" in given and "pattern" in given:
        d.add(d.at("reader", "pattern"), "[reader] pattern", given["pattern"], "given together with template",
              "Keep one of the two: template for a simple layout, pattern for a regular expression")
        return
    key = "pattern" if reader["pattern"] else "template"
    try:
        layout = Layout.from_config(reader)
    except LayoutError as exc:
        d.add(d.at("reader", key), f"[reader] {key}", reader[key], str(exc),
              'Write e.g. template = "{trigger},{codes}" or pattern = "^(?P<trigger>\\\\d+);(?P<codes>.*)$" '
              "(docs/equipment.md has the common readers' layouts)")
        return
    if reader["match"] == "trigger" and not layout.has_trigger:
        d.add(d.at("reader", "match"), "[reader] match", reader["match"],
              f"the {key} has no trigger id to match by",
              'Add {trigger} to the template (or (?P<trigger>...) to the pattern), or set match = "time"')
    if d.ok(("reader", "wait_ms"), ("camera", "image_wait_ms"), ("vision", "budget_ms")):
        stages_ms = d.values["camera"]["image_wait_ms"] + d.values["vision"]["budget_ms"]
        if reader["wait_ms"] > stages_ms:
            d.add(d.at("reader", "wait_ms"), "[reader] wait_ms", reader["wait_ms"],
                  f"longer than [camera] image_wait_ms + [vision] budget_ms ({stages_ms:g} ms), the time the "
                  f"decision budget keeps for reading a label",
                  f"Set wait_ms to {stages_ms:g} or less, or raise those stage budgets (check-config adds them up)")
    _port(d, reader)


def _port(d: Draft, reader: dict) -> None:
    if reader["mode"] != "server" or not d.ok(("reader", "port"), ("reader", "host")):
        return
    local = ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::")
    plc, screen = d.values.get("plc", {}), d.values.get("screen", {})
    taken = []
    if plc.get("host") in local and plc.get("port") == reader["port"]:
        taken.append("[plc] port")
    if screen.get("enabled") and screen.get("port") == reader["port"]:
        taken.append("[screen] port")
    if taken:
        d.add(d.at("reader", "port"), "[reader] port", reader["port"],
              f"the controller would listen on a port this PC already uses ({' and '.join(taken)})",
              "Choose another port, the same as in the reader's network output settings")
