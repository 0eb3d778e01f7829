"""Bench output shared by every op: a printed table, CSV and JSON with provenance, a PNG plot."""
from __future__ import annotations

import csv
import datetime
import json
import os
import platform
import subprocess

import numpy as np


def provenance() -> dict:
    import jax
    import torch
    import triton

    sha = os.environ.get("BI_GIT_SHA", "")  # set by the caller: a copied tree's .git may lag its files
    if not sha:
        try:
            # "-dirty" when the files differ from that commit (such as a tree copied over a stale .git)
            sha = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=7"], capture_output=True,
                                 text=True, cwd=os.path.dirname(__file__)).stdout.strip()
        except OSError:
            pass
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.processor() or platform.machine()}), interpreters: NOT GPU times"
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "device": device,
            "git_sha": sha or "unknown", "torch": torch.__version__,
            "triton": triton.__version__, "jax": jax.__version__, "python": platform.python_version()}


def write(name: str, title: str, lines: dict[str, str], rows: list[dict], out_dir: str, meta: dict) -> None:
    """`lines` maps a column of `rows` (ms) to its legend label; 'limit' is the physical limit."""
    os.makedirs(out_dir, exist_ok=True)
    print_table(title, lines, rows, meta)
    with open(os.path.join(out_dir, f"{name}.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump({"name": name, "title": title, "lines": lines, "rows": rows, "meta": meta}, f, indent=1)
    plot(os.path.join(out_dir, f"{name}.json"))


def print_table(title: str, lines: dict[str, str], rows: list[dict], meta: dict) -> None:
    print(f"\n{title}\n{meta['device']} | {meta['date']} | git {meta['git_sha']} | torch {meta['torch']} "
          f"triton {meta['triton']} jax {meta['jax']}")
    extra = [k for k in rows[0] if k not in lines and k != "tokens"]
    header = ["tokens", *lines, *extra]
    print(" | ".join(f"{h:>13}" for h in header))
    for row in rows:
        cells = [f"{row['tokens']:>13}"]
        for key in header[1:]:
            value = row.get(key)
            cells.append(f"{value:>13.4f}" if isinstance(value, float) else f"{str(value):>13}")
        print(" | ".join(cells))
    print("(times in ms; " + "; ".join(f"{k} = {v}" for k, v in lines.items()) + ")")


def markdown(json_path: str) -> str:
    """The table of a results file as Markdown (for the README and issue notes)."""
    with open(json_path) as f:
        data = json.load(f)
    rows, meta = data["rows"], data["meta"]
    keys = [k for k in rows[0] if k != "tokens"]
    lines = [f"{data['title']} — {meta['device']}, {meta['date'][:10]}, git {meta['git_sha']}, "
             f"copy bandwidth {meta.get('copy_GBps', 0):.0f} GB/s; times in ms",
             "", "| tokens | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for row in rows:
        cells = [f"{row[k]:.4f}" if isinstance(row.get(k), float) else str(row.get(k)) for k in keys]
        lines.append(f"| {row['tokens']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(json_path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib is missing: no PNG; run `python -m bench plot {json_path}` where it is installed")
        return
    with open(json_path) as f:
        data = json.load(f)
    rows = data["rows"]
    tokens = [r["tokens"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 5))
    for key, label in data["lines"].items():
        ys = [r.get(key, np.nan) for r in rows]
        style = dict(color="gray", linestyle="--") if key == "limit" else dict(marker="o")
        ax.plot(tokens, ys, label=label, **style)
    ax.set_xscale("log", base=2)
    ax.set_xticks(tokens, [str(t) for t in tokens])
    ax.set_xlabel("# Tokens")
    ax.set_ylabel("Execution Time (ms)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{data['title']}\n{data['meta']['device']}, {data['meta']['date'][:10]}", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(json_path[:-len(".json")] + ".png", dpi=120)
    plt.close(fig)
