"""Fonts for synthetic labels.

Latin fonts ship beside this module so that labels render the same everywhere. Chinese text
needs a CJK font from the system (Debian: fonts-wqy-microhei or fonts-noto-cjk); without one the
courier and address blocks are printed in pinyin instead.
"""
from __future__ import annotations

import functools
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SANS_BOLD = os.path.join(HERE, "DejaVuSans-Bold.ttf")
MONO_BOLD = os.path.join(HERE, "DejaVuSansMono-Bold.ttf")

CJK_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
)


@functools.lru_cache(maxsize=1)
def cjk_font_path() -> str | None:
    override = os.environ.get("SORTLINE_CJK_FONT")
    if override is not None:
        return override if override and os.path.exists(override) else None
    for path in CJK_CANDIDATES:
        if os.path.exists(path):
            return path
    return None


@functools.lru_cache(maxsize=64)
def font(path: str, size: int):
    from PIL import ImageFont
    return ImageFont.truetype(path, size)
