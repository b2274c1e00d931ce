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

    def read(self, lines: np.ndarray, full_probability=None) -> list[tuple[str, float]]:
        """Text and confidence for each 32 x 256 line in 0..1.

        The confidence is the best path's probability, or, for texts of 4 or more characters that
        `full_probability(text)` accepts (all when it is None), the text's probability under the
        model summed over every CTC alignment: a well-read line whose character edges are shared
        between blank and character columns still scores high. The sum costs about 1 ms a line,
        so callers ask for it only for texts they could use.
        """
        if len(lines) == 0:
            return []
        logprobs = self.session.run(None, {"image": lines[:, None].astype(np.float32, copy=False)})[0]
        best = logprobs.argmax(axis=2)
        path = np.exp(logprobs.max(axis=2).sum(axis=1))
        out = []
        for row, lp, conf in zip(best, logprobs, path):
            labels, prev = [], 0
            for idx in row:
                if idx != prev and idx != 0:
                    labels.append(int(idx))
                prev = idx
            text = "".join(self.charset[i - 1] for i in labels)
            if len(labels) >= 4 and (full_probability is None or full_probability(text)):
                conf = text_probability(lp, labels)
            out.append((text, float(conf)))
        return out


def text_probability(logprobs: np.ndarray, labels: list[int]) -> float:
    """P(labels | line) by the CTC forward algorithm; logprobs: T x classes, blank = 0."""
    ext = np.zeros(2 * len(labels) + 1, np.int64)
    ext[1::2] = labels
    # A skip over a blank is allowed only between two different characters.
    skip = np.zeros(ext.size, bool)
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    neg = -np.inf
    alpha = np.full(ext.size, neg)
    alpha[0] = logprobs[0, 0]
    alpha[1] = logprobs[0, ext[1]]
    for t in range(1, logprobs.shape[0]):
        one = np.concatenate(([neg], alpha[:-1]))
        two = np.where(skip, np.concatenate(([neg, neg], alpha[:-2])), neg)
        alpha = np.logaddexp(np.logaddexp(alpha, one), two) + logprobs[t, ext]
    return float(np.exp(np.logaddexp(alpha[-1], alpha[-2])))


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
