"""deploy/sortline.service: its own user, Type=notify with a watchdog, the usual hardening, and
`systemd-analyze security` rating its exposure at most 3.0 (offline: no running systemd needed)."""
import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO

UNIT = REPO / "deploy" / "sortline.service"
MOST_EXPOSURE = 3.0


def directives(text: str) -> dict[tuple[str, str], list[str]]:
    """(section, key) -> every value given, in order (a key may repeat, SystemCallFilter does)."""
    found: dict[tuple[str, str], list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a directive: {line!r}"
        found.setdefault((section, key.strip()), []).append(value.strip())
    return found


def one(unit: dict, key: str, section: str = "Service") -> str:
    values = unit[(section, key)]
    assert len(values) == 1, f"{key} given {len(values)} times"
    return values[0]


def test_the_unit_runs_the_controller_as_its_own_user_with_a_watchdog():
    unit = directives(UNIT.read_text())
    assert one(unit, "Type") == "notify" and one(unit, "NotifyAccess") == "main"
    watchdog = re.fullmatch(r"(\d+)s", one(unit, "WatchdogSec"))
    assert watchdog and 2 <= int(watchdog.group(1)) <= 30
    assert one(unit, "User") == one(unit, "Group") == "sortline"
    assert one(unit, "Restart") == "always"
    assert re.fullmatch(r"\S+/sortline run --config \S+\.toml", one(unit, "ExecStart"))
    assert one(unit, "StandardError") == "journal"           # the priority prefixes (edge/journal_log.py)


def test_the_usual_hardening_is_there():
    unit = directives(UNIT.read_text())
    expected = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
                "PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
                "ProtectControlGroups": "yes", "RestrictSUIDSGID": "yes", "LockPersonality": "yes",
                "CapabilityBoundingSet": "", "RestrictNamespaces": "yes", "SystemCallArchitectures": "native"}
    assert {k: one(unit, k) for k in expected} == expected
    assert one(unit, "RestrictAddressFamilies").split() == ["AF_UNIX", "AF_INET", "AF_INET6"]
    assert unit[("Service", "SystemCallFilter")][0] == "@system-service"
    # Writable: the records folder only (the camera folder in /dev/shm stays writable under /dev).
    assert one(unit, "ReadWritePaths") == "/opt/sortline/var"


def analyze(path) -> subprocess.CompletedProcess:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (package systemd); the directives are checked above")
    return subprocess.run([tool, "security", "--offline=true", f"--threshold={MOST_EXPOSURE * 10:g}", str(path)],
                          capture_output=True, text=True, timeout=60)


def exposure(result: subprocess.CompletedProcess) -> float:
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout + result.stderr)
    assert found, result.stdout + result.stderr
    return float(found.group(1))


def test_systemd_analyze_rates_the_unit_at_most_3():
    result = analyze(UNIT)
    assert result.returncode == 0 and exposure(result) <= MOST_EXPOSURE, result.stdout[-3000:]


def test_systemd_analyze_would_refuse_an_unhardened_unit(tmp_path):
    bare = tmp_path / "sortline.service"
    bare.write_text("[Service]\nType=notify\nExecStart=/opt/sortline/.venv/bin/sortline run\n")
    result = analyze(bare)
    assert result.returncode != 0 and exposure(result) > MOST_EXPOSURE
