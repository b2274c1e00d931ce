"""A copy of a line config with some values changed: for simulated runs, benchmarks and tests.

Relative paths (the plan, the records folder) are made absolute against the original file so
that the copy can live anywhere.
"""
import tomllib
from pathlib import Path

from .config import toml_text


def derive_config(base, out, overrides: dict) -> Path:
    """Write `base` with `overrides` ({"plc": {"port": 15021}, ...}) applied to `out`."""
    base, out = Path(base).resolve(), Path(out)
    data = tomllib.loads(base.read_text(encoding="utf-8"))
    for section, values in (("plan", "file"), ("records", "folder")):
        if section in data and values in data[section]:
            p = Path(data[section][values])
            data[section][values] = str(p if p.is_absolute() else (base.parent / p).resolve())
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    lines = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_text(value)}" for key, value in values.items()]
        lines.append("")
    out.write_text("\n".join(lines), encoding="utf-8")
    return out
