"""Run the trained line recogniser with onnxruntime.

The model file is checked once, at the first use or when `status()` is called at start-up. When it
is missing or unreadable the reason and the remedy are logged and reading goes on with barcodes
alone.
"""
from __future__ import annotations

import json
import logging
import os
import threading

import numpy as np

log = logging.getLogger(__name__)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODEL = os.path.join(HERE, "textline.onnx")
ENV_MODEL = "SORTLINE_TEXT_MODEL"
REMEDY = ("reinstall sortline to restore vision/textmodel/textline.onnx, or retrain it with "
          "'python -m vision.textmodel.train' (see vision/textmodel/MODEL.md); "
          f"{ENV_MODEL}=PATH points to another copy")


class LineModel:
    def __init__(self, path: str):
        import onnxruntime as ort
        meta_path = os.path.splitext(path)[0] + ".json"
        with open(meta_path) as fh:
            meta = json.load(fh)
        self.charset: str = meta["charset"]
        options = ort.SessionOptions()
        # One thread per read: lines run in parallel across parcels, not inside one parcel.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        shape = self.session.get_inputs()[0].shape
        if list(shape[1:]) != [1, 32, 256]:
            raise ValueError(f"model input is {shape}, expected [N, 1, 32, 256]")
        probe = self.session.run(None, {"image": np.ones((1, 1, 32, 256), np.float32)})[0]
        if probe.shape[2] != len(self.charset) + 1:
            raise ValueError(f"model prints {probe.shape[2] - 1} characters, its charset has {len(self.charset)}")
        self.path = path

    def read(self, lines: np.ndarray, full_probability=None, enough: float = 1.0,
             columns: list | None = None) -> list[tuple[str, float]]:
        """Text and confidence for each 32 x 256 line in 0..1.

        The confidence is the best path's probability, or, for texts of 4 or more characters that
        `full_probability(text)` accepts (all when it is None), the text's probability under the
        model summed over every CTC alignment: a well-read line whose character edges are shared
        between blank and character columns still scores high. The sum costs about 1 ms a line,
        so callers ask for it only for texts they could use, and it is skipped where the best path
        alone reaches `enough` (the sum is never below the path's probability).

        `columns`, when given a list, receives for each line the output columns (of 64, one per
        4 input pixels) at which the best path emits each of its characters: where along the line
        each character was read (vision/unread_ink.py measures the ink that none of them covers).
        """
        if len(lines) == 0:
            return []
        logprobs = self.session.run(None, {"image": lines[:, None].astype(np.float32, copy=False)})[0]
        best = logprobs.argmax(axis=2)
        path = np.exp(logprobs.max(axis=2).sum(axis=1))
        texts, confs, summed = [], [float(c) for c in path], []
        for i, row in enumerate(best):
            labels, at, prev = [], [], 0
            for t, idx in enumerate(row):
                if idx != prev and idx != 0:
                    labels.append(int(idx))
                    at.append(t)
                prev = idx
            if columns is not None:
                columns.append(tuple(at))
            text = "".join(self.charset[k - 1] for k in labels)
            texts.append(text)
            if len(labels) >= 4 and confs[i] < enough and (full_probability is None or full_probability(text)):
                summed.append((i, labels))
        if summed:
            rows = np.ascontiguousarray(logprobs[[i for i, _ in summed]], np.float32)
            probs = _compiled_or_numpy()(rows, [labels for _, labels in summed])
            for (i, _), prob in zip(summed, probs):
                confs[i] = float(prob)
        return list(zip(texts, confs))


def text_probability(logprobs: np.ndarray, labels: list[int]) -> float:
    """P(labels | line) by the CTC forward algorithm; logprobs: T x classes, blank = 0."""
    return float(text_probabilities(logprobs[None], [labels])[0])


def text_probabilities(logprobs: np.ndarray, labels: list[list[int]]) -> np.ndarray:
    """P(labels[i] | line i) for every line at once: logprobs N x T x classes, blank = 0.

    The CTC forward pass in probabilities rescaled at every step (the scales' logs are summed),
    all lines side by side: one short numpy loop over the T columns, whatever the number of lines.
    """
    n, steps, _ = logprobs.shape
    size = max(2 * len(lab) + 1 for lab in labels)
    ext = np.zeros((n, size), np.int64)            # blank, c1, blank, c2, ..., blank; padded with blanks
    ends = np.empty(n, np.int64)
    for i, lab in enumerate(labels):
        ext[i, 1:2 * len(lab):2] = lab
        ends[i] = 2 * len(lab)
    # A skip over a blank is allowed only between two different characters. Padding sits after
    # each line's end and only ever flows rightwards, so it never reaches a real position.
    skip = np.zeros((n, size))
    skip[:, 3::2] = ext[:, 3::2] != ext[:, 1:-2:2]
    skip = skip[:, 2:]
    emit = np.exp(np.take_along_axis(logprobs, np.broadcast_to(ext[:, None, :], (n, steps, size)), axis=2),
                  dtype=np.float64)
    alpha = np.zeros((n, size))
    alpha[:, :2] = emit[:, 0, :2]
    scales = np.ones((steps, n))
    moved = np.zeros((n, size))
    jump = np.empty((n, size - 2))
    for t in range(1, steps):
        moved[:, 1:] = alpha[:, :-1]
        np.multiply(alpha[:, :-2], skip, out=jump)
        moved[:, 2:] += jump
        alpha += moved
        alpha *= emit[:, t]
        total = alpha.sum(axis=1)
        # A line whose text has become impossible stays at zero; its scale of 1 changes nothing.
        np.maximum(total, 1e-300, out=total)
        alpha /= total[:, None]
        scales[t] = total
    rows = np.arange(n)
    final = alpha[rows, ends] + alpha[rows, ends - 1]
    with np.errstate(divide="ignore"):
        return np.exp(np.log(scales).sum(axis=0) + np.log(final))


_forward_pass = None


def _compiled_or_numpy():
    """The compiled forward pass (vision/textmodel/_ctc.pyx) unless it is not built or
    SORTLINE_PURE_PYTHON=1 asks for the numpy one; both give the same probabilities."""
    global _forward_pass
    if _forward_pass is None:
        chosen = text_probabilities
        # The switch the routing core obeys too (fastpath/implementation.py), read here on its own so
        # that label reading does not depend on the routing core.
        if os.environ.get("SORTLINE_PURE_PYTHON", "") in ("", "0"):
            try:
                from vision.textmodel._ctc import text_probabilities as chosen
            except ImportError as exc:
                log.warning("the compiled CTC pass is not built (%s); the numpy one costs about 1.4 ms more "
                            "per label. Build it: .venv/bin/python setup.py build_ext --inplace", exc)
        _forward_pass = chosen
    return _forward_pass


_lock = threading.Lock()
_state: dict = {}


def model_path() -> str:
    return os.environ.get(ENV_MODEL) or DEFAULT_MODEL


def load() -> LineModel | None:
    """The shared model, or None (reason logged once) when it cannot be used."""
    with _lock:
        path = model_path()
        if _state.get("path") == path:
            return _state["model"]
        model, problem = None, None
        if not os.path.exists(path):
            problem = f"text model file {path} is missing"
        else:
            try:
                model = LineModel(path)
            except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
                problem = f"text model {path} cannot be loaded ({exc})"
            except Exception as exc:  # onnxruntime raises its own exception types for corrupt files
                if type(exc).__module__.split(".")[0] != "onnxruntime":
                    raise
                problem = f"text model {path} is corrupt ({str(exc).splitlines()[0][:200]})"
        if problem:
            log.error("%s: reading continues with barcodes only; %s", problem, REMEDY)
        _state.update(path=path, model=model, problem=problem)
        return model


def status() -> tuple[bool, str]:
    """(usable, message) for start-up checks."""
    model = load()
    if model is not None:
        return True, f"text model loaded from {model.path}"
    return False, f"{_state['problem']}: reading continues with barcodes only; {REMEDY}"


def reset() -> None:
    with _lock:
        _state.clear()
