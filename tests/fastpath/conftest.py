import pytest

from fastpath import load_plan
from tests.conftest import REPO

SHIPPED_PLAN = REPO / "configs" / "plans" / "county-24.plan.toml"
ENGINES = ["pure", "compiled"]


def require_compiled():
    try:
        import fastpath._core  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"the compiled routing core is not built ({exc}): run .venv/bin/python setup.py build_ext --inplace")


@pytest.fixture(params=ENGINES)
def pure(request):
    """Run the test once on each routing core."""
    if request.param == "compiled":
        require_compiled()
    return request.param == "pure"


@pytest.fixture(scope="session")
def shipped_plan():
    return load_plan(SHIPPED_PLAN, n_chutes=24)


@pytest.fixture
def write_plan(tmp_path):
    """Write a plan (and optional pre-advice CSV) into a temp dir; returns the plan path."""
    def write(text, preadvice=None, name="test.plan.toml"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        if preadvice is not None:
            (tmp_path / "pre.csv").write_text(preadvice, encoding="utf-8")
        return path
    return write


SMALL_PLAN = """
[plan]
version = "t1"
[special]
no_read = 10
multi_read = 10
no_rule = 9
overflow = 8
reject = 10
[couriers.SF]
formats = ["SF#{13}"]
[couriers.JD]
formats = ["JD[XK]#{12}"]
[couriers.EMS]
formats = ["1[01]#{11}"]
s10 = true
[destinations.A]
chutes = [1, 2]
[destinations.B]
chutes = [3]
[destinations.C]
chutes = [4, 5, 6]
spread = "first_available"
[[routes]]
code = "571-J25-03"
destination = "B"
[[routes]]
range = ["571-J25-01", "571-J25-09"]
destination = "A"
[[routes]]
prefix = "571-J25"
destination = "C"
[[routes]]
prefix = "571"
destination = "B"
[[courier_rules]]
courier = "JD"
destination = "C"
[[overrides]]
courier = "SF"
chutes = [7]
"""
