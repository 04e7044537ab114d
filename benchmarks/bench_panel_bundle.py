"""The JupyterLab panel's bundle: what a browser downloads for jhub_af's panel (Dask,
Data and Usage tabs) vs rucio-jupyterlab's prebuilt extension (a Rucio browser
alone), taken from its PyPI wheel in the same run.

Both are counted the same way: every file under the extension's ``static/`` folder
except the licence list, raw and gzip-compressed (level 9, as a web server would
send it). The sizes are deterministic, so the repeats are identical; the benchmark
rebuilds jhub_af's bundle once (``jlpm build:prod``) so that it measures the
sources as they are. The raw sizes and file counts go to
``results/panel_bundle_details.json``.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABEXT = ROOT / "labextension"
BUILT = ROOT / "jhub_af" / "labextension" / "static"
DETAILS = Path(__file__).resolve().parent / "results" / "panel_bundle_details.json"
ANCHOR_PACKAGE = "rucio-jupyterlab"
SKIP = {"third-party-licenses.json"}

SPEC = {
    "what": "the panel's built bundle, gzip -9 (KiB; raw sizes: panel_bundle_details.json)",
    "anchor": f"{ANCHOR_PACKAGE}'s prebuilt labextension from its PyPI wheel (latest)",
    "unit": "KiB",
}


def sizes(static: Path) -> dict:
    files = sorted(p for p in static.rglob("*") if p.is_file() and p.name not in SKIP)
    raw = sum(p.stat().st_size for p in files)
    gz = sum(len(gzip.compress(p.read_bytes(), 9)) for p in files)
    return {"files": len(files), "raw_bytes": raw, "gzip_bytes": gz}


def build_ours() -> Path:
    jlpm = Path(sys.executable).parent / "jlpm"
    env_path = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
    for args in (["install"], ["build:prod"]):
        subprocess.run([str(jlpm), *args], cwd=LABEXT, check=True, env={"PATH": env_path})
    return BUILT


def anchor_static(workdir: Path) -> tuple[Path, str]:
    pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:"]
    subprocess.run([*pip, "-d", str(workdir), ANCHOR_PACKAGE], check=True)
    (wheel,) = workdir.glob("*.whl")
    out = workdir / "unpacked"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(out)
    (static,) = [p for p in out.rglob("static") if "labextensions" in p.parts]
    return static, wheel.name


def run(repeats: int) -> tuple[list[float], list[float]]:
    ours_static = build_ours()
    with tempfile.TemporaryDirectory() as tmp:
        theirs_static, wheel = anchor_static(Path(tmp))
        ours_sizes, theirs_sizes = [], []
        for i in range(repeats):
            ours_sizes.append(sizes(ours_static))
            theirs_sizes.append(sizes(theirs_static))
            print(
                f"   run {i + 1}: jhub_af {ours_sizes[-1]['gzip_bytes'] / 1024:.1f} KiB gzip, "
                f"{ANCHOR_PACKAGE} {theirs_sizes[-1]['gzip_bytes'] / 1024:.1f} KiB gzip",
                flush=True,
            )
    DETAILS.parent.mkdir(parents=True, exist_ok=True)
    DETAILS.write_text(
        json.dumps(
            {"jhub_af": ours_sizes[0], ANCHOR_PACKAGE: {**theirs_sizes[0], "wheel": wheel}},
            indent=2,
        )
        + "\n"
    )
    return (
        [s["gzip_bytes"] / 1024 for s in ours_sizes],
        [s["gzip_bytes"] / 1024 for s in theirs_sizes],
    )
