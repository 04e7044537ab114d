"""The wall time accounting adds to spawns: 50 users spawn + stop with and without it.

Both sides run ProfileSpawner with bench_profile_spawn's catalogue (local profiles
on SimpleLocalProcessSpawner). jhub_af's side is a hub that also runs af-accounting
(started by that hub, SQLite ledger, set up by accounting_hub_config), so every
start reserves (sized from the profile), confirms, and every stop releases; the
anchor is the same hub without af-accounting (ProfileSpawner's accounting off).
Otherwise the rounds are bench_profile_spawn's: both hubs in the same run,
alternating sides.
"""

from __future__ import annotations

import importlib.util
import secrets
import sqlite3
import tempfile
from pathlib import Path

from harness import free_port, wait_for_http

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location(
    "bench_profile_spawn", HERE / "bench_profile_spawn.py"
)
spawn_rounds = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(spawn_rounds)

SPEC = {
    "what": "50 users spawn + stop through the REST API, with accounting",
    "anchor": "the same ProfileSpawner and hub without accounting",
    "unit": "s",
    "target": "<= 1.05",
}


def accounting_extra(workdir: Path, port: int) -> str:
    return f"""
from jhub_af.accounting import accounting_hub_config
from jhub_af.hub import add_roles

add_roles(c, accounting_hub_config(
    c, data_dir={str(workdir / "accounting")!r}, port={port},
    policy={{"defaults": {{"servers": 1, "cores": 4}}}},
))
"""


def run(repeats: int) -> tuple[list[float], list[float]]:
    ours, anchor = [], []
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="bench-acct-spawn-") as tmp:
        port = free_port()
        profiles = spawn_rounds.PROFILES
        ours_hub = spawn_rounds._start(
            Path(tmp) / "accounted",
            token,
            profiles + accounting_extra(Path(tmp) / "accounted", port),
        )
        plain_hub = spawn_rounds._start(Path(tmp) / "plain", token, profiles)
        try:
            # the service answers (403 without a token) once it is up
            wait_for_http(
                f"http://127.0.0.1:{port}/services/af-accounting/metrics", 120, expect=403
            )
            for i in range(repeats):
                sides = [("ours", ours_hub), ("anchor", plain_hub)]
                for side, hub in sides if i % 2 == 0 else reversed(sides):
                    (ours if side == "ours" else anchor).append(
                        spawn_rounds.one_round(hub.url, token)
                    )
                print(
                    f"   run {i + 1}: with accounting {ours[-1]:.2f}s, without {anchor[-1]:.2f}s",
                    flush=True,
                )
            _check_ledger(Path(tmp) / "accounted", len(spawn_rounds.USERS) * repeats)
        finally:
            ours_hub.stop()
            plain_hub.stop()
    return ours, anchor


def _check_ledger(workdir: Path, spawns: int) -> None:
    """Every spawn of the accounted side went through af-accounting, and every stop
    released its reservation (otherwise the comparison would be meaningless)."""
    with sqlite3.connect(workdir / "accounting" / "af-accounting.sqlite") as db:
        states = dict(
            db.execute(
                "SELECT state, count(*) FROM af_reservations WHERE kind = 'server' GROUP BY state"
            ).fetchall()
        )
    print(f"   ledger of the accounted hub: {states}", flush=True)
    if states != {"released": spawns}:
        raise RuntimeError(f"expected {spawns} released reservations, the ledger has {states}")
