"""Seed a real Rucio server with what the panel's tests and benchmark browse.

Runs inside the Rucio server's own venv (``.venv-rucio``, which has rucio's client
too), driven by tests/harness/rucio.py: ``python rucio_seed.py PLAN.json``. The
plan names the server, the RSEs' directories and ports and how big the large
dataset is; the script prints nothing on success. Stdlib + rucio only.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zlib
from pathlib import Path

# this folder holds the harness's rucio.py, which would shadow the rucio package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

# Rucio takes at most 1,000 DIDs per call; SQLite caps a statement at 32,766 variables,
# which 1,000 replicas of ~40 columns exceed
CHUNK = 500


def adler32_hex(data: bytes) -> str:
    return f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"


def content(name: str, size: int) -> bytes:
    """Deterministic bytes for a small real file."""
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def write_bytes(client, plan: dict, replicas: list[dict]) -> None:
    """Put each file's bytes where its file:// and https:// PFNs point."""
    dids = [{"scope": r["scope"], "name": r["name"]} for r in replicas]
    for rep in client.list_replicas(dids, schemes=["file", "https"]):
        data = content(rep["name"], rep["bytes"])
        for pfn in rep["pfns"]:
            if pfn.startswith("file://"):
                path = Path(pfn[len("file://") :])
            else:  # https://127.0.0.1:PORT/data/... is served from web_dir
                path = Path(plan["web_dir"]) / pfn.split("/data/", 1)[1]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def protocol(
    scheme: str,
    hostname: str,
    port: int,
    prefix: str,
    impl: str,
    *,
    lan: int,
    wan: int,
    tpc: int = 1,
) -> dict:
    """An RSE protocol as ``Client.add_protocol`` takes it: ``impl`` names the module in
    ``rucio.rse.protocols``; ``lan`` and ``wan`` are the read/write/delete priorities in
    each domain (0: not used), ``tpc`` the WAN third-party-copy read priority."""
    return {
        "scheme": scheme,
        "hostname": hostname,
        "port": port,
        "prefix": prefix,
        "impl": f"rucio.rse.protocols.{impl}.Default",
        "domains": {
            "lan": {"read": lan, "write": lan, "delete": lan},
            "wan": {"read": wan, "write": wan, "delete": wan, "third_party_copy_read": tpc},
        },
    }


def main(plan_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    os.environ["RUCIO_CONFIG"] = plan["client_config"]
    from rucio.client import Client

    root = Client()
    scope = plan["scope"]
    account = plan["account"]
    disk, web, dest = plan["rse_disk"], plan["rse_web"], plan["rse_dest"]

    root.add_account(account, "USER", f"{account}@example.org")
    root.add_identity(
        account=account,
        identity=plan["username"],
        authtype="USERPASS",
        email=f"{account}@example.org",
        password=plan["password"],
    )
    root.add_scope("root", scope)

    # SITE_DISK: a POSIX RSE (file://) that also advertises an XRootD door (root://)
    root.add_rse(disk)
    disk_prefix = plan["disk_dir"] + "/"
    root.add_protocol(disk, protocol("file", "", 0, disk_prefix, "posix", lan=1, wan=2, tpc=0))
    root.add_protocol(
        disk, protocol("root", "127.0.0.1", plan["root_port"], "//data/", "xrootd", lan=2, wan=1)
    )
    # SITE_WEB: served for real over HTTPS by the harness (downloads read from it)
    root.add_rse(web)
    root.add_protocol(
        web, protocol("https", "127.0.0.1", plan["web_port"], "/data/", "webdav", lan=1, wan=1)
    )
    # SITE_SCRATCH: where users may ask for replicas (rules)
    root.add_rse(dest)
    dest_prefix = plan["dest_dir"] + "/"
    root.add_protocol(dest, protocol("file", "", 0, dest_prefix, "posix", lan=1, wan=1))
    for rse in (disk, web, dest):
        root.set_local_account_limit(account, rse, 10**15)

    def add_files(files: list[dict], rse: str) -> None:
        for i in range(0, len(files), CHUNK):
            root.add_replicas(rse=rse, files=files[i : i + CHUNK])

    def attach(dataset: str, files: list[dict]) -> None:
        for i in range(0, len(files), CHUNK):
            dids = [{"scope": scope, "name": f["name"]} for f in files[i : i + CHUNK]]
            root.attach_dids(scope, dataset, dids)

    # small real files: container -> 2 datasets -> files, with events, on disk and web
    small = plan["small"]
    for ds_name, files in small["datasets"].items():
        root.add_dataset(scope, ds_name)
        replicas = []
        for f in files:
            data = content(f["name"], f["bytes"])
            replicas.append(
                {
                    "scope": scope,
                    "name": f["name"],
                    "bytes": len(data),
                    "adler32": adler32_hex(data),
                }
            )
        add_files(replicas, disk)
        web_files = [r for r, f in zip(replicas, files, strict=True) if f.get("web")]
        add_files(web_files, web)
        write_bytes(root, plan, replicas)
        attach(ds_name, replicas)
        for f in files:
            if f.get("events") is not None:
                root.set_metadata(scope, f["name"], "events", f["events"])
    root.add_container(scope, small["container"])
    root.attach_dids(
        scope, small["container"], [{"scope": scope, "name": n} for n in small["datasets"]]
    )

    # a name a browser would run if it were not escaped (allowed by the test policy)
    html = plan["html_name"]
    root.add_dataset(scope, html)
    data = content(html + ".file", 64)
    html_file = {
        "scope": scope,
        "name": html + ".file",
        "bytes": len(data),
        "adler32": adler32_hex(data),
    }
    add_files([html_file], disk)
    write_bytes(root, plan, [html_file])
    attach(html, [html_file])

    # the large dataset: many files, registered only (no bytes on disk)
    big, n = plan["big_name"], plan["big_files"]
    root.add_dataset(scope, big)
    files = [
        {
            "scope": scope,
            "name": f"{big}.{i:06d}.root",
            "bytes": 2_000_000 + i,
            "adler32": "00000001",
        }
        for i in range(n)
    ]
    add_files(files, disk)
    attach(big, files)


if __name__ == "__main__":
    main(sys.argv[1])
