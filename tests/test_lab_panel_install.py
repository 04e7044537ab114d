"""The panel is installed as `pip install -e .` (what the Makefile runs) leaves it: the
prebuilt labextension enabled in JupyterLab, the server extension enabled, and the
labextension's remote entry present (JupyterLab loads the panel from it)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
SHARE = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "jhub-af-panel"


def _run(*args: str) -> str:
    r = subprocess.run(
        [str(BIN / "jupyter"), *args], capture_output=True, text=True, timeout=120, check=True
    )
    return re.sub(r"\x1b\[[0-9;]*m", "", r.stdout + r.stderr)  # no colours


def test_the_labextension_is_installed_and_enabled():
    out = _run("labextension", "list")
    assert re.search(r"jhub-af-panel v\S+ enabled\s+OK \(python, jhub_af\)", out), out


def test_the_server_extension_is_enabled():
    out = _run("server", "extension", "list")
    assert re.search(r"jhub_af\.lab enabled", out), out


def test_the_installed_bundle_is_complete():
    meta = json.loads((SHARE / "package.json").read_text())
    assert meta["name"] == "jhub-af-panel"
    entry = meta["jupyterlab"]["_build"]["load"]
    assert (SHARE / entry).is_file()
    assert (SHARE / "static" / "style.js").is_file()
    install = json.loads((SHARE / "install.json").read_text())
    assert install["packageName"] == "jhub_af"
