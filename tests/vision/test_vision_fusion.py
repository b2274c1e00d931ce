from vision.fusion import ROUTING_MIN_CONFIDENCE, TextHit, fuse

SF = "SF1234567890123"
SF_NEAR = "SF1234567890128"
ZTO = "731234567890"


def test_barcode_alone():
    r = fuse([SF], [], 3.0)
    assert r.waybills == (SF,) and r.courier == "SF" and r.sources == {"waybill": "barcode"}
    assert r.confidence == 1.0 and r.no_read_reason is None


def test_barcode_and_text_agree():
    r = fuse([SF], [TextHit("waybill", SF, 0.99), TextHit("routing_code", "571-J25-03", 0.995)], 3.0)
    assert r.waybills == (SF,) and r.routing_code == "571-J25-03"
    assert r.sources == {"waybill": "barcode+text", "routing_code": "text"}
    assert r.confidence == 0.995


def test_a_routing_code_below_its_own_floor_is_not_taken():
    # A waybill counts from 0.90; a routing code, printed once and never checked by a barcode, from its floor.
    below = ROUTING_MIN_CONFIDENCE - 0.005
    r = fuse([SF], [TextHit("waybill", SF, below), TextHit("routing_code", "571-J25-03", below)], 3.0)
    assert r.waybills == (SF,) and r.routing_code is None and "routing_code" not in r.sources


def test_text_alone_when_barcode_is_damaged():
    r = fuse([], [TextHit("waybill", SF, 0.95)], 3.0)
    assert r.waybills == (SF,) and r.sources["waybill"] == "text" and r.confidence == 0.95


def test_close_disagreement_is_a_no_read_not_a_guess():
    r = fuse([SF], [TextHit("waybill", SF_NEAR, 0.99)], 3.0)
    assert r.waybills == () and "disagree" in r.no_read_reason


def test_distant_printed_number_is_a_second_label():
    r = fuse([SF], [TextHit("waybill", ZTO, 0.99)], 3.0)
    assert r.waybills == tuple(sorted((SF, ZTO))) and r.is_multi_read and r.courier is None
    assert r.sources["by_waybill"] == {SF: "barcode", ZTO: "text"}


def test_low_confidence_and_invalid_text_are_ignored():
    hits = [TextHit("waybill", SF, 0.5), TextHit("waybill", "RR473124828GB", 0.99),
            TextHit("routing_code", "571-J25-03", 0.3)]
    r = fuse([], hits, 3.0)
    assert r.waybills == () and r.routing_code is None and r.no_read_reason


def test_routing_code_alone_is_a_read_without_waybill():
    r = fuse([], [TextHit("routing_code", "571-J25-03", 0.99)], 3.0)
    assert r.waybills == () and r.routing_code == "571-J25-03" and r.no_read_reason is None


def test_two_routing_codes_give_none():
    hits = [TextHit("routing_code", "571-J25-03", 0.99), TextHit("routing_code", "572-J25-03", 0.99)]
    r = fuse([SF], hits, 3.0)
    assert r.waybills == (SF,) and r.routing_code is None


def test_foreign_barcodes_are_not_waybills():
    r = fuse(["ORDER-1234", "4006381333931"], [], 3.0, ["2 Code 128 symbol(s) decoded, none in a waybill format"])
    assert r.waybills == () and "none in a waybill format" in r.no_read_reason


def test_two_printed_lines_reading_the_same_number_combine():
    hits = [TextHit("waybill", SF, 0.8), TextHit("waybill", SF, 0.7)]
    r = fuse([], hits, 3.0)
    assert r.waybills == (SF,) and abs(r.confidence - 0.94) < 1e-9
    assert fuse([], hits[:1], 3.0).waybills == ()


def test_why_a_routing_code_read_is_not_taken_is_told():
    low = fuse(["SF1234567890123"], [TextHit("routing_code", "571-J25-03", 0.95)], 1.0)
    assert low.routing_code is None
    assert low.routing_note == (f"571-J25-03 not taken: confidence 0.950, under the "
                                f"{ROUTING_MIN_CONFIDENCE:g} a routing code needs")
    doubt = fuse(["SF1234567890123"], [TextHit("routing_code", "571-J25-03", 0.95),
                                       TextHit("routing_line", "571-J25-0", 0.999, "not in a shape of the sort plan's routing codes")], 1.0)
    assert doubt.routing_note == "571-J25-0 not taken: not in a shape of the sort plan's routing codes"
    two = fuse([], [TextHit("routing_code", "571-J25-03", 0.999), TextHit("routing_code", "100-B12-07", 0.999)], 1.0)
    assert two.routing_note == "several routing codes printed (100-B12-07, 571-J25-03)"
    taken = fuse([], [TextHit("routing_code", "571-J25-03", 0.999)], 1.0)
    assert taken.routing_code == "571-J25-03" and taken.routing_note is None
    assert fuse(["SF1234567890123"], [], 1.0).routing_note is None    # nothing read: nothing to say
