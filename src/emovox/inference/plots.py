"""The timeline plot: stacked emotion probabilities over time, with a fixed colour per emotion."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class TimelineData(Protocol):
    """What the plot reads from a timeline (:class:`emovox.inference.timeline.Timeline` has it)."""

    labels: Sequence[str]
    duration: float
    segments: list[dict[str, Any]]
    threshold: float
    vad: str
    source: str | None


#: The fixed colour of each known emotion: the one palette of the PNG plots and the web page
#: (the service sends it in ``GET /v1/model``). Importing it needs no matplotlib.
EMOTION_COLORS = {
    "neutral": "#9e9e9e",
    "calm": "#80cbc4",
    "happy": "#fbc02d",
    "sad": "#1e88e5",
    "angry": "#e53935",
    "fearful": "#8e24aa",
    "disgust": "#43a047",
    "surprised": "#fb8c00",
    "boredom": "#6d4c41",
}

#: Colours for labels outside :data:`EMOTION_COLORS`, given in label order (Tableau 10).
SPARE_COLORS = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#b07aa1",
    "#76b7b2",
    "#edc948",
    "#9c755f",
    "#ff9da7",
    "#bab0ac",
)


def label_colors(labels: Sequence[str]) -> dict[str, str]:
    """A colour per label: the fixed one of a known emotion, else the next spare colour (the
    same in every plot and on the page)."""
    out: dict[str, str] = {}
    spare = 0
    for lab in labels:
        if lab in EMOTION_COLORS:
            out[lab] = EMOTION_COLORS[lab]
        else:
            out[lab] = SPARE_COLORS[spare % len(SPARE_COLORS)]
            spare += 1
    return out


def timeline_png(tl: TimelineData, title: str | None = None) -> bytes:
    """Stacked probabilities over time above a strip of the labels (paler when uncertain)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colors = label_colors(tl.labels)
    duration = max(tl.duration, 1e-3)
    step = max(0.02, duration / 4000)
    t = np.arange(0.0, duration + step, step)
    probs = np.zeros((len(tl.labels), len(t)))
    for s in tl.segments:
        m = (t >= s["start"]) & (t < s["end"])
        for i, lab in enumerate(tl.labels):
            probs[i, m] = s["probabilities"][lab]
    fig, (ax, strip) = plt.subplots(
        2,
        1,
        figsize=(10, 3.6),
        dpi=110,
        sharex=True,
        gridspec_kw={"height_ratios": [4, 1]},
    )
    ax.stackplot(t, probs, colors=[colors[lab] for lab in tl.labels], step="post", linewidth=0)
    ax.axhline(tl.threshold, color="black", lw=0.6, ls="--")
    ax.set_ylim(0, 1)
    ax.set_xlim(0, duration)
    ax.set_ylabel("probability")
    ax.set_title(
        title
        or f"{Path(tl.source).name if tl.source else 'recording'}: emotion over time "
        f"({len(tl.segments)} speech segments, VAD {tl.vad})",
        fontsize=9,
    )
    # the label strip as an image over the same grid: no aliasing with thousands of segments
    idx = np.full(len(t), -1)
    unsure = np.zeros(len(t), bool)
    for s in tl.segments:
        m = (t >= s["start"]) & (t < s["end"])
        idx[m] = tl.labels.index(s["label"])
        unsure[m] = s["uncertain"]
    rgb = np.ones((1, len(t), 3))
    for i, lab in enumerate(tl.labels):
        rgb[0, idx == i] = matplotlib.colors.to_rgb(colors[lab])
    faded = unsure & (idx >= 0)
    rgb[0, faded] = 0.45 * rgb[0, faded] + 0.55  # uncertain: paler
    strip.imshow(rgb, aspect="auto", extent=(0, t[-1] + step, 0, 1), interpolation="antialiased")
    if len(tl.segments) <= 40:
        for s in tl.segments:
            if s["end"] - s["start"] > 0.04 * duration:
                text = s["label"] + ("?" if s["uncertain"] else "")
                strip.text((s["start"] + s["end"]) / 2, 0.5, text, ha="center", va="center",
                           fontsize=7)  # fmt: skip
    strip.set_yticks([])
    strip.set_ylabel("label", rotation=0, ha="right", va="center")
    strip.set_xlabel("time (s)")
    handles = [Patch(color=colors[lab], label=lab) for lab in tl.labels]
    handles.append(Patch(facecolor="#e6e6e6", label="paler, '?': uncertain"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
