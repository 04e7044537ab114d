"""How many modules importing a jhub_af package loads, and how long it takes.

    python benchmarks/import_cost.py [--repeats N] [MODULE ...]

Each import runs in a fresh interpreter (``python -X importtime`` is not needed:
the child counts ``sys.modules`` before and after and times the import), several
times; the median time is reported. Not a ``bench_*`` (it has no anchor): it
tracks the shape of the code, the numbers going in ``docs/development.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

DEFAULT_MODULES = ("jhub_af.ssh", "jhub_af.lab", "jhub_af.accounting.client", "jhub_af.accounting")
CHILD = """
import json, sys, time
before = set(sys.modules)
start = time.perf_counter()
import {module}
took = time.perf_counter() - start
loaded = set(sys.modules) - before
print(json.dumps({{"modules": len(loaded), "seconds": took,
    "heavy": sorted(m for m in ("sqlalchemy", "jupyterhub", "batchspawner", "asyncssh",
        "dask_gateway_server", "jupyter_server", "kubespawner") if m in loaded)}}))
"""


def measure(module: str, repeats: int) -> dict:
    """Median seconds and the module count of ``import module`` in fresh interpreters.

    Returns ``{"module", "modules", "seconds", "heavy"}``; raises
    ``subprocess.CalledProcessError`` when the import fails.
    """
    runs = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", CHILD.format(module=module)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    return {
        "module": module,
        "modules": runs[-1]["modules"],
        "seconds": round(statistics.median(r["seconds"] for r in runs), 3),
        "heavy": runs[-1]["heavy"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("modules", nargs="*", default=list(DEFAULT_MODULES))
    args = parser.parse_args(argv)
    for module in args.modules:
        r = measure(module, args.repeats)
        heavy = ", ".join(r["heavy"]) or "none"
        print(f"{r['module']:<28} {r['modules']:>5} modules  {r['seconds']:.3f} s  heavy: {heavy}")


if __name__ == "__main__":
    main()
