"""The schema, its documentation, `sortline check-config`, and what a valid config turns into."""
import subprocess
import sys
import tomllib

import pytest

from edge import config_docs
from edge.config import SCHEMA, ConfigError, check_value, load_config
from tests.conftest import REPO
from tests.edge.config_files import LINE, PLAN, edit, set_keys, write


def check_config(path):
    done = subprocess.run([sys.executable, "-m", "edge.cli", "check-config", str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def test_the_documentation_is_generated_from_the_schema():
    text = config_docs.DOC.read_text(encoding="utf-8")
    assert config_docs.updated(text) == text, "run: python -m edge.config_docs --write"
    for section, opts in SCHEMA.items():
        assert f"### [{section}]" in text
        assert all(f"| `{key}` |" in text for key in opts)


def test_every_default_is_allowed_by_its_own_key():
    for section, opts in SCHEMA.items():
        for key, opt in opts.items():
            if opt.default not in (None, ""):
                assert check_value(key, opt, opt.default) == (opt.default, None), (section, key)


def test_every_mistake_is_reported_at_once_in_file_order(tmp_path):
    line = edit(LINE, 'diverter = "swing-arm"', 'diverter = "swingarm"')
    line = edit(line, "belt_speed_m_s = 2.0", 'belt_speed_m_s = "2.0"')
    line = edit(line, '{ number = 3, position_m = 2.7, side = "left" }', '{ number = 3, position_m = 2.0, side = "left" }')
    line = edit(line, "port = 15020", "port = 15020\nheartbeat_timeout_ms = 120")
    line = edit(line, "budget_ms = 80", "budget_ms = 80\nthreads = 4")
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, line))
    # The belt speed was refused, so the chute and budget checks that need it wait; the others ran.
    assert [p.key for p in caught.value.problems] == [
        "[line] belt_speed_m_s", "[line] diverter", "[plc] heartbeat_timeout_ms", "[vision] threads"]
    line = edit(line, 'belt_speed_m_s = "2.0"', "belt_speed_m_s = 2.0")
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, line))
    assert [(p.line, p.key) for p in caught.value.problems] == [
        (4, "[line] diverter"), (11, "[line] chutes #3 position_m"), (19, "[plc] heartbeat_timeout_ms"),
        (27, "[vision] threads")]


def test_chute_positions_can_be_measured_from_the_head_of_the_belt(tmp_path):
    shifted = LINE
    for old, new in (("1.5", "3.5"), ("2.7", "4.7"), ("3.9", "5.9"), ("5.0", "7.0")):
        shifted = shifted.replace(f"position_m = {old}", f"position_m = {new}")
    config = load_config(write(tmp_path, set_keys(shifted, {("line", "scan_point_m"): "2.0"})))
    same = load_config(write(tmp_path, LINE))
    assert config.geometry.chutes == same.geometry.chutes
    assert config.geometry.decision_after_scan_s == pytest.approx(0.4)


def test_the_chutes_may_be_written_as_tables_of_their_own(tmp_path):
    head, rest = LINE.split("chutes = [\n", 1)
    tail = rest.split("]\n", 1)[1]
    tables = "".join(f'\n[[line.chutes]]\nnumber = {c["number"]}\nposition_m = {c["position_m"]}\nside = "{c["side"]}"\n'
                     for c in tomllib.loads(LINE)["line"]["chutes"])
    text = head + tail + tables
    assert load_config(write(tmp_path, text)).geometry.chutes == load_config(write(tmp_path, LINE)).geometry.chutes
    broken = text.replace('number = 4\nposition_m = 2.7\nside = "right"', 'number = 4\nposition_m = 2.7\nside = "rigth"')
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, broken))
    line = broken.splitlines().index('side = "rigth"') + 1
    assert caught.value.errors == [f'{tmp_path}/line.toml:{line}: [line] chutes #4 side = "rigth": not an allowed '
                                   'value (did you mean "right"?). Allowed: one of "left", "right", "end"']


def test_the_screen_token_file_defaults_to_the_records_folder(tmp_path):
    config = load_config(write(tmp_path, LINE + '\n[records]\nfolder = "rec"\n'))
    assert config["screen"] == {"enabled": True, "bind": "127.0.0.1", "port": 8480, "token_file": "rec/screen-tokens.txt",
                                "allowed_hosts": ""}
    assert config.resolve(config["screen"]["token_file"]) == tmp_path.resolve() / "rec" / "screen-tokens.txt"
    config = load_config(write(tmp_path, LINE + '\n[screen]\ntoken_file = "/etc/sortline/tokens"\n'))
    assert config["screen"]["token_file"] == "/etc/sortline/tokens"


def test_check_config_prints_a_summary_of_a_valid_line(tmp_path):
    path = write(tmp_path.resolve(), LINE)
    assert check_config(path) == (0, f"""{path}: OK
  line      Test line: 6 chutes (3 left, 2 right, end chute 6), belt 2 m/s, swing-arm diverters (300 ms)
  plc       modbus 127.0.0.1:15020
  plan      t1 "t1": 2 destinations, 12 couriers, 2 routing codes, 0 pre-advice records
  shapes    routing codes are read in the shapes 3-3-2
  special   no_read 6, multi_read 6, no_rule 5, overflow 5, reject 6
  budget    400 ms per parcel from scan to decision point; stages need 165 ms (image 60 + read 80 + decide 5 + assign 20); 235 ms left
  records   {path.parent}/var/records (kept 90 days)
  screen    http://127.0.0.1:8480/ (token in {path.parent}/var/records/screen-tokens.txt)
  metrics   http://127.0.0.1:9108/metrics (for Prometheus, no login)
""", "")


def test_check_config_lists_every_error_and_fails(tmp_path):
    path = write(tmp_path.resolve(), edit(edit(LINE, "switch_time_ms = 300", "switch_time_ms = 300 ms"),
                                          "[vision]", "[vison]"))
    code, out, err = check_config(path)
    assert (code, out) == (1, "")
    assert err == (f"config {path} has 1 error(s); the line would not start with it:\n"
                   f"  {path}:5: not valid TOML: Expected newline or end of document after a statement "
                   "(at line 5, column 22). Fix the syntax there: text in quotes (name = \"Line 1\"), each key once "
                   "per section, lists in [ ]\n")
    path = write(tmp_path.resolve(), edit(edit(LINE, "switch_time_ms = 300", "switch_time_ms = 3000"),
                                          "[vision]", "[vison]"))
    code, out, err = check_config(path)
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"config {path} has 2 error(s); the line would not start with it:",
        f"  {path}:5: [line] switch_time_ms = 3000: out of range. Allowed: a number from 0 to 2000 ms",
        f"  {path}:24: [vison]: unknown section (did you mean [vision]?). Sections are: [line], [plc], [camera], "
        "[vision], [reader], [scale], [budgets], [plan], [records], [screen], [metrics]"]


def test_check_config_finds_what_only_a_full_plan_build_sees(tmp_path):
    folder = tmp_path.resolve()
    (folder / "pre.csv").write_text("waybill,destination\nSF1234567890123,Qicun\nSF1234567890124,Qicum\n")
    path = write(folder, LINE, PLAN + '\n[preadvice]\nfiles = ["pre.csv"]\n')
    code, out, err = check_config(path)
    assert (code, out) == (1, "")
    assert err.splitlines()[0] == f"config {path} has 1 error(s); the line would not start with it:"
    assert err.splitlines()[1].startswith(f"  {folder}/pre.csv:3: no destination 'Qicum' in the plan")


def test_the_docs_command_says_when_the_docs_are_out_of_date():
    done = subprocess.run([sys.executable, "-m", "edge.config_docs", "--check"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    assert config_docs.reference() in config_docs.DOC.read_text(encoding="utf-8")
    assert config_docs.updated(config_docs.BEGIN + "\nold\n" + config_docs.END) != config_docs.BEGIN + "\nold\n" + \
        config_docs.END
