"""Broken line configs and plans: each case asserts every message a technician sees, exactly.

One mistake gives its own message and no cascade of others; the messages name the file, the
line, the key, the value as written, what is allowed and, for a misspelling, what was meant.
"""
import pytest

from edge.config import ConfigError, load_config
from tests.edge.config_files import LINE, PLAN, edit, write

# (case, file edited, text replaced, replacement, every message in order; {d} is the folder)
CASES = [
    ('text-for-number', 'line', 'belt_speed_m_s = 2.0',
     'belt_speed_m_s = "fast"',
     ['{d}/line.toml:3: [line] belt_speed_m_s = "fast": must be a number. Allowed: a number from 0.1 to 5 m/s']),
    ('float-for-int', 'line', 'port = 15020',
     'port = 15020.5',
     ['{d}/line.toml:18: [plc] port = 15020.5: must be a whole number. Allowed: a whole number from 1 to 65535']),
    ('bool-for-number', 'line', 'image_wait_ms = 60',
     'image_wait_ms = true',
     ['{d}/line.toml:22: [camera] image_wait_ms = true: must be a number. Allowed: a number from 0 to 5000 ms']),
    ('number-for-bool', 'line', 'file = "line.plan.toml"',
     'file = "line.plan.toml"\nwatch = 1',
     ['{d}/line.toml:29: [plan] watch = 1: must be true or false. Write watch = true or watch = false, without quotes']),
    ('text-for-int', 'line', 'end_chute = 6',
     'end_chute = "6"',
     ['{d}/line.toml:7: [line] end_chute = "6": must be a whole number. Allowed: a whole number from 1 to 128']),
    ('empty-text', 'line', 'name = "Test line"',
     'name = "  "',
     ['{d}/line.toml:2: [line] name = "  ": must not be empty. Write a value between the quotes: name shown on the line screen and in records']),
    ('too-fast', 'line', 'belt_speed_m_s = 2.0',
     'belt_speed_m_s = 9',
     ['{d}/line.toml:3: [line] belt_speed_m_s = 9: out of range. Allowed: a number from 0.1 to 5 m/s']),
    ('negative-time', 'line', 'switch_time_ms = 300',
     'switch_time_ms = -5',
     ['{d}/line.toml:5: [line] switch_time_ms = -5: out of range. Allowed: a number from 0 to 2000 ms']),
    ('misspelt-choice', 'line', 'diverter = "swing-arm"',
     'diverter = "swingarm"',
     ['{d}/line.toml:4: [line] diverter = "swingarm": not an allowed value (did you mean "swing-arm"?). Allowed: one of "swing-arm", "pusher", "belt", "cross-belt", "narrow-belt"']),
    ('unknown-choice', 'line', 'diverter = "swing-arm"',
     'diverter = "conveyor"',
     ['{d}/line.toml:4: [line] diverter = "conveyor": not an allowed value. Allowed: one of "swing-arm", "pusher", "belt", "cross-belt", "narrow-belt"']),
    ('misspelt-side', 'line', '{ number = 3, position_m = 2.7, side = "left" }',
     '{ number = 3, position_m = 2.7, side = "lefft" }',
     ['{d}/line.toml:11: [line] chutes #3 side = "lefft": not an allowed value (did you mean "left"?). Allowed: one of "left", "right", "end"']),
    ('text-position', 'line', '{ number = 3, position_m = 2.7, side = "left" }',
     '{ number = 3, position_m = "2.7", side = "left" }',
     ['{d}/line.toml:11: [line] chutes #3 position_m = "2.7": must be a number. Allowed: a number from 0 to 1000 m']),
    ('entry-not-table', 'line', '  { number = 6, position_m = 5.0, side = "end" },',
     '  { number = 6, position_m = 5.0, side = "end" },\n  7,',
     ['{d}/line.toml:8: [line] chutes #7 = 7: must be a table. Write { number = <a whole number from 1 to 128>, position_m = <a number from 0 to 1000 m>, side = <one of "left", "right", "end"> }']),
    ('entry-missing-key', 'line', '{ number = 4, position_m = 2.7, side = "right" }',
     '{ number = 4, position_m = 2.7 }',
     ['{d}/line.toml:12: [line] chutes #4 side: missing. Add side = <one of "left", "right", "end"> to this entry']),
    ('entry-misspelt-key', 'line', '{ number = 4, position_m = 2.7, side = "right" }',
     '{ number = 4, positon_m = 2.7, side = "right" }',
     ['{d}/line.toml:12: [line] chutes #4 positon_m = 2.7: unknown key (did you mean position_m?). Keys of an entry: number, position_m, side']),
    ('entry-unknown-key', 'line', '{ number = 4, position_m = 2.7, side = "right" }',
     '{ number = 4, position_m = 2.7, side = "right", colour = "red" }',
     ['{d}/line.toml:12: [line] chutes #4 colour = "red": unknown key. Keys of an entry: number, position_m, side']),
    ('misspelt-key', 'line', 'belt_speed_m_s = 2.0',
     'belt_sped_m_s = 2.0',
     ['{d}/line.toml:3: [line] belt_sped_m_s = 2.0: unknown key (did you mean belt_speed_m_s?). Keys in [line]: name, belt_speed_m_s, scan_point_m, encoder_mm_per_count, diverter, switch_time_ms, plc_margin_ms, chute_width_m, end_chute, chutes']),
    ('unknown-key', 'line', 'name = "Test line"',
     'name = "Test line"\ncolour = "red"',
     ['{d}/line.toml:3: [line] colour = "red": unknown key. Keys in [line]: name, belt_speed_m_s, scan_point_m, encoder_mm_per_count, diverter, switch_time_ms, plc_margin_ms, chute_width_m, end_chute, chutes']),
    ('key-in-wrong-section', 'line', 'image_wait_ms = 60',
     'image_wait_ms = 60\nbudget_ms = 80',
     ['{d}/line.toml:23: [camera] budget_ms = 80: unknown key in [camera]; it belongs in [vision]. Move it under [vision]']),
    ('misspelt-section', 'line', '[vision]',
     '[vison]',
     ['{d}/line.toml:24: [vison]: unknown section (did you mean [vision]?). Sections are: [line], [plc], [camera], [vision], [reader], [scale], [budgets], [plan], [records], [screen], [metrics]']),
    ('unknown-section', 'line', '[vision]\nbudget_ms = 80',
     '[vision]\nbudget_ms = 80\n\n[printer]\nmodel = "x"',
     ['{d}/line.toml:27: [printer]: unknown section. Sections are: [line], [plc], [camera], [vision], [reader], [scale], [budgets], [plan], [records], [screen], [metrics]']),
    ('section-not-table', 'line', '[line]\n',
     'records = "var"\n\n[line]\n',
     ['{d}/line.toml:1: [records] = "var": must be a section. Write [records] on a line of its own, then its keys as key = value lines']),
    ('missing-key', 'line', 'switch_time_ms = 300\n',
     '',
     ['{d}/line.toml:1: [line] switch_time_ms: missing. Add switch_time_ms = <a number from 0 to 2000 ms> under [line]: time a diverter needs to move into place']),
    ('missing-section', 'line', '[plan]\nfile = "line.plan.toml"\n',
     '',
     ['{d}/line.toml: [plan] file: missing. Add file = <text in quotes> under [plan]: sort plan file, relative to this config file; it names its own pre-advice files']),
    ('toml-syntax', 'line', 'name = "Test line"',
     'name = Test line',
     ['{d}/line.toml:2: not valid TOML: Invalid value (at line 2, column 8). Fix the syntax there: text in quotes (name = "Line 1"), each key once per section, lists in [ ]']),
    ('duplicate-key', 'line', 'plc_margin_ms = 50',
     'plc_margin_ms = 50\nbelt_speed_m_s = 2.5',
     ['{d}/line.toml:7: not valid TOML: Cannot overwrite a value (at line 7, column 21). Fix the syntax there: text in quotes (name = "Line 1"), each key once per section, lists in [ ]']),
    ('duplicate-chute', 'line', '{ number = 5, position_m = 3.9, side = "left" }',
     '{ number = 3, position_m = 3.9, side = "left" }',
     ['{d}/line.toml:13: [line] chutes #5 number = 3: chute 3 is listed twice (first in entry #3). Give each chute one entry']),
    ('chute-gap', 'line', '{ number = 5, position_m = 3.9, side = "left" }',
     '{ number = 7, position_m = 3.9, side = "left" }',
     ['{d}/line.toml:8: [line] chutes: chute numbers must run from 1 to 6 without gaps; missing: 5. Number the chutes 1, 2, 3, ... (in any order)']),
    ('end-chute-missing', 'line', 'end_chute = 6',
     'end_chute = 9',
     ['{d}/line.toml:7: [line] end_chute = 9: no such chute in [line] chutes. Use the number of the chute at the end of the belt (1 to 6)']),
    ('end-chute-on-side', 'line', 'end_chute = 6',
     'end_chute = 5',
     ['{d}/line.toml:7: [line] end_chute = 5: chute 5 is on the left side, not at the end of the belt. Set end_chute to the chute with side = "end" (6)']),
    ('two-end-chutes', 'line', '{ number = 5, position_m = 3.9, side = "left" }',
     '{ number = 5, position_m = 3.9, side = "end" }',
     ['{d}/line.toml:13: [line] chutes #5 side = "end": chute 5 is also at the end of the belt, but the end chute is 6. Only the end chute has side = "end"; give this one "left" or "right"']),
    ('no-end-side', 'line', '{ number = 6, position_m = 5.0, side = "end" }',
     '{ number = 6, position_m = 5.0, side = "right" }',
     ['{d}/line.toml:8: [line] chutes: no chute has side = "end". Mark the chute at the end of the belt (end_chute = 6) with side = "end"']),
    ('chute-before-scan-point', 'line', 'belt_speed_m_s = 2.0',
     'belt_speed_m_s = 2.0\nscan_point_m = 2.0',
     ['{d}/line.toml:10: [line] chutes #1 position_m = 1.5: chute 1 is not after the scan point (scan_point_m = 2.0). Chutes sit downstream of the scan photo-eye: measure positions from the same origin as scan_point_m',
      '{d}/line.toml:11: [line] chutes #2 position_m = 1.5: chute 2 is not after the scan point (scan_point_m = 2.0). Chutes sit downstream of the scan photo-eye: measure positions from the same origin as scan_point_m']),
    ('end-chute-not-last', 'line', '{ number = 5, position_m = 3.9, side = "left" }',
     '{ number = 5, position_m = 5.5, side = "left" }',
     ['{d}/line.toml:14: [line] chutes #6 position_m = 5.0: the end chute must be the furthest along the belt, but chute 5 is at 5.5 m. Give the end chute a position past every other chute']),
    ('overlap', 'line', '{ number = 3, position_m = 2.7, side = "left" }',
     '{ number = 3, position_m = 2.0, side = "left" }',
     ['{d}/line.toml:11: [line] chutes #3 position_m = 2.0: chute 3 overlaps chute 1 on the left side: 0.50 m apart, less than chute_width_m = 0.8. Correct the positions, or chute_width_m if the openings are narrower']),
    ('budget-short', 'line', 'budget_ms = 80',
     'budget_ms = 320',
     ['{d}/line.toml: decision budget: 400 ms, but the stages need 405 ms. The first diverter is 1.5 m after the scan point: 750 ms at 2 m/s, minus [line] switch_time_ms 300 and plc_margin_ms 50; the stages are [camera] image_wait_ms 60 + [vision] budget_ms 320 + [budgets] decide_ms 5 + [budgets] assign_ms 20. Lower the stage budgets by 5 ms, or move the scan point further upstream, or slow the belt']),
    ('budget-negative', 'line', 'switch_time_ms = 300',
     'switch_time_ms = 800',
     ['{d}/line.toml: decision budget: -100 ms, but the stages need 165 ms. The first diverter is 1.5 m after the scan point: 750 ms at 2 m/s, minus [line] switch_time_ms 800 and plc_margin_ms 50; the stages are [camera] image_wait_ms 60 + [vision] budget_ms 80 + [budgets] decide_ms 5 + [budgets] assign_ms 20. Lower the stage budgets by 265 ms, or move the scan point further upstream, or slow the belt']),
    ('heartbeat', 'line', 'port = 15020',
     'port = 15020\nheartbeat_interval_ms = 100\nheartbeat_timeout_ms = 150',
     ['{d}/line.toml:20: [plc] heartbeat_timeout_ms = 150: shorter than two heartbeats (heartbeat_interval_ms = 100). Set it to at least 200: one late heartbeat must not make the PLC reject every parcel']),
    ('register-overlap', 'line', 'port = 15020',
     'port = 15020\nedge_base = 100',
     ["{d}/line.toml:19: [plc] edge_base = 100: the controller's registers 100..211 overlap the PLC's registers 0..231. Move edge_base to 232 or above, or plc_base to 212 or above, as the PLC program has them"]),
    ('screen-bind', 'line', 'file = "line.plan.toml"',
     'file = "line.plan.toml"\n\n[screen]\nbind = "localhost"',
     ['{d}/line.toml:31: [screen] bind = "localhost": not an IP address. Write "127.0.0.1" (this PC only) or this PC\'s address on the line network']),
    ('screen-port', 'line', 'file = "line.plan.toml"',
     'file = "line.plan.toml"\n\n[screen]\nport = 15020',
     ['{d}/line.toml:31: [screen] port = 15020: the same port as the PLC on this PC ([plc] port = 15020). Choose another port for the screen, e.g. 8480']),
    ('metrics-listen-no-port', 'line', 'file = "line.plan.toml"',
     'file = "line.plan.toml"\n\n[metrics]\nlisten = "127.0.0.1"',
     ['{d}/line.toml:31: [metrics] listen = "127.0.0.1": not an address and a port. Write an address and a port: "127.0.0.1:9108" (this PC only) or this PC\'s address on the site network, "192.168.1.20:9108"']),
    ('metrics-listen-name', 'line', 'file = "line.plan.toml"',
     'file = "line.plan.toml"\n\n[metrics]\nlisten = "localhost:9108"',
     ['{d}/line.toml:31: [metrics] listen = "localhost:9108": \'localhost\' is not an IP address. Write an address and a port: "127.0.0.1:9108" (this PC only) or this PC\'s address on the site network, "192.168.1.20:9108"']),
    ('metrics-listen-port', 'line', 'file = "line.plan.toml"',
     'file = "line.plan.toml"\n\n[metrics]\nlisten = "127.0.0.1:91080"',
     ['{d}/line.toml:31: [metrics] listen = "127.0.0.1:91080": port \'91080\' is not a whole number from 1 to 65535. Write an address and a port: "127.0.0.1:9108" (this PC only) or this PC\'s address on the site network, "192.168.1.20:9108"']),
    ('metrics-on-screen-port', 'line', 'file = "line.plan.toml"',
     'file = "line.plan.toml"\n\n[metrics]\nlisten = "0.0.0.0:8480"',
     ['{d}/line.toml:31: [metrics] listen = "0.0.0.0:8480": the same port as the line screen ([screen] port = 8480). Choose another port for /metrics, e.g. 9108']),
    ('metrics-on-plc-port', 'line', 'file = "line.plan.toml"',
     'file = "line.plan.toml"\n\n[metrics]\nlisten = "127.0.0.1:15020"',
     ['{d}/line.toml:31: [metrics] listen = "127.0.0.1:15020": the same port as the PLC on this PC ([plc] port = 15020). Choose another port for /metrics, e.g. 9108']),
    ('metrics-misspelt-key', 'line', 'file = "line.plan.toml"',
     'file = "line.plan.toml"\n\n[metrics]\nlisen = "127.0.0.1:9108"',
     ['{d}/line.toml:31: [metrics] lisen = "127.0.0.1:9108": unknown key (did you mean listen?). Keys in [metrics]: enabled, listen']),
    ('plan-missing', 'line', 'file = "line.plan.toml"',
     'file = "nope.plan.toml"',
     ['{d}/nope.plan.toml: the plan file does not exist. Check the path, or copy one from configs/plans/']),
    ('plan-dangling-chute', 'plan', 'chutes = [3]',
     'chutes = [3, 9]',
     ['{d}/line.plan.toml:21: [destinations."Lugang"] chutes = 9: each chute must be a whole number from 1 to 6. This line has 6 chutes; use one of them']),
    ('plan-dangling-special', 'plan', 'no_rule = 5',
     'no_rule = 30',
     ['{d}/line.plan.toml:7: [special] no_rule = 30: a chute number must be a whole number from 1 to 6. This line has 6 chutes; use one of them']),
    ('plan-reject-not-end', 'plan', 'reject = 6',
     'reject = 5',
     ["{d}/line.plan.toml:9: [special] reject = 5: the line's end chute is 6 ([line] end_chute in {d}/line.toml). Set reject = 6: a rejected parcel rides to the end of the belt, as does every parcel the PLC rejects on its own"]),
    ('plan-duplicate-route', 'plan', 'prefix = "312-Q04"',
     'code = "312-Q03-01"',
     ["{d}/line.plan.toml:28: [[routes]] #2 code = '312-Q03-01': the same code is already routed on line 23. Keep one rule per code; delete or change the other"]),
    ('plan-duplicate-override', 'plan', 'courier = "SF"\nchutes = [4]',
     'courier = "SF"\nchutes = [4]\n\n[[overrides]]\ncourier = "SF"\nchutes = [4]',
     ["{d}/line.plan.toml:36: [[overrides]] #2 courier = 'SF': an override for this courier is already on line 31. Keep one override per courier and destination"]),
    ('plan-duplicate-courier-format', 'plan', 'formats = ["YT#{13}"]',
     'formats = ["SF#{13}"]',
     ["{d}/line.plan.toml:15: [couriers.YTO] formats = 'SF#{13}': the same format is already given for courier 'SF'. Remove one of them: the first courier in the file would always win"]),
    ('plan-misspelt-destination', 'plan', 'destination = "Lugang"',
     'destination = "Lugan"',
     ["{d}/line.plan.toml:29: [[routes]] #2 destination = 'Lugan': no such destination (did you mean 'Lugang'?). Use one of the names under [destinations]"]),
    ('plan-unknown-key', 'plan', 'version = "t1"',
     'version = "t1"\nowner = "me"',
     ['{d}/line.plan.toml:3: [plan] owner: unknown key. Allowed keys here: version, name, spread, default_couriers']),

    ('plan-destination-on-special-chute', 'plan', 'chutes = [1, 2]',
     'chutes = [1, 2, 5]',
     ['{d}/line.plan.toml:18: [destinations."Qicun"] chutes = [1, 2, 5]: chute 5 is the no_rule chute in [special]. Use chutes that are not special here, or change [special]']),
    ('plan-override-on-end-chute', 'plan', 'courier = "SF"\nchutes = [4]',
     'courier = "SF"\nchutes = [4, 6]',
     ['{d}/line.plan.toml:33: [[overrides]] #1 chutes = [4, 6]: chute 6 is the no_read chute in [special]. Use chutes that are not special here, or change [special]']),
    ('plan-unknown-section', 'plan', '[special]',
     '[specials]',
     ["{d}/line.plan.toml:4: [specials]: unknown section (did you mean 'special'?). Sections are: [plan], [special], [couriers], [destinations], [routes], [courier_rules], [overrides], [preadvice], [weights]"]),
]


@pytest.mark.parametrize("target, old, new, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_broken_config_gives_exactly_these_messages(tmp_path, target, old, new, expected):
    folder = tmp_path.resolve()
    line, plan = (edit(LINE, old, new), PLAN) if target == "line" else (LINE, edit(PLAN, old, new))
    path = write(folder, line, plan)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.errors == [m.replace("{d}", str(folder)) for m in expected]


def test_the_unbroken_files_load(tmp_path):
    config = load_config(write(tmp_path))
    assert config.geometry.end_chute == 6 and len(config.geometry.chutes) == 6


def test_there_are_enough_cases():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


def test_check_config_names_missing_opcua_security_files(tmp_path, capsys):
    from edge.check_config import main
    from edge.config_copy import derive_config
    from tests.conftest import REPO
    path = derive_config(REPO / "configs" / "county-24.toml", tmp_path / "line.toml",
                         {"plc": {"protocol": "opcua", "opcua_security": "sign-and-encrypt"}})
    assert main([str(path)]) == 1
    err = capsys.readouterr().err
    assert f'{path}: [plc] opcua_certificate is needed with opcua_security = "sign-and-encrypt"' in err
    assert "opcua_server_certificate is needed" in err
