"""`sortline read-label`: a technician reads camera images as the line's readers would."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.conftest import REPO
from tests.edge.config_files import LINE, edit, write
from vision.synth import LabelTruth, random_truth, render_label


def read_label(*args):
    done = subprocess.run([sys.executable, "-m", "edge.cli", "read-label", "--budget-ms", "500", "--json", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


@pytest.fixture
def labels(tmp_path):
    """The same SF label printed with a routing code in the plan's shape (3-3-2) and in another."""
    rng = np.random.default_rng(11)
    truth = random_truth(rng, couriers=["SF"])
    paths = {}
    for name, code in (("plan_shape", "312-Q04-17"), ("other_shape", "312-Q04-17-02")):
        paths[name] = tmp_path / f"{name}.png"
        cv2.imwrite(str(paths[name]), render_label(LabelTruth("SF", truth.waybill, code), rng, "clean"))
    return truth.waybill, paths


def test_with_the_line_config_only_the_plans_shapes_are_routing_codes(tmp_path, labels):
    waybill, paths = labels
    config = write(tmp_path)
    rc, reads, err = read_label("--config", str(config), str(paths["plan_shape"]), str(paths["other_shape"]))
    assert "routing codes in the shapes 3-3-2" in err and 'plan t1' in err
    assert [r["waybills"] for r in reads] == [[waybill], [waybill]]
    assert [r["routing_code"] for r in reads] == ["312-Q04-17", None]
    # The technician is told why the other label gave none.
    assert [r["routing_note"] for r in reads] == [
        None, "312-Q04-17-02 not taken: not in a shape of the sort plan's routing codes"]
    assert rc == 0


def test_without_a_config_any_shape_is_read_and_the_technician_is_told(labels):
    waybill, paths = labels
    rc, reads, err = read_label(str(paths["plan_shape"]), str(paths["other_shape"]))
    assert "give --config FILE" in err
    assert [r["routing_code"] for r in reads] == ["312-Q04-17", "312-Q04-17-02"]
    assert rc == 0


def test_a_config_the_line_could_not_start_with_is_a_usage_error(tmp_path, labels):
    _, paths = labels
    config = write(tmp_path, line=edit(LINE, "belt_speed_m_s = 2.0", 'belt_speed_m_s = "fast"'))
    rc, reads, err = read_label("--config", str(config), str(paths["plan_shape"]))
    assert rc == 2 and reads == []
    assert 'belt_speed_m_s = "fast": must be a number' in err


def test_a_plan_that_does_not_load_is_a_usage_error(tmp_path, labels):
    _, paths = labels
    (tmp_path / "line.toml").write_text(LINE)
    rc, reads, err = read_label("--config", str(tmp_path / "line.toml"), str(paths["plan_shape"]))
    assert rc == 2 and reads == []
    assert "line.plan.toml" in err
