# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The CTC forward pass of runtime.text_probabilities, compiled.

The numpy version there steps over a line's columns in Python, about 1.4 ms for the lines of one
label; here the same recurrence, rescaled at every column the same way, runs in C in a few
microseconds. runtime.py falls back to the numpy version when this is not built; both give the
same probabilities (tests/vision/test_vision_ctc.py).
"""
import numpy as np

from libc.math cimport exp, log

cdef double TINY = 1e-300


def text_probabilities(const float[:, :, ::1] logprobs, list labels):
    """P(labels[i] | line i): logprobs N x T x classes (log-softmax), blank = 0."""
    cdef Py_ssize_t n = logprobs.shape[0], steps = logprobs.shape[1], classes = logprobs.shape[2]
    cdef Py_ssize_t i, t, s, size, last
    cdef double total, log_scale, prev, prev2, cur
    out = np.empty(n, np.float64)
    cdef double[::1] result = out
    cdef long[::1] ext
    cdef double[::1] alpha
    for i in range(n):
        lab = labels[i]
        size = 2 * len(lab) + 1
        ext_arr = np.zeros(size, np.int_)
        ext_arr[1::2] = lab
        ext = ext_arr
        for s in range(size):
            if ext[s] < 0 or ext[s] >= classes:
                raise ValueError(f"label {ext[s]} outside the model's {classes} classes")
        alpha = np.zeros(size, np.float64)
        alpha[0] = exp(logprobs[i, 0, 0])
        if size > 1:
            alpha[1] = exp(logprobs[i, 0, ext[1]])
        log_scale = 0.0
        for t in range(1, steps):
            # Right to left, so that alpha[s - 1] and alpha[s - 2] still hold column t - 1.
            for s in range(size - 1, -1, -1):
                cur = alpha[s]
                if s >= 1:
                    cur += alpha[s - 1]
                # A skip over a blank only between two different characters.
                if s >= 2 and s % 2 == 1 and ext[s] != ext[s - 2]:
                    cur += alpha[s - 2]
                alpha[s] = cur * exp(logprobs[i, t, ext[s]])
            total = 0.0
            for s in range(size):
                total += alpha[s]
            # A text that has become impossible stays at zero; its scale of 1 changes nothing.
            if total < TINY:
                total = TINY
            for s in range(size):
                alpha[s] /= total
            log_scale += log(total)
        last = size - 1
        cur = alpha[last] + (alpha[last - 1] if last >= 1 else 0.0)
        result[i] = exp(log_scale + log(cur)) if cur > 0.0 else 0.0
    return out
