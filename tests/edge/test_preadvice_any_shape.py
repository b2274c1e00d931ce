"""A number the couriers' pre-advice lists is a waybill whatever its shape, on the running line:
the label readers report it as a symbol of no known format, the controller (which holds the
pre-advice) takes it, and the parcel goes to its pre-advised chute. Real controller, readers and
records; the PLC is tests/edge/doc_plc.py, written from docs/plc-interface.md alone."""
import cv2
import numpy as np
import pytest

from tests.conftest import free_port
from tests.edge.config_files import PLAN
from tests.edge.doc_plc import DocPlc
from tests.edge.test_plc_faults import controller_for, rows, running, scan_all
from tests.sim_plc.helpers import until

pytestmark = pytest.mark.timeout(120)

ODD = "TK0123456789X"                   # fits no courier's format
UNLISTED = "QX9876543210Z"              # fits none either, and the pre-advice does not list it


def label(text: str) -> np.ndarray:
    import zxingcpp
    symbol = np.asarray(zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.Code128).to_image(scale=3))
    frame = np.full((960, 1280), 255, np.uint8)
    frame[400:400 + symbol.shape[0], 300:300 + symbol.shape[1]] = symbol if symbol.ndim == 2 else symbol[..., 0]
    return frame


async def test_a_preadvised_number_of_no_known_shape_is_sorted_by_its_preadvice(tmp_path):
    plan = PLAN + '\n[preadvice]\nfiles = ["pre.csv"]\n'
    (tmp_path / "pre.csv").write_text(f"waybill,destination\n{ODD},Lugang\n", encoding="utf-8")
    (tmp_path / "camera").mkdir()
    for tracking, text in ((1, ODD), (2, UNLISTED)):
        cv2.imwrite(str(tmp_path / "camera" / f"{tracking}.png"), label(text))
    async with DocPlc(free_port()) as plc:
        controller = controller_for(tmp_path, plc.port, plan)
        async with running(controller):
            await scan_all(plc, [1, 2])
            await until(lambda: len(plc.assignments) == 2, 10.0)
    chutes = {tracking: chute for _, tracking, chute, _ in rows(tmp_path)}
    assert chutes == {1: 3, 2: 6}      # Lugang's chute; the unlisted one is a no-read (end chute)
