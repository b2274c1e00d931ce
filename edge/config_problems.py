"""A line config being checked, and its problems: each one names file, line, key, value and remedy.

Shared by the per-key checks (edge/config.py) and the checks across keys (edge/line_checks.py);
printed the same way by `sortline check-config`, `sortline run` and `sortline reload`.
"""
import re
import sys
from dataclasses import dataclass
from pathlib import Path

MISSING = object()           # a key that was not given


@dataclass(frozen=True)
class Problem:
    """One mistake, in parts, so that a screen can show them apart; str() is the full message."""
    file: str
    line: int | None
    key: str | None          # "[line] belt_speed_m_s", "[line] chutes #3 side", "decision budget"
    value: object            # as written in the file, or MISSING
    problem: str
    remedy: str
    message: str | None = None   # the whole message when another part wrote it (the plan checker)

    def __str__(self) -> str:
        if self.message:
            return self.message
        text = self.file + (f":{self.line}" if self.line else "") + ": "
        if self.key:
            text += self.key + ("" if self.value is MISSING else " = " + toml_text(self.value)) + ": "
        return text + self.problem + (". " + self.remedy if self.remedy else "")


class ConfigError(Exception):
    def __init__(self, problems):
        self.problems = list(problems)
        self.errors = [str(p) for p in self.problems]
        super().__init__("\n".join(self.errors))


def print_errors(path, problems, out=sys.stderr) -> None:
    print(f"config {path} has {len(problems)} error(s); the line would not start with it:", file=out)
    for problem in problems:
        print("  " + str(problem), file=out)


def resolve_beside(config_path: Path, relative: str) -> Path:
    """A path from the config, relative to the config file. Its folders are resolved, its last
    part is not: a plan that is a link keeps its own name in messages ("line.plan.toml is a
    device", not "/dev/zero is"), and pointing the link at another file is a change to it."""
    p = Path(relative)
    if p.is_absolute():
        return p
    joined = config_path.parent / p
    return joined.parent.resolve() / joined.name if joined.name not in ("", ".", "..") else joined.resolve()


# -- how values and keys are written back to a technician -------------------------------------------
def toml_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_text, value)) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_text(v)}" for k, v in value.items()) + " }"
    return str(value)


class Locator:
    """Line numbers of sections, keys and inline-table entries (tomllib gives values only)."""

    def __init__(self, text: str):
        from fastpath.toml_lines import key_lines, line_of
        self._lines = key_lines(text)
        self._line_of = line_of
        self._text = text.splitlines()

    def __call__(self, *path) -> int | None:
        return self._line_of(self._lines, path)

    def entry(self, section: str, key: str, index: int, name: str | None = None) -> int | None:
        """Line of entry `index` of an array (`[[section.key]]` tables or `{ ... }` inline tables),
        or of its key `name` when the entry spreads over several lines."""
        if (section, key, index, name) in self._lines:
            return self._lines[(section, key, index, name)]
        if (section, key, index) in self._lines:
            return self._lines[(section, key, index)]
        start = self._lines.get((section, key))
        if start is None:
            return None
        seen, depth = -1, 0
        for number in range(start, len(self._text) + 1):
            line = re.sub(r'"[^"]*"|\'[^\']*\'', '""', self._text[number - 1]).split("#", 1)[0]
            if number == start:
                line = line.split("=", 1)[1]
            for ch in line:
                if ch == "[":
                    depth += 1
                elif ch == "]":
                    depth -= 1
                    if depth == 0:
                        return start
                elif ch == "{" and depth == 1:
                    seen += 1
                    if seen == index:
                        return number
        return start


class Draft:
    """A config being checked: the file, its raw and checked values, and the problems found so far."""

    def __init__(self, path: Path, text: str, raw: dict):
        self.path, self.raw = path, raw
        self.file = str(path)
        self.at = Locator(text)
        self.values: dict = {}
        self.problems: list[Problem] = []
        self.bad: set[tuple] = set()            # (section, key) whose value was refused

    def add(self, line, key, value, problem, remedy) -> None:
        self.problems.append(Problem(self.file, line, key, value, problem, remedy))

    def given(self, section: str, key: str, index: int | None = None, name: str | None = None):
        """A value as the technician wrote it (5, not 5.0), for messages."""
        value = self.raw[section][key]
        return value if index is None else value[index][name]

    def ok(self, *keys) -> bool:
        """Whether these (section, key) pairs were all given acceptably (cross-checks need them)."""
        return not any(k in self.bad for k in keys)

    def resolve(self, relative: str) -> Path:
        return resolve_beside(self.path, relative)
