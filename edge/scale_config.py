"""[scale] checks that need several keys: the field order, the port."""
from __future__ import annotations

from .config_problems import Draft
from .scale import fields_of

SCALE_CHECKS = [
    "[scale] (when mode is not \"off\"): fields names id and weight once each, length, width and height all or "
    "none, and nothing but those and skip; in server mode, the port is not the PLC's, the screen's or the code "
    "reader's on the same host.",
]


def scale_problems(d: Draft) -> None:
    scale = d.values.get("scale", {})
    if scale.get("mode", "off") == "off" or not d.ok(("scale", "fields")):
        return
    try:
        fields_of(scale["fields"])
    except ValueError as exc:
        d.add(d.at("scale", "fields"), "[scale] fields", scale["fields"], str(exc),
              'Write the scale\'s order, e.g. fields = "id,weight,length,width,height" or "id,skip,weight" '
              "(docs/equipment.md, Scale and dimensioner)")
    _port(d, scale)


def _port(d: Draft, scale: dict) -> None:
    if scale["mode"] != "server" or not d.ok(("scale", "port"), ("scale", "host")):
        return
    local = ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::")
    plc, screen, reader = d.values.get("plc", {}), d.values.get("screen", {}), d.values.get("reader", {})
    taken = []
    if plc.get("host") in local and plc.get("port") == scale["port"]:
        taken.append("[plc] port")
    if screen.get("enabled") and screen.get("port") == scale["port"]:
        taken.append("[screen] port")
    if reader.get("mode") == "server" and reader.get("port") == scale["port"]:
        taken.append("[reader] port")
    if taken:
        d.add(d.at("scale", "port"), "[scale] port", scale["port"],
              f"the controller would listen on a port this PC already uses ({' and '.join(taken)})",
              "Set the scale's network output and [scale] port to a free port, e.g. 2002")
