"""Which routing core runs: the compiled one, unless SORTLINE_PURE_PYTHON=1 or it is not built."""
import importlib
import logging
import os

log = logging.getLogger("fastpath")
_warned = False


def pure_requested():
    return os.environ.get("SORTLINE_PURE_PYTHON", "") not in ("", "0")


def engine_module(pure=None):
    global _warned
    if pure is None:
        pure = pure_requested()
    if not pure:
        try:
            return importlib.import_module("fastpath._core")
        except ImportError as exc:
            if not _warned:
                _warned = True
                log.warning("the compiled routing core is not built (%s); running the pure-Python one, which is "
                            "much slower. Build it: .venv/bin/python setup.py build_ext --inplace", exc)
    return importlib.import_module("fastpath._pure")


def current():
    """"compiled" or "pure", as a Router made now would use."""
    return "pure" if engine_module().__name__.endswith("_pure") else "compiled"
