"""Run every benchmark, one after the other, each in its own process, and print a summary table.

About 25 minutes on a 2-core CPU: data (~1 min), accuracy (the ``--minutes`` budget, 15 by
default), trainer overhead (~5 min), inference (~4 min), GPU (skips without CUDA). Each
benchmark writes ``benchmarks/results/<name>.json``; the summary is written to
``benchmarks/results/summary.json``.

    python benchmarks/run_all.py [--minutes 15] [--only accuracy trainer ...] [--summary-only]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import RESULTS, ROOT, machine

HERE = ROOT / "benchmarks"


def _load(name: str) -> dict | None:
    try:
        return json.loads((RESULTS / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None


def _row(rows: list[dict], key: str, prefix: str) -> dict:
    return next((r for r in rows if str(r.get(key, "")).startswith(prefix)), {})


def summarise(name: str, rec: dict | None) -> list[dict]:
    """Headline rows of one benchmark's result record: what, result, target, met."""
    if rec is None:
        return [{"benchmark": name, "what": "no result", "result": "", "target": "", "met": False}]
    rows = rec["rows"]
    if name == "data":
        r = rows[0]
        return [
            {
                "benchmark": name,
                "what": "open 2 GiB TIFF + read a slice",
                "result": f"{r['seconds']:.3f} s, {r['peak_rss_mb']:.0f} MB peak",
                "target": r["target"],
                "met": r["met"],
            }
        ]
    if name == "accuracy":
        out = []
        for r in rows:
            out.append(
                {
                    "benchmark": name,
                    "what": f"held-out slices 24-29, {r['prediction']}",
                    "result": f"pixel error {r['pixel_error']:.4f}, Dice cell {r['dice_cell']:.4f}, "
                    f"Dice membrane {r['dice_membrane']:.4f}, Rand error "
                    f"{r['rand_error'] if r['rand_error'] is None else round(r['rand_error'], 4)}",
                    "target": "pixel error <= 0.055, Dice cell >= 0.96, <= 15 min",
                    "met": r["met"],
                }
            )
        out.append(
            {
                "benchmark": name,
                "what": "wall time (train + score)",
                "result": f"{rec['total_s'] / 60:.1f} min, {rec['steps_trained']} steps, {rec['device']}, "
                f"load {rec['load_avg_before'][0]:.1f}",
                "target": "<= 15 min",
                "met": rec["total_s"] <= rec["budget_s"] + 30,
            }
        )
        return out
    if name in ("trainer", "gpu"):
        if rec.get("skipped"):
            return [
                {
                    "benchmark": name,
                    "what": "GPU trainer vs bare loop",
                    "result": rows[0]["reason"],
                    "target": "skipped without CUDA",
                    "met": True,
                }
            ]
        r = _row(rows, "arm", "ratio")
        bare, job = rows[0]["images_per_s"], rows[1]["images_per_s"]
        th = _row(rows, "arm", "ratio job / bare in a thread")
        more = f"; job / bare loop in a thread {th['images_per_s']:.3f}" if th else ""
        return [
            {
                "benchmark": name,
                "what": "TrainingJob / bare loop images/s",
                "result": f"{r['images_per_s']:.3f} ({job:.2f} vs {bare:.2f} images/s){more}",
                "target": r["target"],
                "met": r["met"],
            }
        ]
    if name == "inference":
        tiled = [r for r in rows if "target" in r and str(r["what"]).startswith("predict_slice")]
        m = _row(rows, "what", "predict_headless")
        out = [
            {
                "benchmark": name,
                "what": f"tiled / bare forward time, {r['slices']} (overlap {rec['overlap']})",
                "result": f"{r['ratio_to_bare']:.2f}",
                "target": r["target"],
                "met": r["met"],
            }
            for r in tiled
        ]
        return out + [
            {
                "benchmark": name,
                "what": "peak RSS predicting 165x768x1024",
                "result": f"{m['peak_rss_mb']:.0f} MB (torch + model alone {m['fixed_part_mb']:.0f} MB)",
                "target": m["target"],
                "met": m["met"],
            }
        ]
    return []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=15.0, help="accuracy benchmark budget (default 15)")
    ap.add_argument("--only", nargs="*", default=None, help="run only these (data accuracy trainer inference gpu)")
    ap.add_argument(
        "--summary-only",
        action="store_true",
        help="run nothing: rebuild the summary from the results already in benchmarks/results/",
    )
    args = ap.parse_args()
    plan = [
        ("data", ["bench_data.py"]),
        ("accuracy", ["bench_accuracy.py", "--minutes", str(args.minutes)]),
        ("trainer", ["bench_trainer.py", "--rounds", "3", "--epochs", "1"]),
        ("inference", ["bench_inference.py"]),
        ("gpu", ["bench_gpu.py"]),
    ]
    if args.only:
        plan = [p for p in plan if p[0] in args.only]
    if args.summary_only:
        plan = [(name, None) for name, _ in plan]
    t_all = time.time()
    summary, times = [], {}
    for name, cmd in plan:
        if cmd is None:
            summary.extend(summarise(name, _load(name)))
            continue
        print(f"\n=== {name}: {' '.join(cmd)}  (load {os.getloadavg()[0]:.1f})", flush=True)
        t = time.time()
        proc = subprocess.run(
            [sys.executable, str(HERE / cmd[0]), *cmd[1:]], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        times[name] = time.time() - t
        table = [ln for ln in proc.stdout.splitlines() if not ln.startswith("{")]
        print("\n".join(table), flush=True)
        if proc.returncode:
            print(f"{name} failed with exit status {proc.returncode}", flush=True)
            summary.append(
                {"benchmark": name, "what": "failed", "result": f"exit {proc.returncode}", "target": "", "met": False}
            )
            continue
        summary.extend(summarise(name, _load(name)))
    total = time.time() - t_all
    if args.summary_only:  # keep the last full run's timings
        old = _load("summary") or {}
        total, times = old.get("total_s") or 0.0, old.get("seconds", {})
    print(f"\n=== summary ({total / 60:.1f} min, {machine()['cpu_count']} cores)")
    keys = ["benchmark", "what", "result", "target", "met"]
    widths = {k: max(len(k), *(len(str(r.get(k, ""))) for r in summary)) for k in keys}
    print(" | ".join(k.ljust(widths[k]) for k in keys))
    print("-+-".join("-" * widths[k] for k in keys))
    for r in summary:
        print(" | ".join(str(r.get(k, "")).ljust(widths[k]) for k in keys))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary.json").write_text(
        json.dumps({"machine": machine(), "total_s": total, "seconds": times, "rows": summary}, indent=1, default=str)
    )


if __name__ == "__main__":
    main()
