#!/usr/bin/env python3
"""Markdown tables for RESULTS.md from the sweeps' results.csv files (argv: csv files)."""
import csv
import sys

for path in sys.argv[1:]:
    rows = list(csv.DictReader(open(path)))
    if not rows:
        continue
    budgets = []
    for r in rows:
        if r["budget_arg"] not in budgets:
            budgets.append(r["budget_arg"])
    methods = []
    for r in rows:
        if r["method"] not in methods:
            methods.append(r["method"])
    r0 = rows[0]
    print(f"\n#### {r0['dataset']} ({r0['granularity']} masks), teacher test accuracy "
          f"{100 * float(r0['teacher_test_acc']):.2f}%, {r0['total']} ReLUs, "
          f"{r0['train_images']} training images\n")
    print("Float test accuracy % (full test set) / pi-core fixed-point % "
          f"(first {r0['fixed_images']} test images); kept ReLUs; * = projected by top-k\n")
    print("| method | " + " | ".join(f"{b} ({next(r['budget'] for r in rows if r['budget_arg'] == b)})" for b in budgets) + " |")
    print("|---" * (len(budgets) + 1) + "|")
    for m in methods:
        cells = []
        for b in budgets:
            r = next((r for r in rows if r["method"] == m and r["budget_arg"] == b), None)
            if r is None:
                cells.append("missing")
                continue
            star = "*" if r["projected"] == "true" else ""
            cells.append(f"{100 * float(r['test_acc']):.2f} / {100 * float(r['fixed_test_acc']):.2f} ({r['kept']}{star})")
        print(f"| {m} | " + " | ".join(cells) + " |")
    walls = [float(r["wall_s"]) for r in rows]
    print(f"\nWall time per run: {min(walls):.0f}-{max(walls):.0f} s, {sum(walls) / 60:.1f} min in all.")
