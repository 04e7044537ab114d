"""Sphinx configuration of jhub_af's documentation (`make docs`, offline, warnings are errors)."""

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))

project = "jhub_af"
author = "jhub_af developers"
extensions = ["myst_parser", "traitlets_reference"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
html_theme = "alabaster"
html_title = "jhub_af"
# pages link to files of the repository (helm-values/..., docker/...), which are not pages
suppress_warnings = ["myst.xref_missing"]
