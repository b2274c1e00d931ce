"""The Chinese page names everything the controller can show: every decision reason and every
alarm key raised anywhere in the product has its title in both languages."""
import ast

from edge.web.i18n import ALARMS, REASONS
from fastpath.decision import Reason
from tests.conftest import REPO

PRODUCT = ("edge", "drivers", "vision", "fastpath")


def _alarm_keys() -> set[str]:
    """Keys given to Alarms.raise_/set as a literal, and the input_alarm of the TCP devices."""
    keys = set()
    for package in PRODUCT:
        for path in (REPO / package).rglob("*.py"):
            if "bench" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                        and node.func.attr in ("raise_", "set") and node.args \
                        and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str) \
                        and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "alarms":
                    keys.add(node.args[0].value)
                elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "input_alarm"
                                                          for t in node.targets):
                    keys.add(node.value.value)
    return keys - {"device_input"}


def test_every_alarm_key_has_a_title_in_both_languages():
    keys = _alarm_keys()
    assert {"records_write", "code_reader_input", "scale_input", "plan_schedule_refused"} <= keys   # the scan works
    missing = sorted(keys - set(ALARMS))
    assert not missing, f"alarm keys without a title in edge/web/i18n.py ALARMS: {missing}"
    for key in keys:
        zh, en = ALARMS[key]
        assert zh and en and zh != en


def test_every_decision_reason_has_a_name_in_both_languages():
    missing = sorted(r.name for r in Reason if r.name not in REASONS)
    assert not missing, f"decision reasons without a name in edge/web/i18n.py REASONS: {missing}"
