"""The code the panel inserts into a notebook to open a file with uproot."""

from __future__ import annotations

import json

# the order a snippet prefers when the panel names no PFN: streaming protocols first
SCHEME_PREFERENCE = ("root", "https", "davs", "http", "file")


def scheme(pfn: str) -> str:
    """The PFN's scheme in lower case (``root``, ``https``...), ``""`` if it has none."""
    return pfn.split("://", 1)[0].lower() if "://" in pfn else ""


def preferred_pfn(pfns: list[str]) -> str | None:
    """The PFN a snippet should open: XRootD, then HTTPS/WebDAV, then a local path."""
    for wanted in SCHEME_PREFERENCE:
        for pfn in pfns:
            if scheme(pfn) == wanted:
                return pfn
    return None


def uproot_snippet(scope: str, name: str, pfn: str) -> str:
    """Python that opens ``pfn`` with uproot; every string is a JSON literal, so a
    name or PFN can never break out of it."""
    kind = scheme(pfn)
    did = json.dumps(f"{scope}:{name}")
    if kind == "file":
        location = json.dumps(pfn[len("file://") :])
        how = "# a local path on the facility's storage"
    elif kind == "root":
        location = json.dumps(pfn)
        how = "# XRootD (needs fsspec-xrootd); the token comes from $BEARER_TOKEN_FILE"
    else:
        location = json.dumps(pfn)
        how = "# HTTPS / WebDAV, streamed"
    return (
        "import uproot\n"
        "\n"
        f"did = {did}\n"
        f"{how}\n"
        f"file = uproot.open({location})\n"
        "print(did, file.keys())\n"
    )
