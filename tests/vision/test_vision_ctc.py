"""The CTC forward pass that turns the text model's output into a text's probability: the compiled
one (vision/textmodel/_ctc.pyx) and its numpy twin against a brute-force sum over alignments."""
import itertools

import numpy as np
import pytest

from vision.textmodel import runtime

compiled = pytest.importorskip("vision.textmodel._ctc", reason="build it: python setup.py build_ext --inplace")


def _collapse(path):
    out, prev = [], 0
    for k in path:
        if k != prev and k != 0:
            out.append(k)
        prev = k
    return out


def _brute_force(logprobs, labels):
    """Sum of the probabilities of every alignment that collapses to `labels`."""
    steps, classes = logprobs.shape
    probs = np.exp(logprobs.astype(np.float64))
    return sum(float(np.prod(probs[np.arange(steps), path]))
               for path in itertools.product(range(classes), repeat=steps) if _collapse(path) == labels)


def _log_softmax(rng, n, steps, classes):
    x = rng.normal(0, 2, (n, steps, classes)).astype(np.float32)
    return (x - np.log(np.exp(x).sum(axis=2, keepdims=True))).astype(np.float32)


@pytest.mark.parametrize("labels", [[1], [1, 2], [2, 2], [1, 2, 1], [3, 3, 3]])
def test_both_passes_equal_the_sum_over_every_alignment(labels):
    lp = _log_softmax(np.random.default_rng(len(labels)), 1, 7, 4)
    expected = _brute_force(lp[0], labels)
    assert compiled.text_probabilities(lp, [labels])[0] == pytest.approx(expected, rel=1e-9)
    assert runtime.text_probabilities(lp, [labels])[0] == pytest.approx(expected, rel=1e-9)


def test_an_impossible_text_has_probability_zero():
    lp = _log_softmax(np.random.default_rng(3), 1, 4, 5)
    # Four columns cannot hold three equal characters, which need a blank between each two.
    assert compiled.text_probabilities(lp, [[2, 2, 2]])[0] == 0.0
    assert runtime.text_probabilities(lp, [[2, 2, 2]])[0] == 0.0


def test_compiled_equals_numpy_on_the_model_output_of_real_lines():
    from vision.synth import random_truth, render_label
    from vision.textlines import find_lines_and_bars, line_input
    from vision.labelfind import find_labels, orientations, warp_label

    model = runtime.load()
    assert model is not None
    rng = np.random.default_rng(5)
    img = render_label(random_truth(rng), rng, "clean")
    quad = find_labels(img)[0]
    flat = warp_label(img, orientations(quad)[0])
    lines, _ = find_lines_and_bars(flat)
    batch = np.stack([line_input(flat, b) for b in lines[:8]])[:, None].astype(np.float32)
    lp = model.session.run(None, {"image": batch})[0]
    labels = [_collapse(row) or [1] for row in lp.argmax(axis=2)]
    labels[0] = labels[0] + [1, 1]            # a text the line does not show: a tiny probability
    ours, twin = compiled.text_probabilities(np.ascontiguousarray(lp), labels), runtime.text_probabilities(lp, labels)
    np.testing.assert_allclose(ours, twin, rtol=1e-7, atol=1e-300)


def test_many_lines_of_different_lengths_in_one_batch():
    rng = np.random.default_rng(11)
    lp = _log_softmax(rng, 9, 40, 12)
    labels = [list(rng.integers(1, 12, size=k)) for k in range(1, 10)]
    np.testing.assert_allclose(compiled.text_probabilities(lp, labels), runtime.text_probabilities(lp, labels),
                               rtol=1e-9, atol=1e-300)


def test_a_label_outside_the_model_classes_is_refused():
    lp = _log_softmax(np.random.default_rng(1), 1, 5, 4)
    with pytest.raises(ValueError, match="outside the model"):
        compiled.text_probabilities(lp, [[1, 9]])


def test_the_model_uses_the_compiled_pass(monkeypatch):
    monkeypatch.delenv("SORTLINE_PURE_PYTHON", raising=False)
    monkeypatch.setattr(runtime, "_forward_pass", None)
    assert runtime._compiled_or_numpy() is compiled.text_probabilities
    monkeypatch.setenv("SORTLINE_PURE_PYTHON", "1")
    monkeypatch.setattr(runtime, "_forward_pass", None)
    assert runtime._compiled_or_numpy() is runtime.text_probabilities
