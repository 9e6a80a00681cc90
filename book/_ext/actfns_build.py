"""Sphinx extension: settings for the kernels that execute the chapters.

Kernels inherit this process's environment, so
- progress bars are switched off (``ACTFNS_PROGRESS=0``) and cannot spill into the
  rendered pages;
- figures are retina PNGs (twice the pixels, shown at the normal size): the kernels
  read an IPython profile, written next to the build's doctrees, that sets
  ``InlineBackend.figure_formats``.
"""

import os
from pathlib import Path

KERNEL_CONFIG = 'c.InlineBackend.figure_formats = {"retina"}\n'


def kernel_profile(app, config):
    profile = Path(app.doctreedir).parent / "ipython" / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text(KERNEL_CONFIG)
    os.environ["IPYTHONDIR"] = str(profile.parent)


def setup(app):
    os.environ["ACTFNS_PROGRESS"] = "0"
    app.connect("config-inited", kernel_profile)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
