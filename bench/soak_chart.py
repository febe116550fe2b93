"""The long soak as a picture: every process's resident memory over the measured window, with
the control plane's SQLite heap, from bench/results/soak.json (bench/soak.py draws it after a
run; run this to redraw). Writes docs/security/soak.png, shown in docs/security.md."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "soak.json"
CHART = ROOT / "docs" / "security" / "soak.png"


def draw(doc: dict[str, Any], path: Path = CHART) -> Path:
    """RSS (MiB) of each process against seconds into the measured window; a second panel
    holds the control plane's SQLite heap when the run recorded it."""
    sqlite = doc.get("cp_sqlite_bytes") or []
    fig, axes = plt.subplots(
        2 if sqlite else 1, 1, figsize=(9, 6 if sqlite else 3.8), sharex=True, squeeze=False
    )
    top = axes[0][0]
    for name, process in doc["processes"].items():
        fields = process["samples"]["fields"]
        at, rss = fields.index("at_s"), fields.index("rss_kib")
        rows = process["samples"]["rows"]
        label = f"{name} ({process['rss_growth']:+.2%} first vs last quarter)"
        top.plot([r[at] for r in rows], [r[rss] / 1024 for r in rows], label=label, lw=1)
    top.set_ylabel("resident memory (MiB)")
    top.set_title(
        f"soak: {doc['rate_per_s']:g} req/s, {doc['keys']} keys, "
        f"{doc['load']['sent']:,} requests, {doc['load']['failed']} failed"
    )
    top.legend(loc="center right", fontsize=8)
    top.grid(alpha=0.3)
    if sqlite:
        bottom = axes[1][0]
        first = next(iter(doc["processes"].values()))["samples"]
        at = first["fields"].index("at_s")
        times = [r[at] for r in first["rows"]][: len(sqlite)]
        bottom.plot(times, [b / 2**20 for b in sqlite[: len(times)]], color="#6a3d9a", lw=1)
        bottom.set_ylabel("control plane SQLite heap (MiB)")
        bottom.set_ylim(bottom=0)
        bottom.grid(alpha=0.3)
    axes[-1][0].set_xlabel("seconds after the warm-up")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main() -> int:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS
    print(f"wrote {draw(json.loads(source.read_text()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
