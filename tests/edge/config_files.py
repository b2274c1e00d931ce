"""A small valid line config and sort plan that tests break one way at a time, and the [reader]
section as the config check gives it, for the code reader's tests."""
import re
from pathlib import Path

from edge.config import ConfigError, load_config
from fastpath.toml_lines import key_lines

LINE = """\
[line]
name = "Test line"
belt_speed_m_s = 2.0
diverter = "swing-arm"
switch_time_ms = 300
plc_margin_ms = 50
end_chute = 6
chutes = [
  { number = 1, position_m = 1.5, side = "left" },
  { number = 2, position_m = 1.5, side = "right" },
  { number = 3, position_m = 2.7, side = "left" },
  { number = 4, position_m = 2.7, side = "right" },
  { number = 5, position_m = 3.9, side = "left" },
  { number = 6, position_m = 5.0, side = "end" },
]

[plc]
port = 15020

[camera]
folder = "camera"
image_wait_ms = 60

[vision]
budget_ms = 80

[plan]
file = "line.plan.toml"
"""

PLAN = """\
[plan]
version = "t1"

[special]
no_read = 6
multi_read = 6
no_rule = 5
overflow = 5
reject = 6

[couriers.SF]
formats = ["SF#{13}"]

[couriers.YTO]
formats = ["YT#{13}"]

[destinations."Qicun"]
chutes = [1, 2]

[destinations."Lugang"]
chutes = [3]

[[routes]]
code = "312-Q03-01"
destination = "Qicun"

[[routes]]
prefix = "312-Q04"
destination = "Lugang"

[[overrides]]
courier = "SF"
chutes = [4]
"""


def reader_section(mode: str, port: int, **keys) -> dict:
    """[reader] as load_config returns it: a code reader on 127.0.0.1:`port` sending "trigger,codes"
    lines; `keys` change any key."""
    section = {"mode": mode, "host": "127.0.0.1", "port": port, "framing": "line", "prefix": "",
               "template": "{trigger},{codes}", "pattern": "", "code_separator": ";", "no_read": "NoRead",
               "match": "trigger", "wait_ms": 60.0, "read_images": True, "max_frame_bytes": 256,
               "reconnect_max_ms": 200.0}
    section.update(keys)
    return section


def write(folder: Path, line: str = LINE, plan: str = PLAN) -> Path:
    (folder / "line.plan.toml").write_text(plan)
    path = folder / "line.toml"
    path.write_text(line)
    return path


def section_problems(folder: Path, section: str, keys: str) -> list[str]:
    """The mistakes the config check finds in LINE with `[section]` and its `keys` (TOML text) added,
    one "key: problem | remedy" line each; none when it loads."""
    try:
        load_config(write(folder, LINE + f"\n[{section}]\n" + keys))
    except ConfigError as exc:
        return [f"{p.key}: {p.problem} | {p.remedy}" for p in exc.problems]
    return []


def assert_one_problem(found: list[str], words: list[str]) -> None:
    """`found` is one mistake, and its line has every one of `words`."""
    assert len(found) == 1, found
    for word in words:
        assert word in found[0], (word, found)


def edit(text: str, old: str, new: str) -> str:
    """`text` with `old` (which must occur exactly once) replaced: a test never edits what is not there."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def set_keys(text: str, values: dict) -> str:
    """Set `key = value` lines by (section, key); values are TOML text. Keys not present are added."""
    lines = text.splitlines()
    for (section, key), value in values.items():
        at = key_lines("\n".join(lines)).get((section, key))
        if at is not None:
            lines[at - 1] = re.sub(r"=.*", f"= {value}", lines[at - 1], count=1)
        else:
            header = key_lines("\n".join(lines)).get((section,))
            if header is None:
                lines += ["", f"[{section}]"]
                header = len(lines)
            lines.insert(header, f"{key} = {value}")
    return "\n".join(lines) + "\n"
