"""What bytes hold, judged from their first bytes (never from a file name): an audio container,
text, some other known kind of file, or nothing recognised.

Decoders are only ever opened with a format named here, so FFmpeg never probes unknown content
(its playlist-style demuxers would fetch other files or URLs).
"""

from __future__ import annotations

#: How many leading bytes :func:`sniff` and :func:`not_audio_reason` look at.
HEAD_BYTES = 4096

#: (offset, magic bytes, name) of audio containers, to tell corrupt audio from non-audio.
AUDIO_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"RIFF", "WAV"),
    (0, b"RIFX", "WAV"),
    (0, b"RF64", "WAV"),
    (0, b"BW64", "WAV"),
    (0, b"riff\x2e\x91\xcf\x11", "W64"),
    (0, b"fLaC", "FLAC"),
    (0, b"OggS", "Ogg"),
    (0, b"FORM", "AIFF"),
    (0, b"ID3", "MP3"),
    (0, b"caff", "CAF"),
    (0, b".snd", "AU"),
    (0, b"NIST_1A", "NIST SPHERE"),
    (0, b"Creative Voice File", "VOC"),
    (0, b"#!AMR", "AMR"),
    (0, b"\x1a\x45\xdf\xa3", "WebM/Matroska"),
    (4, b"ftyp", "MP4/M4A"),
    (0, b"\x30\x26\xb2\x75", "WMA/ASF"),
)

#: Containers libsndfile does not read, with the FFmpeg demuxer PyAV opens them with.
NEEDS_FFMPEG: dict[str, str] = {
    "WebM/Matroska": "matroska",
    "MP4/M4A": "mp4",
    "WMA/ASF": "asf",
    "AMR": "amr",
    "AAC": "aac",
}

#: Common files that are not audio, to say what a file is instead.
OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x7fELF", "a program (ELF)"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x93NUMPY", "a NumPy array file (.npy): load it and pass the array with sr="),
)


def sniff(head: bytes) -> str | None:
    """The audio container named by the first bytes, or None when they look like no audio
    format (``"MP3"`` also for a bare MPEG frame header, ``"AAC"`` for ADTS)."""
    for offset, magic, name in AUDIO_SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return name
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xF6) == 0xF0:
        return "AAC"  # ADTS: sync word, layer bits 00
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06):
        return "MP3"  # an MPEG audio frame header (layer bits set)
    return None


def is_text(head: bytes) -> bool:
    """True when the first bytes read as text: UTF-8 (a character cut at the end allowed),
    no NUL byte, and almost only printable characters."""
    if not head or b"\x00" in head:
        return False
    text = head.decode("utf-8", "ignore")
    if len(text.encode("utf-8")) < len(head) - 3:
        return False  # more than one character cut at the end did not decode
    printable = sum(c.isprintable() or c in "\t\n\r\f" for c in text)
    return printable >= 0.95 * len(text)


def not_audio_reason(head: bytes, what: str = "file") -> str:
    """Why content with these first bytes is no audio, for content :func:`sniff` does not
    recognise: ``"not audio: the file holds text"``, ``"not audio: the file is a PNG image"``
    or ``"not audio: not a recognised audio format ..."`` (``what``: "file" or "content")."""
    for magic, kind in OTHER_SIGNATURES:
        if head.startswith(magic):
            return f"not audio: the {what} is {kind}"
    if is_text(head):
        return f"not audio: the {what} holds text"
    return "not audio: not a recognised audio format (the content is checked, not the file name)"
