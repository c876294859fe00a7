#!/usr/bin/env python3
"""The README's plot: WER against encoder size on whisper base, drawn from the table of docs/measurements.md
(itself printed by `lite-whisper bench-compression`), so that the plot and the page cannot disagree.

    python conversion/plot_measurements.py            # writes docs/wer-vs-encoder-size.png
"""

import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs"
FAMILIES = [  # (label, marker, how a row's variant names it), in legend order
    ("LiteASR thresholds, one-shot", "s", lambda v: v.startswith("threshold") and "one-shot" in v),
    ("thresholds, sequential", "D", lambda v: v.startswith("threshold") and "sequential" in v),
    ("budget (lite-whisper)", "o", lambda v: v.startswith("budget") and "heal" not in v),
    ("budget + recovery", "*", lambda v: v.startswith("budget") and "heal" in v),
]


def rows(page: Path) -> list[tuple[str, float, float]]:
    """(variant, encoder %, WER %) of the page's `| variant | encoder params | WER % | ...` table."""
    out = []
    for line in page.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"[\d.]+%", cells[1]) and re.fullmatch(r"[\d.]+", cells[2]):
            out.append((cells[0].replace("`", ""), float(cells[1][:-1]), float(cells[2])))
    return out


def main() -> int:
    table = rows(DOCS / "measurements.md")
    original = next(wer for variant, _, wer in table if variant == "original")
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    ax.axhline(original, color="grey", linestyle="--", linewidth=1, label=f"original ({original:.2f})")
    for label, marker, belongs in FAMILIES:
        points = sorted((size, wer) for variant, size, wer in table if belongs(variant))
        ax.plot(*zip(*points), marker=marker, linestyle="-" if len(points) > 1 else "", label=label, markersize=7)
    ax.set_yscale("log")
    ax.set_yticks([5, 10, 20, 50, 100], labels=["5", "10", "20", "50", "100"])
    ax.minorticks_off()
    ax.set_xlabel("encoder parameters kept (%)")
    ax.set_ylabel("WER % (log scale)")
    ax.set_title("whisper base, 96 synthesized clips, greedy decoding", fontsize=10)
    ax.invert_xaxis()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(DOCS / "wer-vs-encoder-size.png")
    print(f"wrote {DOCS / 'wer-vs-encoder-size.png'} from {len(table)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
