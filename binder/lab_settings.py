"""JupyterLab settings for readers, merged into
``labconfig/default_setting_overrides.json`` of the Jupyter config folder
(``$JUPYTER_CONFIG_DIR``, else ``~/.jupyter``), the file that
``jupytext-config set-default-viewer`` writes too. Run by binder/postBuild.

- ``autoStartDefaultKernel``: a chapter whose kernel cannot be matched by name
  starts the default (Python) kernel instead of asking the reader to pick one.
- ``fetchNews``: no "get notified about Jupyter news?" popup over the chapter.
"""

import json
from pathlib import Path

from jupyter_core.paths import jupyter_config_dir

SETTINGS = {
    "@jupyterlab/notebook-extension:tracker": {"autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
}


def merge(settings=SETTINGS, config_dir=None):
    """Merge ``settings`` into the overrides file; return its path."""
    path = Path(config_dir or jupyter_config_dir()) / "labconfig" / \
        "default_setting_overrides.json"
    current = json.loads(path.read_text()) if path.is_file() else {}
    for plugin, values in settings.items():
        current.setdefault(plugin, {}).update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2) + "\n")
    return path


if __name__ == "__main__":
    print("JupyterLab settings written to", merge())
