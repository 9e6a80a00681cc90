"""Sphinx extension: settings for the kernels that execute the chapters.

Kernels inherit this process's environment, so progress bars are switched off
(``ACTFNS_PROGRESS=0``) and cannot spill into the rendered pages.
"""

import os


def setup(app):
    os.environ["ACTFNS_PROGRESS"] = "0"
    return {"parallel_read_safe": True, "parallel_write_safe": True}
