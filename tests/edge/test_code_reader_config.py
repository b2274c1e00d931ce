"""[reader] in the line config: every mistake named with its line, key, value and fix."""
import pytest

from edge.config import load_config
from tests.edge.config_files import LINE, assert_one_problem, reader_section, section_problems, write


def problems(tmp_path, reader: str) -> list[str]:
    return section_problems(tmp_path, "reader", reader)


def test_left_out_it_is_off(tmp_path):
    assert load_config(write(tmp_path))["reader"]["mode"] == "off"


def test_the_reader_section_of_the_link_tests_is_one_the_config_check_gives(tmp_path):
    path = write(tmp_path, LINE + '\n[reader]\nmode = "client"\nhost = "127.0.0.1"\nport = 51236\n'
                                  'template = "{trigger},{codes}"\nmatch = "trigger"\nmax_frame_bytes = 256\n'
                                  'reconnect_max_ms = 200\n')
    assert dict(load_config(path)["reader"]) == reader_section("client", 51236)


def test_a_working_reader_section_loads(tmp_path):
    assert problems(tmp_path, 'mode = "client"\nhost = "192.168.0.31"\nport = 51236\nframing = "stx-etx"\n'
                              'prefix = "RES:"\ntemplate = "{trigger};{skip};{codes}"\ncode_separator = " "\n'
                              'match = "trigger"\nwait_ms = 50\n') == []
    assert problems(tmp_path, 'mode = "server"\nhost = "0.0.0.0"\npattern = "^(?P<codes>.*)$"\n') == []


@pytest.mark.parametrize("reader, words", [
    ('mode = "clinet"\n', ['[reader] mode: not an allowed value (did you mean "client"?)']),
    ('mode = "client"\ntemplate = "{trigger},{code}"\n', ["[reader] template: {code} is not a field", "template ="]),
    ('mode = "client"\ntemplate = "{trigger}"\n', ["no {codes}"]),
    ('mode = "client"\npattern = "(?P<codes>"\n', ["[reader] pattern: not a regular expression"]),
    ('mode = "client"\npattern = "(?P<id>\\\\d+),(?P<codes>.*)"\n', ["groups id are not fields"]),
    ('mode = "client"\ntemplate = "{codes}"\npattern = "(?P<codes>.*)"\n', ["[reader] pattern: given together with "
                                                                          "template", "Keep one"]),
    ('mode = "client"\nmatch = "trigger"\n', ['[reader] match: the template has no trigger id', 'match = "time"']),
    ('mode = "client"\nwait_ms = 200\n', ["[reader] wait_ms: longer than [camera] image_wait_ms + [vision] budget_ms "
                                          "(140 ms)", "Set wait_ms to 140 or less"]),
    ('mode = "server"\nport = 15020\n', ["[reader] port: the controller would listen on a port this PC already "
                                         "uses ([plc] port)"]),
    ('mode = "client"\nframing = "crlf"\n', ['[reader] framing: not an allowed value', '"line", "stx-etx"']),
    ('mode = "client"\nmax_frame_bytes = 8\n', ["[reader] max_frame_bytes: out of range"]),
    ('mode = "client"\nno_read = ""\n', ["[reader] no_read: must not be empty"]),
    ('mode = "client"\nwait = 50\n', ["[reader] wait: unknown key (did you mean wait_ms?)"]),
])
def test_mistakes_are_named_with_their_fix(tmp_path, reader, words):
    assert_one_problem(problems(tmp_path, reader), words)


def test_an_off_reader_is_not_checked_beyond_its_keys(tmp_path):
    assert problems(tmp_path, 'mode = "off"\ntemplate = "{trigger}"\n') == []
