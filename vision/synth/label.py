"""Draw a flat Chinese e-waybill (电子面单) as it comes out of the label printer.

Coordinates are label pixels at about 5 px/mm (a 100 x 150 mm label is 520 x 760 px). The boxes of
what a reader must find are returned beside the picture so that the damage step and the text
model's training data know where things are.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vision.synth import fonts
from vision.synth.barcode_art import code128_image
from vision.synth.styles import TRAINED, LabelStyle
from vision.synth.truth import LabelTruth

LABEL_W = 520
LABEL_H = 760

COURIER_NAMES = {
    "SF": ("顺丰速运", "SF EXPRESS"),
    "YTO": ("圆通速递", "YTO EXPRESS"),
    "JT": ("极兔速递", "J&T EXPRESS"),
    "JD": ("京东快递", "JD LOGISTICS"),
    "ZTO": ("中通快递", "ZTO EXPRESS"),
    "Yunda": ("韵达快递", "YUNDA EXPRESS"),
    "STO": ("申通快递", "STO EXPRESS"),
    "EMS": ("中国邮政 EMS", "CHINA POST EMS"),
}
# Couriers that print the barcode above the routing code; the others print the code first.
BARCODE_FIRST = {"SF", "JD"}

_PROVINCES = ("浙江省", "河北省", "江苏省", "广东省", "山东省", "河南省", "四川省", "湖北省")
_CITIES = ("杭州市", "石家庄市", "南京市", "广州市", "济南市", "郑州市", "成都市", "武汉市")
_COUNTIES = ("西湖区", "正定县", "江宁区", "番禺区", "历城区", "中牟县", "双流区", "江夏区")
_TOWNS = ("城关镇", "新华街道", "东风乡", "河西村", "李家庄", "南关村", "北辰镇", "高新区")
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平"
_PINYIN_SURNAMES = ("WANG", "LI", "ZHANG", "LIU", "CHEN", "YANG", "ZHAO", "HUANG", "ZHOU", "WU")
_PINYIN_GIVEN = ("WEI", "FANG", "NA", "MIN", "JING", "LI", "QIANG", "LEI", "JUN", "YANG")
_PINYIN_PLACES = ("HANGZHOU", "SHIJIAZHUANG", "NANJING", "GUANGZHOU", "JINAN", "ZHENGZHOU", "CHENGDU")


@dataclass
class LabelArt:
    image: np.ndarray                       # uint8, LABEL_H x LABEL_W
    boxes: dict = field(default_factory=dict)  # name -> list of (x0, y0, x1, y1)
    lines: list = field(default_factory=list)  # every printed line: ((x0, y0, x1, y1), text)


def _pick(rng, seq):
    return seq[int(rng.integers(0, len(seq)))]


def _phone(rng) -> str:
    # Labels mask the middle of the phone number for privacy.
    return f"1{int(rng.integers(3, 10))}{int(rng.integers(0, 10))}****{int(rng.integers(0, 10000)):04d}"


def _address_lines(rng, cjk: bool) -> tuple[str, str]:
    if cjk:
        name = _pick(rng, _SURNAMES) + "".join(_pick(rng, _GIVEN) for _ in range(int(rng.integers(1, 3))))
        line2 = (_pick(rng, _PROVINCES) + _pick(rng, _CITIES) + _pick(rng, _COUNTIES)
                 + _pick(rng, _TOWNS) + f"{int(rng.integers(1, 300))}号")
    else:
        name = f"{_pick(rng, _PINYIN_SURNAMES)} {_pick(rng, _PINYIN_GIVEN)}"
        line2 = f"NO.{int(rng.integers(1, 300))} {_pick(rng, _PINYIN_PLACES)} RD"
    return f"{name}  {_phone(rng)}", line2


def _is_cjk(ch: str) -> bool:
    return not ch.isascii()


def _runs_by_script(text: str) -> list[tuple[bool, str]]:
    """`text` in runs of Chinese and of Latin characters (True for Chinese)."""
    runs: list[tuple[bool, str]] = []
    for ch in text:
        if runs and runs[-1][0] == _is_cjk(ch):
            runs[-1] = (runs[-1][0], runs[-1][1] + ch)
        else:
            runs.append((_is_cjk(ch), ch))
    return runs


def _mixed_length(text: str, size: int, latin: str = fonts.SANS_BOLD) -> float:
    total = 0.0
    for cjk, run in _runs_by_script(text):
        path = fonts.cjk_font_path() if cjk else latin
        if path is not None:
            total += fonts.font(path, size).getlength(run)
    return total


class _Canvas:
    def __init__(self, paper: int):
        from PIL import Image, ImageDraw
        self.img = Image.new("L", (LABEL_W, LABEL_H), paper)
        self.draw = ImageDraw.Draw(self.img)
        self.lines: list[tuple[tuple[int, int, int, int], str]] = []

    def text(self, xy, text, path, size, fill, anchor="la"):
        f = fonts.font(path, size)
        self.draw.text(xy, text, font=f, fill=fill, anchor=anchor)
        box = self.draw.textbbox(xy, text, font=f, anchor=anchor)
        self.lines.append((box, text))
        return box

    def mixed_text(self, xy, text, size, fill, latin: str = fonts.SANS_BOLD, left: bool = False):
        """`text` centred under `xy` (starting at it when `left`), Latin in `latin` and Chinese
        (大头笔 words such as 冀A石家庄 before a routing code) in the CJK font; without a CJK font
        they are left out."""
        runs = _runs_by_script(text)
        x = xy[0] if left else xy[0] - _mixed_length(text, size, latin) / 2
        boxes = []
        for cjk, run in runs:
            path = fonts.cjk_font_path() if cjk else latin
            if path is None:
                continue
            f = fonts.font(path, size)
            self.draw.text((x, xy[1]), run, font=f, fill=fill, anchor="lt")
            if run.strip():
                boxes.append(self.draw.textbbox((x, xy[1]), run, font=f, anchor="lt"))
            x += f.getlength(run)
        box = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
        self.lines.append((box, text))
        return box

    def paste(self, array: np.ndarray, x: int, y: int):
        from PIL import Image
        self.img.paste(Image.fromarray(array), (x, y))


def draw_label(truth: LabelTruth, rng, style: LabelStyle = TRAINED) -> LabelArt:
    """The label of `truth`, set in `style` (the trained style unless a held-out tier asks)."""
    cjk_path = fonts.cjk_font_path()
    cjk = cjk_path is not None
    text_path = cjk_path or fonts.SANS_BOLD
    paper = int(rng.integers(236, 256))
    ink = int(rng.integers(0, 40))
    c = _Canvas(paper)
    boxes: dict[str, list] = {"routing": [], "waybill_text": [], "barcode": []}

    # Header: courier name on an inverted block, service type on the right.
    cn, latin = COURIER_NAMES[truth.courier]
    c.draw.rectangle((10, 10, 250, 70), fill=ink)
    c.text((130, 40), cn if cjk else latin, text_path, 30 if cjk else 22, paper, anchor="mm")
    c.text((LABEL_W - 16, 40), "标准快递" if cjk else "STANDARD", text_path, 24, ink, anchor="rm")
    c.draw.line((0, 80, LABEL_W, 80), fill=ink, width=2)

    def routing_block(y: int) -> int:
        size = int(rng.integers(62, 78))
        while size > 30 and _mixed_length(truth.routing_code, size, style.routing_font) > LABEL_W - 40:
            size -= 2
        at = (20, y) if style.routing_left else (LABEL_W // 2, y)
        if truth.routing_code.isascii():
            box = c.text(at, truth.routing_code, style.routing_font, size, ink, anchor="lt" if style.routing_left else "mt")
        else:
            box = c.mixed_text(at, truth.routing_code, size, ink, style.routing_font, style.routing_left)
        boxes["routing"].append(box)
        c.draw.line((0, box[3] + 12, LABEL_W, box[3] + 12), fill=ink, width=2)
        return box[3] + 20

    def barcode_block(y: int, height: int, max_w: int, text_size: int, key_box: str = "barcode") -> int:
        module = 3
        bars = code128_image(truth.waybill, module, height, ink, paper)
        while bars.shape[1] > max_w and module > 2:
            module -= 1
            bars = code128_image(truth.waybill, module, height, ink, paper)
        x = (LABEL_W - bars.shape[1]) // 2
        if style.number_above:
            box = c.text((LABEL_W // 2, y), truth.waybill, style.number_font, text_size, ink, anchor="mt")
            boxes["waybill_text"].append(box)
            top = box[3] + 6
            c.paste(bars, x, top)
            boxes[key_box].append((x, top, x + bars.shape[1], top + height))
            return top + height + 10
        c.paste(bars, x, y)
        boxes[key_box].append((x, y, x + bars.shape[1], y + height))
        box = c.text((LABEL_W // 2, y + height + 6), truth.waybill, style.number_font, text_size, ink, anchor="mt")
        boxes["waybill_text"].append(box)
        return box[3] + 10

    y = 92
    if truth.courier in BARCODE_FIRST:
        y = barcode_block(y, int(rng.integers(95, 120)), 480, int(rng.integers(28, 34)))
        y = routing_block(y)
    else:
        y = routing_block(y)
        y = barcode_block(y, int(rng.integers(95, 120)), 480, int(rng.integers(28, 34)))
    c.draw.line((0, y, LABEL_W, y), fill=ink, width=2)

    # Recipient and sender blocks.
    for tag, size, gap in (("收" if cjk else "TO", 24, 10), ("寄" if cjk else "FROM", 18, 8)):
        line1, line2 = _address_lines(rng, cjk)
        c.draw.rectangle((10, y + gap, 58, y + gap + 44), outline=ink, width=2)
        c.text((34, y + gap + 22), tag, text_path, 22 if cjk else 14, ink, anchor="mm")
        c.text((70, y + gap), line1, text_path, size, ink)
        c.text((70, y + gap + size + 8), line2, text_path, size - 2, ink)
        y += gap + 2 * size + 26
        c.draw.line((0, y, LABEL_W, y), fill=ink, width=1)

    # Receipt stub with a smaller copy of the barcode, as on most couriers' 100 x 180 mm waybills.
    stub_y = max(y + 10, LABEL_H - 150)
    if stub_y + 120 < LABEL_H:
        c.draw.line((0, stub_y - 6, LABEL_W, stub_y - 6), fill=ink, width=1)
        barcode_block(stub_y, 60, 420, 22)
    return LabelArt(np.asarray(c.img, dtype=np.uint8).copy(), boxes, c.lines)
