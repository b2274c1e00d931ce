"""The /metrics text is valid Prometheus exposition with the figures the controller counted."""
from edge.metrics import ControllerMetrics


def test_counters_histograms_and_labels_render():
    m = ControllerMetrics()
    m.parcels.inc("PREADVICE")
    m.parcels.inc("PREADVICE")
    m.parcels.inc('odd"name')
    m.stage.observe(0.004, "read")
    m.stage.observe(0.3, "read")
    m.stage.observe(7.0, "read")
    text = m.render()
    assert 'sortline_parcels_total{reason="PREADVICE"} 2' in text
    assert 'sortline_parcels_total{reason="odd\\"name"} 1' in text
    assert "# TYPE sortline_stage_seconds histogram" in text
    assert 'sortline_stage_seconds_bucket{stage="read",le="0.005"} 1' in text
    assert 'sortline_stage_seconds_bucket{stage="read",le="0.3"} 2' in text
    assert 'sortline_stage_seconds_bucket{stage="read",le="+Inf"} 3' in text
    assert 'sortline_stage_seconds_count{stage="read"} 3' in text
    assert text.endswith("\n")
