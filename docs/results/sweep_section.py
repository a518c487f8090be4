#!/usr/bin/env python3
"""A RESULTS.md section from a sweep folder (after `host-trainer sweep --collect DIR`).

    sweep_section.py SWEEP_DIR NAME [--update RESULTS.md]

Prints the section (or replaces the text between `<!-- BEGIN NAME -->` and `<!-- END NAME -->`
in RESULTS.md): the accuracy table (float / pi-core fixed point, kept ReLUs, preset), the
per-stage allocation at 10%, the pairwise orderings the papers claim, wall times, and the cells
that are missing. Reads only `sweep.json`, `results.csv`, `missing.txt` and the cells'
`report.json`.
"""
import csv
import json
import os
import sys


def load(sweep):
    plan = json.load(open(os.path.join(sweep, "sweep.json")))
    rows = list(csv.DictReader(open(os.path.join(sweep, "results.csv"))))
    missing = [l.strip() for l in open(os.path.join(sweep, "missing.txt")) if l.strip()]
    return plan, rows, missing


def ordered(items):
    out = []
    for i in items:
        if i not in out:
            out.append(i)
    return out


def mean(v):
    return sum(v) / len(v)


def section(sweep):
    plan, rows, missing = load(sweep)
    cells = plan["cells"]
    methods = ordered(c["config"]["method"] for c in cells)
    budgets = ordered(c["budget_arg"] for c in cells)
    presets = ordered(c["config"]["preset"] for c in cells)
    # The planned schedule, not a row's epochs: SNL may end its mask phase early at the budget.
    schedule = ", ".join(
        ordered(
            f"{c['config']['recipe']['mask_epochs']} + {c['config']['recipe']['finetune_epochs']}"
            for c in cells
        )
    )
    out = []
    if rows:
        r0 = rows[0]
        out.append(
            f"Teacher test accuracy {100 * float(r0['teacher_test_acc']):.2f}%, {r0['total']} ReLUs; "
            f"preset `{'`, `'.join(presets)}`; schedule {schedule} epochs (mask phase + fine-tune) "
            f"on {r0['train_images']} training images.\n"
        )
        out.append(
            "Float test accuracy % (full test set) / pi-core fixed point % (first "
            f"{r0['fixed_images']} test images); kept ReLUs; * = cut to the budget by top-k; "
            "several seeds: mean (n).\n"
        )
    head = "| method | " + " | ".join(budgets) + " |"
    out.append(head)
    out.append("|---" * (len(budgets) + 1) + "|")
    acc = {}
    for m in methods:
        line = []
        for b in budgets:
            rs = [r for r in rows if r["method"] == m and r["budget_arg"] == b]
            if not rs:
                line.append("missing")
                continue
            t = mean([100 * float(r["test_acc"]) for r in rs])
            f = mean([100 * float(r["fixed_test_acc"]) for r in rs])
            kept = "/".join(ordered(r["kept"] for r in rs))
            star = "*" if any(r["projected"] == "true" for r in rs) else ""
            n = f" (n={len(rs)})" if len(rs) > 1 else ""
            acc[(m, b)] = t
            line.append(f"{t:.2f} / {f:.2f} ({kept}{star}){n}")
        out.append(f"| {m} | " + " | ".join(line) + " |")
    out.append("")

    # Per-stage allocation at 10% (or the first budget), from the cells' reports.
    b_alloc = "10%" if "10%" in budgets else (budgets[0] if budgets else None)
    stage_rows = []
    for c in cells:
        if c["budget_arg"] != b_alloc:
            continue
        rep = os.path.join(sweep, c["id"], "report.json")
        if not os.path.exists(rep):
            continue
        s = json.load(open(rep))
        if any(r[0] == s["method"] for r in stage_rows):
            continue
        groups = {}
        for l in s["per_layer"]:
            g = l["name"].split(".")[0]
            k, t = groups.get(g, (0, 0))
            groups[g] = (k + l["kept"], t + l["total"])
        stage_rows.append((s["method"], s["kept"], groups))
    if stage_rows:
        names = list(stage_rows[0][2].keys())
        out.append(f"Kept ReLUs per stage at {b_alloc} (share of the stage's ReLUs):\n")
        out.append("| method | " + " | ".join(names) + " |")
        out.append("|---" * (len(names) + 1) + "|")
        for m, kept, g in stage_rows:
            cells_txt = [f"{g[n][0]} ({100 * g[n][0] / max(g[n][1], 1):.1f}%)" for n in names]
            out.append(f"| {m} | " + " | ".join(cells_txt) + " |")
        out.append("")

    # The orderings the seed papers claim, per budget (float test accuracy).
    claims = []
    for b in budgets:
        parts = []
        if ("senet", b) in acc and ("snl", b) in acc:
            d = acc[("senet", b)] - acc[("snl", b)]
            parts.append(f"SENet − SNL {d:+.2f}")
        if ("streamlinet", b) in acc and ("senet", b) in acc and ("snl", b) in acc:
            d = acc[("streamlinet", b)] - max(acc[("senet", b)], acc[("snl", b)])
            parts.append(f"StreamliNet − best of (SENet, SNL) {d:+.2f}")
        if parts:
            claims.append(f"{b}: " + ", ".join(parts))
    if claims:
        out.append("Claimed orderings, measured (points of float test accuracy): " + "; ".join(claims) + ".\n")

    if rows:
        walls = [float(r["wall_s"]) for r in rows]
        if max(walls) < 120:
            lo, hi = f"{min(walls):.0f}", f"{max(walls):.0f}"
            per = f"{lo} s" if lo == hi else f"{lo}-{hi} s"
        else:
            per = f"{min(walls) / 60:.1f}-{max(walls) / 60:.1f} min"
        out.append(
            f"Wall time per run: {per}, {sum(walls) / 60:.1f} min for the {len(rows)} finished "
            "cells.\n"
        )
    if missing:
        out.append(
            f"**Missing cells ({len(missing)} of {len(cells)})**: {', '.join(missing)}. "
            "Re-run the campaign script to finish them, then this section's script.\n"
        )
    else:
        out.append(f"All {len(cells)} cells finished; none is missing.\n")
    return "\n".join(out)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sweep, name = sys.argv[1], sys.argv[2]
    text = section(sweep)
    if len(sys.argv) >= 5 and sys.argv[3] == "--update":
        path = sys.argv[4]
        doc = open(path).read()
        begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
        if begin not in doc or end not in doc:
            sys.exit(f"{path}: markers {begin} / {end} not found")
        a = doc.index(begin) + len(begin)
        b = doc.index(end)
        doc = doc[:a] + "\n" + text + "\n" + doc[b:]
        tmp = path + ".tmp"
        open(tmp, "w").write(doc)
        os.replace(tmp, path)
    else:
        print(text)


if __name__ == "__main__":
    main()
