"""Line numbers of tables and keys in a TOML file, so that plan errors can point at a line.

tomllib gives values but not positions. This scanner reads headers and `key =` lines only,
which covers how technicians write plans; when it cannot tell, errors fall back to the
nearest enclosing table's line.
"""
import re

_HEADER = re.compile(r"^\s*(\[\[?)\s*(.+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+))*)\s*=""")
_PART = re.compile(r"""\s*("[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)\s*(?:\.|$)""")


def _split_dotted(text):
    return tuple(part.strip("\"'") for part in _PART.findall(text))


def key_lines(text):
    """{path tuple: 1-based line}; arrays of tables use the index: ("routes", 2, "code")."""
    lines = {}
    table = ()
    array_counts = {}
    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            in_multiline = line.count('"""') % 2 == 0 and line.count("'''") % 2 == 0
            continue
        header = _HEADER.match(line)
        if header and "=" not in header.group(2):
            path = _split_dotted(header.group(2))
            if header.group(1) == "[[":
                index = array_counts.get(path, 0)
                array_counts[path] = index + 1
                table = path + (index,)
            else:
                table = path
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            lines.setdefault(table + _split_dotted(key.group(1)), number)
            if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
                in_multiline = True
    return lines


def line_of(lines, path):
    """Line of the deepest known part of `path`, or None."""
    path = tuple(path)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None
