"""Real third-party photos of Code 128 symbols (shared/realdata beside the repository)."""
import pytest

from vision.realdata import evaluate, realdata_dir

ROOT = realdata_dir()


@pytest.mark.skipif(ROOT is None, reason="real photos not found: expected ../shared/realdata/barcodes "
                                         "beside the repository root (or set SORTLINE_REALDATA)")
def test_real_photos_are_read():
    result = evaluate(ROOT, budget_ms=5000)
    assert result["images"] >= 10
    missed = [(r["image"], sorted(set(r["expected"]) - set(r["found"]))) for r in result["rows"]
              if len(r["found"]) < len(r["expected"])]
    # 14 of 14 photos are read on the reference machine; one miss is tolerated for slower machines.
    assert len(missed) <= 1, missed
    assert result["wrong_texts"] == 0, [r["extra"] for r in result["rows"] if r["extra"]]
