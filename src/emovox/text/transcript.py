"""An emotion-annotated transcript: one cue per speech segment (times, emotion, text), written
as JSON, CSV, SubRip (``.srt``), WebVTT (``.vtt``) and a self-contained HTML page (the timeline
plot above the text, coloured by emotion with the plot's colours)."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Cue", "Transcript", "srt_time", "vtt_time", "write_transcript"]


def _hms(seconds: float) -> tuple[int, int, int, int]:
    ms = max(0, round(seconds * 1000))
    return ms // 3_600_000, ms // 60_000 % 60, ms // 1000 % 60, ms % 1000


def srt_time(seconds: float) -> str:
    """``62.345`` → ``"00:01:02,345"`` (SubRip)."""
    return "{:02d}:{:02d}:{:02d},{:03d}".format(*_hms(seconds))


def vtt_time(seconds: float) -> str:
    """``62.345`` → ``"00:01:02.345"`` (WebVTT)."""
    return "{:02d}:{:02d}:{:02d}.{:03d}".format(*_hms(seconds))


def _one_line(text: str) -> str:
    """Text safe inside a subtitle cue: one line (a blank line would end the cue), no ``-->``."""
    return " ".join(text.split()).replace("-->", "->")


def _css_class(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", label)


@dataclass
class Cue:
    """One speech segment: its times (seconds), emotion and text."""

    start: float
    end: float
    label: str
    probabilities: dict[str, float]
    uncertain: bool = False
    text: str = ""

    def tag(self) -> str:
        """The emotion as subtitles show it: ``[angry]``, ``[angry?]`` when uncertain."""
        return f"[{self.label}{'?' if self.uncertain else ''}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "label": self.label,
            "probabilities": self.probabilities,
            "uncertain": self.uncertain,
            "text": self.text,
        }


@dataclass
class Transcript:
    """What was said and how: the cues of one recording and how to write them."""

    cues: list[Cue]
    labels: tuple[str, ...]
    duration: float
    source: str | None = None
    warning: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ building

    @classmethod
    def from_segments(
        cls,
        segments: Sequence[dict[str, Any]],
        labels: Sequence[str],
        duration: float,
        *,
        source: str | None = None,
        warning: str | None = None,
    ) -> Transcript:
        """From timeline segments (``start``, ``end``, ``label``, ``probabilities``,
        ``uncertain``, ``text``)."""
        cues = [
            Cue(
                float(s["start"]),
                float(s["end"]),
                str(s["label"]),
                {lab: float(s["probabilities"][lab]) for lab in labels},
                bool(s.get("uncertain", False)),
                str(s.get("text") or ""),
            )
            for s in segments
        ]
        return cls(cues, tuple(labels), float(duration), source, warning)

    @classmethod
    def from_prediction(cls, p: Any, labels: Sequence[str]) -> Transcript:
        """From a transcribed :class:`emovox.inference.recognizer.Prediction`: its timeline
        segments, or for a short clip one cue over the whole clip."""
        segments = p.segments
        if segments is None:
            segments = [
                {
                    "start": 0.0,
                    "end": round(p.duration or 0.0, 3),
                    "label": p.label,
                    "probabilities": p.probabilities,
                    "uncertain": p.uncertain,
                    "text": p.text or "",
                }
            ]
        return cls.from_segments(
            segments, labels, p.duration or 0.0, source=p.path, warning=p.text_warning
        )

    @property
    def text(self) -> str:
        """All the words, in order."""
        return " ".join(c.text for c in self.cues if c.text)

    @property
    def segments(self) -> list[dict[str, Any]]:
        """The cues as timeline segments (what :func:`emovox.inference.plots.timeline_png`
        reads)."""
        return [c.to_dict() for c in self.cues]

    # ------------------------------------------------------------------ formats

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "duration": round(self.duration, 3),
            "labels": list(self.labels),
            "warning": self.warning,
            **self.meta,
            "text": self.text,
            "cues": self.segments,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def to_csv(self) -> str:
        """One row per cue: start, end, label, uncertain, text, then each probability."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["start", "end", "label", "uncertain", "text", *self.labels])
        for c in self.cues:
            w.writerow(
                [c.start, c.end, c.label, int(c.uncertain), c.text]
                + [c.probabilities[lab] for lab in self.labels]
            )
        return buf.getvalue()

    @classmethod
    def from_csv(cls, text: str, *, source: str | None = None) -> Transcript:
        """Read back :meth:`to_csv` (the duration is the last cue's end)."""
        rows = list(csv.reader(io.StringIO(text)))
        if not rows or rows[0][:5] != ["start", "end", "label", "uncertain", "text"]:
            raise ValueError(
                f"{source or '<csv>'}: not a transcript CSV "
                "(header must start with start,end,label,uncertain,text)"
            )
        labels = tuple(rows[0][5:])
        cues = []
        for n, r in enumerate(rows[1:], start=2):
            if len(r) != len(rows[0]):
                raise ValueError(f"{source or '<csv>'}: line {n} has {len(r)} fields")
            probs = {lab: float(v) for lab, v in zip(labels, r[5:], strict=True)}
            cues.append(Cue(float(r[0]), float(r[1]), r[2], probs, r[3] == "1", r[4]))
        return cls(cues, labels, max((c.end for c in cues), default=0.0), source)

    def to_srt(self) -> str:
        """SubRip: one numbered cue per segment with words, ``[emotion] text``."""
        blocks = []
        for i, c in enumerate((c for c in self.cues if c.text), start=1):
            blocks.append(
                f"{i}\n{srt_time(c.start)} --> {srt_time(c.end)}\n{c.tag()} {_one_line(c.text)}\n"
            )
        return "\n".join(blocks)

    def to_vtt(self) -> str:
        """WebVTT: a STYLE block colours each emotion's cues (``<c.angry>``), and the text
        starts with ``[emotion]`` for players that ignore styles."""
        from emovox.inference.plots import label_colors

        colors = label_colors(self.labels)
        style = "\n".join(
            f"::cue(.{_css_class(lab)}) {{ color: {colors[lab]}; }}" for lab in self.labels
        )
        out = ["WEBVTT", "", "STYLE", style, ""]
        for i, c in enumerate((c for c in self.cues if c.text), start=1):
            body = html.escape(f"{c.tag()} {_one_line(c.text)}", quote=False)
            out += [
                str(i),
                f"{vtt_time(c.start)} --> {vtt_time(c.end)}",
                f"<c.{_css_class(c.label)}>{body}</c>",
                "",
            ]
        return "\n".join(out)

    def to_html(self, png: bytes | None = None, title: str | None = None) -> str:
        """A readable page: the timeline ``png`` (when given) above the text, each cue coloured
        by its emotion (uncertain ones paler), with its time and emotion on hover."""
        from emovox.inference.plots import label_colors

        colors = label_colors(self.labels)
        title = title or (Path(self.source).name if self.source else "transcript")
        legend = " ".join(
            f'<span class="badge" style="background:{colors[lab]}">{html.escape(lab)}</span>'
            for lab in self.labels
        )
        rows = []
        for c in self.cues:
            color = colors.get(c.label, "#777777")
            top = c.probabilities.get(c.label, 0.0)
            hover = f"{c.label} {top:.2f}{' (uncertain)' if c.uncertain else ''}"
            words = html.escape(c.text) if c.text else '<span class="none">(no words)</span>'
            rows.append(
                f'<p class="cue{" uncertain" if c.uncertain else ""}" '
                f'style="border-color:{color}" title="{html.escape(hover)}">'
                f'<span class="time">{vtt_time(c.start)}</span>'
                f'<span class="badge" style="background:{color}">'
                f"{html.escape(c.label)}{'?' if c.uncertain else ''}</span> "
                f'<span class="text" style="color:{_darker(color)}">{words}</span></p>'
            )
        img = ""
        if png:
            data = base64.b64encode(png).decode("ascii")
            img = f'<img src="data:image/png;base64,{data}" alt="emotion over time">'
        warning = f'<p class="warning">{html.escape(self.warning)}</p>' if self.warning else ""
        return _PAGE.format(
            title=html.escape(title),
            img=img,
            legend=legend,
            warning=warning,
            cues="\n".join(rows),
            duration=f"{self.duration:.1f}",
        )

    def write(
        self, folder: str | Path, stem: str = "transcript", png: bytes | None = None
    ) -> dict[str, Path]:
        """``<stem>.json``, ``.csv``, ``.srt``, ``.vtt`` and ``.html`` (with ``png`` above the
        text) in ``folder`` (atomic writes)."""
        from emovox.io import atomic_write_text

        folder = Path(folder)
        texts = {
            "json": self.to_json(),
            "csv": self.to_csv(),
            "srt": self.to_srt(),
            "vtt": self.to_vtt(),
            "html": self.to_html(png),
        }
        return {k: atomic_write_text(folder / f"{stem}.{k}", v) for k, v in texts.items()}


def _darker(hex_color: str, f: float = 0.7) -> str:
    """``hex_color`` darkened (text in the plot colours stays readable on white)."""
    rgb = [int(hex_color.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4)]
    return "#" + "".join(f"{round(v * f):02x}" for v in rgb)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — emotion-annotated transcript</title>
<style>
body {{ font: 17px/1.55 system-ui, sans-serif; max-width: 58rem; margin: 2rem auto;
        padding: 0 1rem; color: #222; }}
img {{ width: 100%; height: auto; }}
.cue {{ border-left: 6px solid; padding: .15rem .7rem; margin: .45rem 0; }}
.cue.uncertain {{ opacity: .6; }}
.time {{ color: #777; font: 13px monospace; margin-right: .6rem; }}
.badge {{ color: #fff; border-radius: .3rem; padding: 0 .4rem; font-size: 13px; }}
.none {{ color: #999; font-style: italic; }}
.warning {{ background: #fff3cd; padding: .5rem .8rem; }}
</style></head>
<body>
<h1>{title}</h1>
{img}
<p>{legend} · {duration} s · paler, "?": uncertain</p>
{warning}
{cues}
</body></html>
"""


def write_transcript(
    p: Any, recognizer: Any, folder: str | Path, used: set[str]
) -> dict[str, Path]:
    """Write a transcribed prediction's transcript into ``folder`` in every format, as
    ``<stem>.transcript.{json,csv,srt,vtt,html}`` (the stem unique among ``used``, see
    :func:`emovox.inference.outputs.unique_stem`); the HTML page carries the timeline plot.
    ``recognizer`` gives the labels and threshold (a :class:`~emovox.inference.Recognizer`)."""
    from emovox.inference.outputs import unique_stem
    from emovox.inference.timeline import Timeline

    t = Transcript.from_prediction(p, recognizer.labels)
    stem = unique_stem(p.path or "recording", used)
    tl = Timeline(
        tuple(recognizer.labels), float(recognizer.threshold), t.duration, t.segments,
        vad=getattr(p, "speech_gate", None) or "", source=p.path,
    )  # fmt: skip
    return t.write(folder, stem + ".transcript", png=tl.png(stem))
