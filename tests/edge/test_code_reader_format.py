"""Framing and parsing of code reader results, on the byte streams the common readers send
(the settings of docs/equipment.md), cut at every point, and on what a broken reader sends."""
import random

import pytest

from edge.code_reader_format import (Framer, Layout, LayoutError, Parsed, Problem, compiled_pattern, frame_bytes,
                                     template_regex)

SF, YT, JT = "SF5790189238428", "YT2465008785834", "JT131491349252"

# (what the reader sends, framing, layout keys, the results expected): docs/equipment.md
VENDOR_STREAMS = {
    "hikrobot-id-trigger-codes-crlf": (
        f"1201,{SF}\r\n1202,NoRead\r\n1203,{YT};{JT}\r\n".encode(), "line",
        dict(template="{trigger},{codes}", separator=";"),
        [Parsed(1201, (SF,)), Parsed(1202, ()), Parsed(1203, (YT, JT))]),
    "cognex-dataman-codes-crlf": (
        f"{SF}\r\nNoRead\r\n{YT},{JT}\r\n".encode(), "line",
        dict(template="{codes}", separator=","),
        [Parsed(None, (SF,)), Parsed(None, ()), Parsed(None, (YT, JT))]),
    "datalogic-matrix-stx-header-crlf": (
        f"\x02{SF}\r\n\x02NOREAD\r\n".encode(), "line",
        dict(prefix="\x02", template="{codes}", no_read="NOREAD"),
        [Parsed(None, (SF,)), Parsed(None, ())]),
    "sick-lector-stx-etx": (
        f"\x02{SF}\r\n\x03\x02NoRead\r\n\x03\x02{YT};{JT}\r\n\x03".encode(), "stx-etx",
        dict(template="{codes}", separator=";"),
        [Parsed(None, (SF,)), Parsed(None, ()), Parsed(None, (YT, JT))]),
    "reader-with-header-time-and-count": (
        f"RES;000042;20261207T150102.123;1;{SF}\r\nRES;000043;20261207T150102.211;0;NoRead\r\n".encode(), "line",
        dict(prefix="RES;", template="{trigger};{skip};{skip};{codes}", separator="|"),
        [Parsed(42, (SF,)), Parsed(43, ())]),
    "pattern-with-named-groups": (
        f"<T=77 N=1 C={SF}>\n<T=78 N=0 C=>\n".encode(), "line",
        dict(pattern=r"<T=(?P<trigger>\d+) N=\d+ C=(?P<codes>[^>]*)>"),
        [Parsed(77, (SF,)), Parsed(78, ())]),
}


def results(stream: bytes, framing: str, layout: Layout, cuts: list[int]) -> list:
    framer, out = Framer(framing, 256), []
    bounds = [0, *sorted(cuts), len(stream)]
    for a, b in zip(bounds, bounds[1:]):
        out += framer.feed(stream[a:b])
    out += framer.end()
    return [layout.parse(x) if isinstance(x, bytes) else x for x in out]


@pytest.mark.parametrize("name", sorted(VENDOR_STREAMS))
def test_vendor_streams_read_whole_and_cut_anywhere(name):
    stream, framing, keys, expected = VENDOR_STREAMS[name]
    keys = dict(keys)
    layout = Layout(prefix=keys.pop("prefix", ""), template=keys.pop("template", "{codes}"),
                    pattern=keys.pop("pattern", ""), separator=keys.pop("separator", ";"),
                    no_read=keys.pop("no_read", "NoRead"))
    assert results(stream, framing, layout, []) == expected
    # TCP delivers the same bytes in any pieces: every single cut, and random sets of cuts.
    for cut in range(1, len(stream)):
        assert results(stream, framing, layout, [cut]) == expected, f"cut at byte {cut}"
    rng = random.Random(7)
    for _ in range(200):
        cuts = rng.sample(range(1, len(stream)), rng.randint(1, min(12, len(stream) - 1)))
        assert results(stream, framing, layout, cuts) == expected


def test_line_framing_takes_cr_lf_and_crlf_and_skips_empty_lines():
    framer = Framer("line", 64)
    assert framer.feed(b"A\rB\nC\r\n\r\n\nD") == [b"A", b"B", b"C"]
    assert framer.feed(b"\r\n") == [b"D"]


def test_overlong_line_is_counted_once_and_the_next_line_is_read():
    framer = Framer("line", 16)
    out = framer.feed(b"X" * 10)
    out += framer.feed(b"Y" * 10)           # over the limit here
    out += framer.feed(b"Z" * 5000)          # still the same line: no second problem
    out += framer.feed(b"\r\nSF5790189238428\r\n")
    assert [type(x) for x in out] == [Problem, bytes]
    assert out[0].kind == "overlong" and "max_frame_bytes" in out[0].detail
    assert out[1] == b"SF5790189238428"


def test_stx_etx_garbage_between_frames_and_a_frame_cut_by_the_next_stx():
    framer = Framer("stx-etx", 64)
    out = framer.feed(b"noise\x02SF5790189238428\x03\r\n\x02half\x02YT2465008785834\x03")
    kinds = [x.kind if isinstance(x, Problem) else x for x in out]
    assert kinds == ["garbage", b"SF5790189238428", "partial", b"YT2465008785834"]
    assert "noise" in out[0].detail


def test_connection_end_reports_a_partial_frame_and_leftover_noise():
    framer = Framer("line", 64)
    framer.feed(b"SF57901")
    [problem] = framer.end()
    assert problem.kind == "partial" and "SF57901" in problem.detail
    stx = Framer("stx-etx", 64)
    stx.feed(b"\x02SF5790189238428\x03junk")
    assert [p.kind for p in stx.end()] == ["garbage"]


def test_stx_etx_overlong_frame_is_thrown_away_up_to_its_etx():
    framer = Framer("stx-etx", 16)
    out = framer.feed(b"\x02" + b"9" * 40 + b"\x03\x02SF5790189238428\x03")
    assert [x.kind if isinstance(x, Problem) else x for x in out] == ["overlong", b"SF5790189238428"]


def test_bad_results_are_problems_that_say_what_was_wrong():
    layout = Layout(prefix="RES:", template="{trigger},{codes}")
    assert layout.parse(b"RES:5,SF5790189238428") == Parsed(5, ("SF5790189238428",))
    for frame, words in [(b"XYZ:5,SF5790189238428", "prefix"), (b"RES:five,SF5790189238428", "layout"),
                         (b"RES:9999999999,SF5790189238428", "trigger id"), (b"RES:5,\xff\xfe", "UTF-8"),
                         (b"RES:5,SF57\x01", "printable"), (b"RES:5," + b";".join(b"A%d" % i for i in range(17)), "17 codes"),
                         (b"RES:5," + b"9" * 65, "printable ASCII")]:
        problem = layout.parse(frame)
        assert isinstance(problem, Problem) and problem.kind == "garbage", frame
        assert words in problem.detail, (frame, problem.detail)


def test_no_read_marker_in_any_case_and_repeated_codes_once():
    layout = Layout(template="{codes}", separator=";", no_read="NoRead")
    assert layout.parse(b"NOREAD") == Parsed(None, ())
    assert layout.parse(b"noread;SF5790189238428;SF5790189238428") == Parsed(None, ("SF5790189238428",))
    assert layout.parse(b"") == Parsed(None, ())


def test_template_and_pattern_errors_name_the_fix():
    with pytest.raises(LayoutError, match="not a field"):
        template_regex("{trigger},{code}")
    with pytest.raises(LayoutError, match="no {codes}"):
        template_regex("{trigger}")
    with pytest.raises(LayoutError, match="named 2 times"):
        template_regex("{codes},{codes}")
    with pytest.raises(LayoutError, match="not a regular expression"):
        compiled_pattern("(?P<codes>")
    with pytest.raises(LayoutError, match="no group named codes"):
        compiled_pattern(r"(?P<trigger>\d+)")
    with pytest.raises(LayoutError, match="not fields"):
        compiled_pattern(r"(?P<trigger>\d+),(?P<codes>.*),(?P<time>.*)")


def test_frame_bytes_round_trip():
    for framing in ("line", "stx-etx"):
        framer = Framer(framing, 64)
        assert framer.feed(frame_bytes("7,SF5790189238428", framing)) == [b"7,SF5790189238428"]
