import os
import sys

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


@pytest.fixture
def rng():
    return np.random.default_rng(20250601)


@pytest.fixture(autouse=True)
def _builtin_waybill_formats():
    """Plan courier formats are a process-wide hook (label readers install their plan's); a test
    that installs some must not leak them into the vision tests, which check the built-in formats."""
    from vision.waybill import use_plan_formats
    use_plan_formats(None)
    yield
