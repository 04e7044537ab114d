"""Run every benchmark in this folder; write results/latest.json and results/latest.md.

Each ``bench_*.py`` measures jhub_af and a named anchor side by side in the same
run, several times, and reports medians and their ratio. The machine is shared
and noisy: read the ratio, not the absolute times, and never gate a test on them.

    python benchmarks/run.py [--repeats N] [NAME ...]

Running some benchmarks (NAME ...) merges their results into the existing
results/latest.{json,md}: the others' results are kept, with the date they ran.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the real-parts harness


def summarise(name: str, spec: dict, ours: list[float], anchor: list[float]) -> dict:
    """Medians of both sides and ratio = jhub_af / anchor (lower is better for times)."""
    ours_median = statistics.median(ours)
    anchor_median = statistics.median(anchor)
    return {
        "name": name,
        "what": spec["what"],
        "anchor": spec["anchor"],
        "unit": spec["unit"],
        "runs": len(ours),
        "jhub_af_samples": [round(x, 4) for x in ours],
        "anchor_samples": [round(x, 4) for x in anchor],
        "jhub_af_median": round(ours_median, 4),
        "anchor_median": round(anchor_median, 4),
        "ratio": round(ours_median / anchor_median, 3),
        "target": spec.get("target"),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def merge(previous: list[dict], new: list[dict]) -> list[dict]:
    """Earlier results with the benchmarks just run replaced; sorted by name."""
    by_name = {r["name"]: r for r in previous}
    by_name.update({r["name"]: r for r in new})
    return [by_name[name] for name in sorted(by_name)]


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def machine() -> dict:
    import jupyterhub

    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "jupyterhub": jupyterhub.__version__,
        "platform": platform.platform(),
    }


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Written {m['date']} on {m['cores']} cores, Python {m['python']}, "
        f"JupyterHub {m['jupyterhub']}. Medians over the runs; ratio = jhub_af / anchor; "
        "'run' is when each benchmark last ran.",
        "",
        "| benchmark | anchor | runs | jhub_af median | anchor median | ratio | target | run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['name']}: {r['what']} | {r['anchor']} | {r['runs']} | "
            f"{r['jhub_af_median']} {r['unit']} | {r['anchor_median']} {r['unit']} | "
            f"{r['ratio']} | {r['target'] or ''} | {r.get('date', '')} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=int(os.environ.get("BENCH_REPEATS", 5)))
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    args = parser.parse_args()
    results = []
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if args.names and name not in args.names:
            continue
        module = load(path)
        print(f"== {name}: {module.SPEC['what']} vs {module.SPEC['anchor']}", flush=True)
        ours, anchor = module.run(args.repeats)
        result = summarise(name, module.SPEC, ours, anchor)
        print(
            f"   median {result['jhub_af_median']} vs {result['anchor_median']} "
            f"{result['unit']}: ratio {result['ratio']}",
            flush=True,
        )
        results.append(result)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    previous = []
    if args.names and (out / "latest.json").exists():
        previous = json.loads((out / "latest.json").read_text()).get("results", [])
    report = {"machine": machine(), "results": merge(previous, results)}
    (out / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "latest.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
