"""Build and install sortline.

The routing hot path (fastpath/*.pyx) is compiled here, at install time, so that a line
never runs a stale or missing extension without knowing it.
"""
import glob
import os
import re
import sys
from pathlib import Path

from setuptools import find_packages, setup

RUNTIME_REQUIRES = [
    # 3.16 renamed slave= to device_id= and replaced the server datastore: pin the minor.
    "pymodbus>=3.16,<3.17",
    "asyncua>=2.1,<2.2",
    "numpy>=2.4,<3",
    "opencv-python-headless>=5.0,<6",
    "zxing-cpp>=3.1,<4",
    "onnxruntime>=1.31,<2",
    "aiohttp>=3.12,<4",
    "pillow>=10,<14",           # synthetic labels (simulated camera, vision tests)
    "prometheus-client>=0.26,<0.27",   # /metrics: exposition format, process metrics
]


def _extensions():
    # The routing core, and the CTC pass of the text model (vision/textmodel/_ctc.pyx).
    sources = sorted(glob.glob(os.path.join("fastpath", "*.pyx"))
                     + glob.glob(os.path.join("vision", "textmodel", "*.pyx")))
    if not sources:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        sys.exit(
            "sortline: Cython is needed to build the routing core (fastpath/*.pyx).\n"
            "  Install it into the environment first: pip install 'Cython>=3.3,<4'\n"
            "  ('make venv' does this for you)."
        )
    import sysconfig
    if not sysconfig.get_config_var("CC"):
        sys.exit("sortline: no C compiler found; install one: apt-get install -y gcc python3-dev")
    import numpy
    from setuptools import Extension
    exts = [
        Extension(
            os.path.splitext(src)[0].replace(os.sep, "."),
            [src],
            include_dirs=[numpy.get_include()],
            extra_compile_args=["-O3"],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        )
        for src in sources
    ]
    return cythonize(exts, compiler_directives={"language_level": 3}, quiet=True)



def _version():
    """The version as edge/__init__.py writes it (read, not imported: the build has no numpy yet)."""
    text = (Path(__file__).parent / "edge" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)


setup(
    name="sortline",
    version=_version(),
    description="Edge control software for shared parcel sorting lines",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["edge", "edge.*", "drivers", "drivers.*", "vision", "vision.*",
                                    "fastpath", "fastpath.*", "sim_plc", "sim_plc.*"]),
    package_data={
        "vision.textmodel": ["*.onnx", "*.json", "*.md"],
        "vision.synth": ["*.ttf", "*.otf", "*.txt"],
        "edge.web": ["static/*"],
    },
    ext_modules=_extensions(),
    install_requires=RUNTIME_REQUIRES,
    entry_points={"console_scripts": ["sortline = edge.cli:main"]},
    zip_safe=False,
)
