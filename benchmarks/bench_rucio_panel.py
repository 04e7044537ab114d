"""Time to the first page of a 100,000-file dataset in the Data tab, and the server's memory.

Both sides run in a fresh ``jupyter server`` against the same real Rucio 41 server
(tests/harness/rucio.py, memcached, SQLite, seeded once with a 100,000-file dataset
and cached under /var/tmp/jhub-af-rucio-cache), alternately, in the same run:

- jhub_af: ``GET jhub-af/rucio/test/contents?scope=mc23&name=ds.big&page_size=100``,
  the first page: 100 names with sizes and the replicas (PFNs) of those 100 files;
- anchor: rucio-jupyterlab (from PyPI, in its own venv made here) serving the same
  Rucio with userpass: ``GET rucio-jupyterlab/files?did=mc23:ds.big&poll=1``, which
  is what its panel waits for before it shows a dataset (it lists every replica of
  the dataset; ``poll=1`` skips its own SQLite cache, so both sides are cold).

Each run starts both servers afresh (so the first request also fetches a Rucio
token on both sides). The time is the request's wall time; the memory is the
server process's peak RSS (VmHWM) after the request. The memory medians go to
results/rucio_panel_details.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from harness import ManagedProcess, free_port, start_rucio, wait_for_http
from harness.hub import REPO

SPEC = {
    "what": "first page (100 files: names, sizes, replicas) of a 100,000-file Rucio dataset",
    "anchor": "rucio-jupyterlab (PyPI) listing the same dataset from the same Rucio",
    "unit": "s",
    "target": "first page < 1 s; memory flat with dataset size",
}

FILES = 100_000
TOKEN = "bench-rucio-token"
ANCHOR_VENV = Path(os.environ.get("JHUB_AF_RJL_VENV", "/var/tmp/jhub-af-bench/rjl-venv"))
RESULTS = Path(__file__).resolve().parent / "results"


def anchor_venv() -> Path:
    """rucio-jupyterlab in a venv of its own (it brings rucio-clients and JupyterLab)."""
    if not (ANCHOR_VENV / ".installed").exists():
        subprocess.run([sys.executable, "-m", "venv", str(ANCHOR_VENV)], check=True)
        pip = str(ANCHOR_VENV / "bin" / "pip")
        subprocess.run([pip, "install", "-q", "--upgrade", "pip"], check=True)
        subprocess.run([pip, "install", "-q", "rucio-jupyterlab"], check=True)
        (ANCHOR_VENV / ".installed").write_text("rucio-jupyterlab\n")
    return ANCHOR_VENV


def start_server(bindir: Path, config: dict, workdir: Path) -> tuple[ManagedProcess, str]:
    config_dir, home = workdir / "config", workdir / "home"
    config_dir.mkdir(parents=True)
    home.mkdir()
    config["IdentityProvider"] = {"token": TOKEN}
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "BEARER"))}
    env.update(
        HOME=str(home),  # rucio-jupyterlab keeps its cache in ~/.rucio_jupyterlab
        JUPYTER_CONFIG_PATH=str(config_dir),
        JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
        JUPYTER_DATA_DIR=str(workdir / "data"),
    )
    port = free_port()
    process = ManagedProcess(
        [
            str(bindir / "jupyter-server"),
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.root_dir={home}",
        ],
        log=workdir / "server.log",
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/api", timeout=120, alive=process.alive, describe=process.log_tail)
    return process, url


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def run_ours(rucio, workdir: Path) -> tuple[float, float]:
    process, url = start_server(REPO / ".venv" / "bin", rucio.lab_config(), workdir)
    try:
        http = requests.Session()
        http.headers["Authorization"] = f"token {TOKEN}"
        started = time.perf_counter()
        r = http.get(
            f"{url}/jhub-af/rucio/test/contents",
            params={"scope": rucio.scope, "name": rucio.big_name, "page_size": "100"},
            timeout=600,
        )
        elapsed = time.perf_counter() - started
        body = r.json()
        if r.status_code != 200 or len(body["items"]) != 100 or not body["has_more"]:
            raise RuntimeError(f"jhub_af's first page is wrong: {r.status_code} {r.text[:300]}")
        if not all(i["replicas"] for i in body["items"]):
            raise RuntimeError("jhub_af's first page has files without replicas")
        return elapsed, peak_rss_mb(process.pid)
    finally:
        process.stop()


def run_anchor(rucio, workdir: Path) -> tuple[float, float]:
    config = {
        "RucioConfig": {
            "instances": [
                {
                    "name": "test",
                    "display_name": "Test",
                    "rucio_base_url": rucio.url,
                    "rucio_auth_url": rucio.url,
                    "rucio_ca_cert": str(rucio.ca_cert),
                    "mode": "download",
                }
            ]
        }
    }
    process, url = start_server(anchor_venv() / "bin", config, workdir)
    try:
        http = requests.Session()
        http.headers["Authorization"] = f"token {TOKEN}"
        r = http.put(
            f"{url}/rucio-jupyterlab/auth",
            json={
                "namespace": "test",
                "type": "userpass",
                "params": {
                    "username": rucio.username,
                    "password": rucio.password,
                    "account": rucio.account,
                },
            },
            timeout=60,
        )
        r.raise_for_status()
        # what its panel does when the user picks the instance and the auth method
        r = http.put(
            f"{url}/rucio-jupyterlab/instances",
            json={"instance": "test", "auth": "userpass"},
            timeout=60,
        )
        r.raise_for_status()
        started = time.perf_counter()
        r = http.get(
            f"{url}/rucio-jupyterlab/files",
            params={"namespace": "test", "did": f"{rucio.scope}:{rucio.big_name}", "poll": "1"},
            timeout=900,
        )
        elapsed = time.perf_counter() - started
        if r.status_code != 200 or len(r.json()) != FILES:
            raise RuntimeError(
                f"rucio-jupyterlab's listing is wrong: {r.status_code} {r.text[:300]}"
            )
        return elapsed, peak_rss_mb(process.pid)
    finally:
        process.stop()


def run(repeats: int) -> tuple[list[float], list[float]]:
    anchor_venv()
    with tempfile.TemporaryDirectory(prefix="bench-rucio-") as tmp:
        tmp = Path(tmp)
        seeded = time.perf_counter()
        rucio = start_rucio(tmp / "rucio", big_files=FILES, timeout=120)
        seed_seconds = time.perf_counter() - seeded
        ours, anchor, ours_mb, anchor_mb = [], [], [], []
        try:
            for i in range(repeats):
                t, mb = run_ours(rucio, tmp / f"ours-{i}")
                ours.append(t)
                ours_mb.append(mb)
                t, mb = run_anchor(rucio, tmp / f"anchor-{i}")
                anchor.append(t)
                anchor_mb.append(mb)
                print(
                    f"   run {i}: jhub_af {ours[-1]:.3f} s {ours_mb[-1]:.0f} MB, "
                    f"rucio-jupyterlab {anchor[-1]:.1f} s {anchor_mb[-1]:.0f} MB",
                    flush=True,
                )
        finally:
            rucio.stop()
    details = {
        "dataset_files": FILES,
        "page_size": 100,
        "runs": repeats,
        "rucio_start_and_seed_s": round(seed_seconds, 1),
        "jhub_af_first_page_s": [round(x, 3) for x in ours],
        "anchor_listing_s": [round(x, 2) for x in anchor],
        "jhub_af_peak_rss_mb": [round(x, 1) for x in ours_mb],
        "anchor_peak_rss_mb": [round(x, 1) for x in anchor_mb],
        "jhub_af_peak_rss_mb_median": round(statistics.median(ours_mb), 1),
        "anchor_peak_rss_mb_median": round(statistics.median(anchor_mb), 1),
        "peak_rss_ratio": round(statistics.median(ours_mb) / statistics.median(anchor_mb), 3),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rucio_panel_details.json").write_text(json.dumps(details, indent=2) + "\n")
    return ours, anchor
