"""The version is written once and every way of asking for it gives the same answer."""
import re
import subprocess
import sys

from tests.conftest import REPO


def test_sortline_version_setup_py_and_the_changelog_agree():
    from edge import __version__
    shown = subprocess.run([sys.executable, "-m", "edge.cli", "--version"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.strip()
    built = subprocess.run([sys.executable, "setup.py", "--version"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    assert shown == f"sortline {__version__}" and built == __version__
    newest = re.search(r"^## (\S+)", (REPO / "CHANGELOG.md").read_text(encoding="utf-8"), re.M).group(1)
    assert newest == __version__, "CHANGELOG.md's newest section names another version"
