"""Image headers are measured before anything is decoded, and image files are opened defensively.
Real files, real OpenCV: the header's size must be the size OpenCV decodes."""
import io
import os
import re
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.hostile_images import (CLAIM, NOT_FILES, bmp_core, floods, jpeg_claiming, make_not_a_file,
                                  progressive_jpeg_with_scans, tiff)
from vision.image_header import MAX_JPEG_SCANS, MAX_PIXELS, check_image, read_header
from vision.image_input import BadImage, load_gray, read_image_file

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _encoded():
    """Images as cameras and common libraries write them: OpenCV, Pillow, and by hand."""
    rng = np.random.default_rng(4)
    gray = (rng.random((123, 245)) * 255).astype(np.uint8)
    color = np.dstack([gray, gray[::-1], 255 - gray])
    for ext, params in [(".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
                        (".jpg", [cv2.IMWRITE_JPEG_RST_INTERVAL, 4]), (".png", []), (".bmp", []), (".tif", []),
                        (".tif", [cv2.IMWRITE_TIFF_COMPRESSION, 1])]:
        for img in (gray, color):
            ok, buf = cv2.imencode(ext, img, params)
            yield f"opencv {ext} {params} {img.ndim}d", buf.tobytes()
    exif = Image.Exif()
    exif[0x010E] = "x" * 5000                     # a large APP1 segment before the frame header
    for fmt, options in [("JPEG", {}), ("JPEG", {"progressive": True}), ("JPEG", {"exif": exif}), ("PNG", {}),
                         ("BMP", {}), ("TIFF", {}), ("TIFF", {"compression": "tiff_deflate"})]:
        for mode in ("L", "RGB", "P", "RGBA", "I;16", "1"):
            out = io.BytesIO()
            try:
                Image.fromarray(color).convert(mode).save(out, fmt, **options)
            except (OSError, ValueError, KeyError):
                continue                          # a mode the format does not take
            yield f"pillow {fmt} {mode} {options}", out.getvalue()
    for kw in ({}, {"order": ">"}, {"big": True}, {"big": True, "order": ">"}, {"samples": 3}):
        yield f"tiff {kw}", tiff(37, 23, **kw)
    yield "bmp OS/2 header", bmp_core(37, 23)
    ok, buf = cv2.imencode(".bmp", gray)
    top_down = bytearray(buf.tobytes())
    top_down[22:26] = (-123).to_bytes(4, "little", signed=True)
    yield "bmp top-down", bytes(top_down)


def test_the_header_says_the_size_opencv_decodes():
    seen = 0
    for name, data in _encoded():
        header = check_image(data)
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
        assert img is not None, name
        assert (header.width, header.height) == (img.shape[1], img.shape[0]), name
        seen += 1
    assert seen > 40


@pytest.mark.parametrize("kind", ["jpg", "png", "bmp", "tif"])
def test_a_header_claiming_30000_by_30000_is_refused_from_its_first_bytes(kind):
    data = floods()[kind]
    t0 = time.perf_counter()
    with pytest.raises(BadImage) as refused:
        check_image(data)
    assert time.perf_counter() - t0 < 0.05
    assert str(refused.value) == (f"{CLAIM}, more than the {MAX_PIXELS // 1_000_000} MP a line camera sends: "
                                  f"check the camera's resolution/ROI setting")


def test_the_limit_is_on_pixels_not_on_one_side():
    assert check_image(jpeg_claiming(10_000, 5_000))         # 50 MP exactly
    with pytest.raises(BadImage, match="10000 x 5001 pixels"):
        check_image(jpeg_claiming(10_000, 5_001))


def test_a_jpeg_of_endless_scans_is_refused():
    assert check_image(progressive_jpeg_with_scans(0))
    with pytest.raises(BadImage, match=f"more than the {MAX_JPEG_SCANS} any encoder writes"):
        check_image(progressive_jpeg_with_scans(MAX_JPEG_SCANS))


def test_a_tiff_holding_its_pixels_in_huge_strips_is_refused():
    assert check_image(tiff(7000, 7000, body=b"\x00" * 64))                          # 8-bit gray: 49 MB
    with pytest.raises(BadImage, match="7000 x 7000 pixels at 64 bits"):
        check_image(tiff(7000, 7000, bits=16, samples=4, body=b"\x00" * 64))        # 392 MB in one strip


@pytest.mark.parametrize("data, reason", [
    (b"P5 30000 30000 255\n" + b"\x00" * 64, "not a JPEG, PNG, BMP or TIFF image"),   # OpenCV would decode it
    (b"GIF89a" + b"\x00" * 64, "not a JPEG, PNG, BMP or TIFF image"),
    (b"", "the file is empty"),
    (jpeg_claiming(640, 480)[:20], "JPEG ends before its frame header"),
    (b"\xff\xd8\xff\xe0 not a JPEG after all" * 10, "JPEG ends before its frame header"),
    (b"\xff\xd8\xff\xda\x00\x08" + b"\x00" * 32, r"no frame header \(SOF\) before its image data"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG ends before its header chunk"),
    (b"BM\x00\x00", "BMP ends before its header"),
    (b"II*\x00\x08\x00\x00\x00\x05\x00", "TIFF ends before its image directory"),
])
def test_damaged_or_foreign_files_say_what_is_wrong(data, reason):
    with pytest.raises(BadImage, match=reason):
        read_header(data)


def test_load_gray_refuses_a_flood_before_decoding(tmp_path):
    path = tmp_path / "5.jpg"
    path.write_bytes(floods()["jpg"])
    with pytest.raises(BadImage, match=f"5.jpg: {CLAIM}"):
        load_gray(path)
    with pytest.raises(BadImage, match=CLAIM):
        load_gray(path.read_bytes())


@pytest.mark.parametrize("kind", list(NOT_FILES))
def test_only_regular_files_are_read_and_without_blocking(tmp_path, kind):
    path = tmp_path / "5.jpg"
    keep = make_not_a_file(path, kind)
    try:
        t0 = time.monotonic()
        with pytest.raises(BadImage, match=re.escape(NOT_FILES[kind])):
            read_image_file(path)
        assert time.monotonic() - t0 < 0.5
    finally:
        if keep is not None:
            keep.close()


def test_files_that_are_gone_empty_or_unreadable_say_so(tmp_path):
    with pytest.raises(BadImage, match="the file is gone"):
        read_image_file(tmp_path / "6.jpg")
    (tmp_path / "7.jpg").write_bytes(b"")
    with pytest.raises(BadImage, match="the file is empty"):
        read_image_file(tmp_path / "7.jpg")
    if os.geteuid() != 0:                             # root reads any file
        (tmp_path / "8.jpg").write_bytes(jpeg_claiming(16, 16))
        os.chmod(tmp_path / "8.jpg", 0)
        with pytest.raises(BadImage, match="no permission to read it"):
            read_image_file(tmp_path / "8.jpg")


def test_opencv_refuses_a_flood_itself_when_the_limit_is_set_before_it_is_imported(tmp_path):
    """The second line of defence: with OPENCV_IO_MAX_IMAGE_PIXELS set, this OpenCV raises
    instead of allocating, in a process that imports cv2 afterwards."""
    path = tmp_path / "5.jpg"
    path.write_bytes(floods()["jpg"])
    script = (
        "import sys\n"
        "from vision.image_header import limit_opencv_decoding\n"
        "assert limit_opencv_decoding()\n"
        "import cv2\n"
        "try:\n"
        "    cv2.imread(sys.argv[1], cv2.IMREAD_GRAYSCALE)\n"
        "    print('decoded')\n"
        "except cv2.error:\n"
        "    print('refused')\n"
        "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')))\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    out = subprocess.run([sys.executable, "-c", script, str(path)], cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    assert out[0] == "refused"
    assert int(out[1]) < 200_000                       # kB: the 900 MB image was never allocated


def test_a_cut_jpeg_decodes_from_memory_as_imread_decodes_it_from_the_file(tmp_path):
    """cv2.imdecode alone gives up on a JPEG without its end; the upload a camera had not finished
    when the wait ended is still read as it is, the missing part gray, as cv2.imread did."""
    from vision.image_input import decode
    img = (np.random.default_rng(5).random((256, 320)) * 255).astype(np.uint8)
    for params in ([], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]):
        ok, buf = cv2.imencode(".jpg", img, params)
        cut = buf.tobytes()[:len(buf) // 2]
        (tmp_path / "cut.jpg").write_bytes(cut)
        assert np.array_equal(decode(cut, cv2.IMREAD_GRAYSCALE), cv2.imread(str(tmp_path / "cut.jpg"),
                                                                              cv2.IMREAD_GRAYSCALE))


def test_the_folder_camera_hands_a_flood_on_undecoded_with_its_reason(tmp_path):
    from tests.hostile_images import peak_rss_kb, reset_peak_rss
    from vision.camera import open_camera
    (tmp_path / "5.png").write_bytes(floods()["png"])
    if not reset_peak_rss():
        pytest.skip("this kernel does not let a process reset its peak memory (/proc/self/clear_refs)")
    start_kb = peak_rss_kb()
    with open_camera("folder", path=str(tmp_path), settle_s=0.0, decode=True) as cam:
        frame = cam.grab(timeout_s=2)
    assert peak_rss_kb() - start_kb < 64 * 1024
    assert frame.image == floods()["png"] and CLAIM in frame.meta["bad_image"]
    assert (tmp_path / "done" / "5.png").exists()
