"""Real waybill numbers per courier, from public sources, against the default courier rules.

Each number below was printed by a courier and published: in an open-source courier validation
library's tests, in courier API answers quoted in public code (kuaidi100's query answers name
the courier they found in their "com" field), in courier open-platform notes. SOURCES says
where; a number's source key follows it. Near-misses are shapes a parcel carries that are not
waybills, or waybills one character off, and none may be taken.
"""
import numpy as np
import pytest

from vision.waybill import check_waybill

SOURCES = {
    "bf": "BF-zh/Courier-Validation, test/index.test.ts (github.com/BF-zh/Courier-Validation)",
    "udf": "Hive UDF com.chinagoods.bigdata.functions.logistic.UDFLogisticNoValid, its examples (public GitHub "
           "source, 2022)",
    "k100": "kuaidi100 query answer (nu, com) quoted in public code; the courier is kuaidi100's com field",
    "k100doc": "kuaidi100 query API documentation sample (com=yuantong, nu=V030344422), quoted in public code",
        "ztoapi": "ZTO open-platform answer (billCode) quoted in public code",
    "ztomock": "logistics trace mock with carrierCode ZTO001 (中通快递) in public code",
    "orderbridge": "order export sample (company 中通快递) in a public repository's README",
    "jdtest": "shipment test with carrier jingdong in public Java code",
    "jdmock": "order express mock with com=jd in public code",
    "deppon": "Deppon open-platform notes in public code (queryBillPrint tried on a real waybill)",
    "deppontest": "Deppon location-change request test in public Java code",
    "stoscan": "tracking answer with STO scan text (【福建安海公司】已收件) in public code",
    "bsht": "express query test with company code BSHT (百世汇通) in public Go code",
    "s10": "UPU S10 standard, its worked example (RR 47312482 9 GB)",
    "kdniao": "kdniao (快递鸟) request or answer quoted in public code; the courier is its ShipperCode",
    "sfapi": "SF open-platform (丰桥) answer or document sample quoted in public code (waybillNo, mailNo)",
    "k100auto": "kuaidi100 auto-number answer quoted in public code (its auto comCode names the courier)",
    "jtapi": "J&T open-platform request sample (billCode) quoted in public code",
    "taobao": "Taobao logistics query (mtop, mailNo) for a J&T parcel in public code",
    "jdapi": "JD logistics answer or request (waybillCode, deliveryId, wayBillNo, CarriageNO) in public code",
    "jdquery": "express query answer with type JD quoted in public code",
    "jddoc": "API model example for a JD waybill field (运单号) in public code",
    "depponquery": "Deppon tracking script in public code, its sample waybill",
    "kdnems": "kdniao answer (ShipperCode EMS, traces of 天津市邮政速递物流公司武清区分公司, 2018) in a public API document '物流运费模块' "
              "(/logistics/information, kdn_company_code EMS) and in Android class "
              "com.thn.lexi.orderList.LogisticsBean",
    "k100ems1": "kuaidi100 query?type=ems&postid=1115785780598 in the main() of a public Java HTTP utility class "
                "(also chaxun?com=ems&nu=)",
    "k100ems2": "kuaidi100 query?type=ems&postid=1085160751132 in a public Python express-query script (get_process)",
    "k100ems3": "kuaidi100 query?type=ems&postid=9745531155532 in the doc comment of a public Android Retrofit "
                "interface MailService",
    "k100sf1": "kuaidi100 query?type=shunfeng&postid=SF1420349064432, the HTTP_GET_URL of public C sources of a "
               "payment terminal (paytm_http_api.h, paytm_net_api.h)",
    "k100sf2": "kuaidi100 query?type=shunfeng&postid=SF6091240032008 in a public front-end API module (getList, "
               "utils/request)",
    "k100sf3": "kuaidi100 query?type=shunfeng&postid=SF1123989188840, a commented WATCH_HTTP_URI_STRING of public C "
               "sources",
    "k100jt": "kuaidi100 query?type=shunfeng&postid=SF1339172949508 and type=jtexpress&postid=JT5031271076511 in a "
              "public Java HttpClientUtil (package com.farerboy.framework), with a checkCode cookie for each number",
    "kdnsf": "kdniao request (ShipperCode SF, LogisticCode SF1613099010320) in the sign test of a public kdniao "
             "plugin (KuaidiniaoPlugin)",
    "k100yto": "kuaidi100 answer com=yuantong (status 200, 圆通速递 traces of 2017) for 884238800992987778 in a public "
               "Python script; the same number asked as debangwuliu: 单号不存在",
    "k100yto2": "LeeypOR/store-decoration-uniapp, pagesA/shop/logisticData.js: kuaidi100 answer com=yuantong (圆通速递) "
                "for YT5555508965056",
    "jtsdk": "maxbetas/jtexpress (Go SDK of the J&T open platform, 极兔快递开放平台), README.md: "
             "QueryTrack(\"JT2099306666983\")",
    "k100jt2": "kuaidi100 query (com jtexpress, num JT5495958974895) in the credentials check of a public Python "
               "backend",
    "k100jt3": "kuaidi100 answer com=jtexpress (深圳龙华区民乐网点) for JT4006791817090 in a public project's express-API "
               "document (kdapi.apistore.huaweicloud.com channelquery, '实测通过真实查询')",
    "stopage": "terryhuangbo/placeorder, frontend/modules/plorder/views/logistic/detail.php: 物流公司 申通快递, 运单编号 "
               "3308071893931",
    "k100sto1": "kuaidi100 answer com=shentong (值班室签收, 2018) for 3387798869530 in a public PHP controller (beside "
                "com=huitongkuaidi 70348608789265)",
    "k100sto2": "kuaidi100 answer com=shentong (前台签收, 2018) for 3378237498354 quoted after a public Java getEmsMethod",
    "k100zto1": "kuaidi100 query?type=zhongtong&postid=75108286196439 in a public Python requests script",
    "k100zto2": "kuaidi100 query?type=zhongtong&postid=73123917441103 in a public Go test (TestKuaiDi100Api)",
    "k100zto3": "m.kuaidi100.com/query?type=zhongtong&postid=75132983789816 in a public WeChat mini-program "
                "(wx.request)",
    "kdnbest": "kdniao answers (ShipperCode HTKY, 百世汇通) for 70737907079124 quoted in Android class "
               "com.example.cxhll.huifenq.EMS.Gjson",
    "k100best1": "kuaidi100 type=huitongkuaidi&postid=71028900523318 in a public Android OkGo utility "
                 "(queryExpressName)",
    "k100best2": "kuaidi100 query?type=huitongkuaidi&postid=71262523919018 in a public Java Jsoup test",
    "k100best3": "kuaidi100 query?type=huitongkuaidi&postid=70388432404380 in the doc comment of a public Retrofit "
                 "API interface",
    "k100best4": "m.kuaidi100.com/query?type=huitongkuaidi&postid=70379905087149 in a public C# "
                 "WebRequestTests.HttpGetTest",
    "deppondoc": "API-market document 返回示例 (cpCode DBKD, logisticsCompanyName 德邦快递, mailNo DPK366013054101, 2021), "
                 "and a public Java test querying DBKD DPK366013054101 (ApispaceLogisticsTrackingProvider, company "
                 "Deppon Express)",
    "depponcancel": "Deppon cancel-order probe script in public code (德邦取消参数/接口形态探测), on its real test waybill "
                    "DPK365090335534",
    "depponjava": "public Java test: ShipmentTimeline(\"DPK365068298955\", \"德邦\", ...)",
    "k100demo": "kuaidi100-api/php-demo, src/synquery.php: com yunda, num 3950055201640 (kuaidi100's own query demo)",
    "bestmock": "AFeng8987/pangucode, csmall-dev/litemall-vue/src/api/logistics.mock.js: kdniao answer ShipperCode "
                "HTKY (百世快递, 青岛转运中心 traces, 2020) for 557020683421114",
    "kdnbest2": "kdniao request getParams(shipperCode='HTKY', logisticCode='557041801175929') in a public Python "
                "script",
    "k100best5": "kuaidi100 query?type=huitongkuaidi&postid=557004121149743 in the comment of a public Android class "
                 "API.getSearchUrl",
    "k100dbauto": "kuaidi100 auto-number answer quoted in two public PHP scripts: 9473736974 -> comCode debangwuliu, "
                  "lengthPre 10, noPre 947373, noCount 1550 (and query?type=debangwuliu&postid=9473736974)",
    "k100db": "kuaidi100 query?type=debangwuliu&postid=9986459371 in the main() of a public Java HTTP utility class "
              "httpUtiles (com.cao.xps.common.utils)",
    "tnd": "jkeen/tracking_number_data, couriers/amazon.json: Amazon Logistics, test_numbers valid TBA502887274000",
    "tbalabel": "barcode module of a public parcel-station project: the shipping label decodes as Code 128 "
                "'TBA333622790661' (measured on the parcel), 'TBA' being Amazon's prefix",
}

REAL = {
    "EMS": [("1207119765021", "bf"), ("1240921381750", "udf"), ("1186465887499", "k100"),
            ("1097273463220", "k100"), ("1193282791013", "k100"), ("9862325358361", "k100"),
            ("5042260908504", "kdniao"), ("RR473124829GB", "s10"), ("1199965242414", "kdnems"),
            ("1115785780598", "k100ems1"), ("1085160751132", "k100ems2"), ("9745531155532", "k100ems3")],
    "SF": [("SF1385628716739", "bf"), ("SF1040276461418", "sfapi"), ("SF7444473356235", "sfapi"),
           ("SF7444400067318", "sfapi"), ("SF7444471039325", "sfapi"), ("SF7444497619913", "sfapi"),
           ("SF5119694772350", "k100auto"), ("SF1420349064432", "k100sf1"), ("SF6091240032008", "k100sf2"),
           ("SF1123989188840", "k100sf3"), ("SF1339172949508", "k100jt"), ("SF1613099010320", "kdnsf")],
    "YTO": [("YT8962646785389", "bf"), ("YT4242688631310", "k100"), ("YT6186594166532", "k100"),
            ("YT7199652228745", "k100"), ("V030344422", "k100doc"), ("882456690862029473", "kdniao"),
            ("883694722577193295", "k100"), ("YT5169544100040", "kdniao"), ("803302366676880171", "kdniao"),
            ("884238800992987778", "k100yto"), ("YT5555508965056", "k100yto2")],
    "JT": [("JT5261988016578", "bf"), ("JT0006968326954", "udf"), ("JT3002232682242", "udf"),
           ("JT5203235106664", "k100"), ("JT4000073746531", "jtapi"), ("JT3178691239988", "taobao"),
           ("JT2099306666983", "jtsdk"), ("JT5031271076511", "k100jt"), ("JT5495958974895", "k100jt2"),
           ("JT4006791817090", "k100jt3")],
    "JD": [("JDX024407261700", "bf"), ("JDVA11408814483", "udf"), ("JDVA46783539436", "jdtest"),
           ("JD0076810060555", "k100"), ("JDX000033078715", "jdmock"), ("JDVC33760951078", "jdapi"),
           ("JDVB16033803683", "jdapi"), ("JDVB02278596342", "jdapi"), ("JDVC03992440423", "jdapi"),
           ("JDVC22808535186", "jdapi"), ("JDVC03062966736", "jdquery"), ("JDX001067991521", "k100auto"),
           ("JDX010301626950", "jddoc")],
    "Debon": [("DPK202252612836", "bf"), ("DPK364112047425", "udf"), ("DPK300585915441", "udf"),
              ("DPK365088772140", "deppon"), ("DPK364322890411", "deppontest"),
              ("DPK364016052192", "depponquery"), ("DPK366013054101", "deppondoc"),
              ("DPK365090335534", "depponcancel"), ("DPK365068298955", "depponjava"),
              ("9473736974", "k100dbauto"), ("9986459371", "k100db")],
    "STO": [("773277027280336", "bf"), ("77316523125896", "udf"), ("773027491214552", "k100"),
            ("7700438906817", "k100"), ("773093909188061", "stoscan"), ("773367326370601", "kdniao"),
            ("777357719949881", "kdniao"), ("3330118230232", "kdniao"), ("3308071893931", "stopage"),
            ("3387798869530", "k100sto1"), ("3378237498354", "k100sto2")],
    "ZTO": [("73610555582883", "bf"), ("73220458354032", "ztoapi"), ("78280031222394", "ztoapi"),
            ("79102936311690", "ztoapi"), ("73100196611386", "ztoapi"), ("73190553102532", "ztomock"),
            ("79036183259778", "orderbridge"), ("78109356970791", "k100"), ("73108995922259", "k100"),
            ("75108286196439", "k100zto1"), ("73123917441103", "k100zto2"), ("75132983789816", "k100zto3")],
    "Best": [("71715801271000", "bsht"), ("70267806030689", "k100"), ("70348608789265", "k100"),
             ("70048306456243", "k100"), ("50442951903914", "k100"), ("50905742808412", "k100"),
             ("50002498503427", "kdniao"), ("70737907079124", "kdnbest"), ("71028900523318", "k100best1"),
             ("71262523919018", "k100best2"), ("70388432404380", "k100best3"), ("70379905087149", "k100best4"),
             ("557020683421114", "bestmock"), ("557041801175929", "kdnbest2"), ("557004121149743", "k100best5")],
    "Yunda": [("463431409940372", "bf"), ("462598779470531", "udf"), ("434999702940283", "k100"),
              ("3101959187888", "k100"), ("4310508235533", "k100"), ("3101738504868", "k100"),
              ("3944620313823", "k100"), ("3967950525457", "kdniao"), ("3909171490081", "kdniao"),
              ("3904586483173", "kdniao"), ("3950055201640", "k100demo")],
    # Amazon Logistics (outside China); no Amazon China or Cainiao number naming its courier was found.
    "Amazon": [("TBA502887274000", "tnd"), ("TBA333622790661", "tbalabel")],
}

# 12 digits without prefix, each from a kuaidi100 or kdniao answer naming the courier beside it,
# a kuaidi100 query naming it (type=shunfeng, zhongtong, huitongkuaidi) or a ZTO API answer: the
# same shape for five couriers, so a waybill that names none.
SHARED = [("933346116516", "SF"), ("786187979245", "SF"), ("708329128335", "SF"), ("367847964498", "SF"),
          ("768108919277", "ZTO"), ("220192092873", "ZTO"), ("434017443551", "ZTO"), ("640229783116", "ZTO"),
          ("701231893557", "ZTO"), ("720007749358", "ZTO"), ("718595286704", "ZTO"),
          ("668535524584", "STO"), ("221014000145", "STO"), ("227213764418", "STO"), ("668309355849", "STO"),
          ("200093247451", "YTO"), ("700074134800", "YTO"), ("710411594140", "YTO"), ("350757858666", "Best"),
          ("118650888018", "SF"), ("903773876792", "SF"), ("761734957321", "ZTO"), ("719121392152", "ZTO"),
          ("210252031223", "Best")]

NEAR_MISSES = {
    "wrong length": ["SF13856287167", "SF138562871673912", "7361055558288", "736105555828831",
                     "DPK20225261283", "JT52619880165789", "YT896264678538", "46343140994037",
                     "55704180117592", "5570418011759290", "947373697", "94737369741"],
    "wrong prefix": ["SX1385628716739", "JX5261988016578", "DPX202252612836", "YU8962646785389",
                     "74610555582883", "72610555582883", "9162325358361", "567041801175929", "9573736974"],
    "bad S10 check digit": ["RR473124828GB", "RR473124820GB", "EA218850035CN"],
    "order numbers": ["1847946854378423439", "2487900612967594069", "LP00718656805085", "12826392824659312640"],
    "phone numbers": ["13865188214", "13776284974", "18591798006", "02759767205", "4000633333", "027-59767205"],
    "product codes": ["6901234567892", "4006381333931", "69012345"],
}


def _cases(table):
    return [pytest.param(number, courier, id=f"{courier}-{number}") for courier, rows in table.items()
            for number, _ in rows]


def test_every_number_names_its_source():
    for rows in REAL.values():
        for number, source in rows:
            assert source in SOURCES, number
    assert len({n for rows in REAL.values() for n, _ in rows}) == sum(len(rows) for rows in REAL.values())


@pytest.mark.parametrize("number, courier", _cases(REAL))
def test_real_numbers_name_their_courier(number, courier):
    assert check_waybill(number).courier == courier


@pytest.mark.parametrize("number, printed_by", SHARED)
def test_twelve_digit_numbers_are_waybills_of_no_courier(number, printed_by):
    check = check_waybill(number)
    assert check.valid and check.courier is None, (number, printed_by)


@pytest.mark.parametrize("number", [pytest.param(n, id=f"{kind}-{n}") for kind, rows in NEAR_MISSES.items()
                                    for n in rows])
def test_near_misses_are_not_waybills(number):
    assert check_waybill(number).valid is False


def test_overlapping_shapes_follow_the_documented_order():
    # Older Yunda numbers of 13 digits starting 1x: kuaidi100 answered com=yunda for 1201088260402
    # (2014), kdniao ShipperCode YD for 1000824342255 and the candidates YD, EMS, HTKY for
    # 1000745320654; and kuaidi100 com=shentong for 1133969112997; axiaoxin/express-tracking asks
    # kuaidi100 for 韵达 1201838722623 (kuaidi.py). EMS comes first in the default rules and its
    # domestic numbers all start with 1, so the shape names EMS. Pinned here so that a change of
    # order is a decision, not an accident.
    for number in ("1201088260402", "1000824342255", "1000745320654", "1133969112997", "1201838722623"):
        assert check_waybill(number).courier == "EMS", number
    # Deppon's older 10-digit numbers: a public PHP batch script asks kuaidi100 (through Baidu's
    # asyncqury, appid 4001) com=debangwuliu for 5086018095, and kuaidi100 answered com=debangwuliu
    # for 8478081206 (深圳转运场, 2019; Android class com.cuci.enticement.bean.ExpressInfo). YTO's
    # older 10-character numbers take the first characters 0-3 and 5-8 and come first, so only
    # Deppon's 94 and 99 name Deppon.
    for number in ("5086018095", "8478081206"):
        assert check_waybill(number).courier == "YTO", number


@pytest.fixture(scope="module")
def shipped_router():
    from fastpath import Router, load_plan
    return Router(load_plan("configs/plans/county-24.plan.toml", n_chutes=24))


@pytest.mark.parametrize("number, courier", _cases(REAL))
def test_the_routing_core_tells_the_same_courier_by_the_shipped_plan(shipped_router, number, courier):
    assert shipped_router.decide([number], None).courier == courier


def test_the_routing_core_names_no_courier_for_shared_shapes(shipped_router):
    for number, _ in SHARED:
        assert shipped_router.decide([number], None).courier is None, number


# -- reading the symbols -------------------------------------------------------------------------
def _symbol_frame(text: str, fmt_name: str, scale: int = 3) -> np.ndarray:
    """A 1280x960 frame with one symbol of `text` drawn by zxing-cpp's own encoder."""
    import zxingcpp
    symbol = np.asarray(zxingcpp.create_barcode(text, getattr(zxingcpp.BarcodeFormat, fmt_name)).to_image(scale=scale))
    frame = np.full((960, 1280), 255, np.uint8)
    h, w = symbol.shape[:2]
    frame[400:400 + h, 300:300 + w] = symbol if symbol.ndim == 2 else symbol[..., 0]
    return frame


@pytest.mark.parametrize("number, courier", [("V030344422", "YTO"), ("73610555582883", "ZTO"),
                                             ("DPK202252612836", "Debon")])
def test_code39_on_older_forms_is_read_with_the_same_rules(number, courier):
    from vision import barcode, read_label
    frame = _symbol_frame(number, "Code39")
    hits = barcode.zxing_symbols(frame)
    assert [(h.text, h.symbology, h.courier) for h in hits] == [(number, barcode.CODE39, courier)]
    read = read_label(frame, budget_ms=1000)
    assert read.waybills == (number,) and read.courier == courier and read.sources["waybill"] == "barcode"


def test_code39_of_no_waybill_shape_is_not_taken_as_anything():
    # No check character: only the courier rules vouch for a Code 39 reading.
    from vision import barcode
    assert barcode.zxing_symbols(_symbol_frame("ORDER12345", "Code39")) == []


def test_a_confident_symbol_of_no_courier_format_is_reported_with_its_text():
    from vision import read_label
    from vision.result import UNKNOWN_FORMAT
    read = read_label(_symbol_frame("TK0123456789X", "Code128"), budget_ms=1000)
    assert read.waybills == () and read.unknown_format == ("TK0123456789X",)
    assert read.sources[UNKNOWN_FORMAT] == "Code 128 TK0123456789X"
    assert read.no_read_reason.startswith(f"{UNKNOWN_FORMAT}: Code 128 TK0123456789X")


def test_symbols_beside_a_waybill_are_not_reported():
    from vision import read_label
    frame = _symbol_frame("TK0123456789X", "Code128")
    frame[100:100 + 150, 300:] = _symbol_frame("73610555582883", "Code128")[400:550, 300:]
    read = read_label(frame, budget_ms=1000)
    assert read.waybills == ("73610555582883",) and read.unknown_format == ()
    assert "unknown_format" not in read.sources


def test_read_label_prints_the_unknown_symbol(tmp_path, capsys):
    import json

    import cv2

    from vision.cli import main
    path = tmp_path / "odd.png"
    cv2.imwrite(str(path), _symbol_frame("TK0123456789X", "Code128"))
    assert main([str(path), "--budget-ms", "1000"]) == 1
    assert "unknown_format: Code 128 TK0123456789X" in capsys.readouterr().out
    assert main([str(path), "--budget-ms", "1000", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["unknown_format"] == ["TK0123456789X"]


# -- the pre-advice wins, whatever the shape -----------------------------------------------------
PLAN = """
[plan]
version = "t1"
[special]
no_read = 10
multi_read = 10
no_rule = 9
overflow = 8
reject = 10
[destinations.A]
chutes = [1, 2]
[destinations.B]
chutes = [3]
[[courier_rules]]
courier = "ZTO"
destination = "B"
[preadvice]
files = ["pre.csv"]
"""


def test_a_preadvised_number_of_no_courier_shape_is_sorted_by_its_preadvice(tmp_path):
    """Reader -> fusion -> router, end to end: the reader reports the odd symbol, the pre-advice
    makes it the waybill (vision.result.with_preadvised, as the controller holds the pre-advice),
    and the routing core sorts it by the pre-advice."""
    from fastpath import Reason, Router, load_plan
    from vision import read_label
    from vision.result import with_preadvised
    (tmp_path / "t.plan.toml").write_text(PLAN, encoding="utf-8")
    (tmp_path / "pre.csv").write_text("waybill,destination\nTK0123456789X,A\n", encoding="utf-8")
    plan = load_plan(tmp_path / "t.plan.toml", n_chutes=10)
    router = Router(plan)

    read = read_label(_symbol_frame("TK0123456789X", "Code128"), budget_ms=1000)
    assert router.decide(read.waybills, read.routing_code).reason == Reason.NO_READ

    taken = with_preadvised(read, lambda text: plan.preadvice_destination(text) is not None)
    assert taken.waybills == ("TK0123456789X",) and taken.no_read_reason is None and taken.is_read
    decision = router.decide(taken.waybills, taken.routing_code)
    assert (decision.reason, decision.destination, decision.chute) == (Reason.PREADVICE, "A", 1)


def test_symbols_the_preadvice_does_not_know_stay_unknown():
    from vision.result import LabelRead, UNKNOWN_FORMAT, with_preadvised
    read = LabelRead((), "571-J25-03", None, {"routing_code": "text", UNKNOWN_FORMAT: "Code 128 TK1"}, 0.995,
                     unknown_format=("TK1",))
    assert with_preadvised(read, lambda text: False) is read
