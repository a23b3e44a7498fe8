"""Live microphone input as 16 kHz mono chunks (needs ``sounddevice`` and PortAudio)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import numpy as np
import soxr

from emovox.audio.decode import SAMPLE_RATE


def microphone_available() -> bool:
    """True when ``sounddevice`` imports (it needs the PortAudio library)."""
    if importlib.util.find_spec("sounddevice") is None:
        return False
    try:
        import sounddevice  # noqa: F401
    except (OSError, ImportError):
        return False
    return True


def microphone_chunks(
    device: int | str | None = None, block_seconds: float = 0.1
) -> Iterator[np.ndarray]:
    """Live 16 kHz mono chunks from an input device until Ctrl-C (then it simply ends)."""
    import queue

    import sounddevice as sd

    info = sd.query_devices(device, "input")
    native = int(info["default_samplerate"]) or SAMPLE_RATE
    q: queue.Queue[np.ndarray] = queue.Queue()

    def callback(indata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        q.put(indata.mean(axis=1).astype(np.float32))

    rs = (
        soxr.ResampleStream(native, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        if native != SAMPLE_RATE
        else None
    )
    try:
        with sd.InputStream(
            samplerate=native,
            channels=1,
            dtype="float32",
            blocksize=max(1, int(block_seconds * native)),
            device=device,
            callback=callback,
        ):
            while True:
                y = q.get()
                yield rs.resample_chunk(y) if rs is not None else y
    except KeyboardInterrupt:
        return
