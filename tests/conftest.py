import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("EMOVOX_CORPORA", REPO.parent / "shared" / "corpora"))

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Unit tests never touch the user's feature cache."""
    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path / "cache"))


def emotional_tone(emotion_index: int, speaker: int, take: int, sr: int = 16000) -> np.ndarray:
    """A harmonic 'voice' whose pitch and loudness contour depend on the emotion: learnable."""
    rng = np.random.default_rng(1000 * emotion_index + 10 * speaker + take)
    seconds = 0.6 + 0.1 * take
    t = np.arange(int(sr * seconds)) / sr
    f0 = 110 + 60 * emotion_index + 8 * speaker + 20 * emotion_index * t
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = sum(np.sin(h * phase) / h for h in range(1, 6))
    y = y * (0.2 + 0.1 * emotion_index * np.sin(2 * np.pi * (1 + emotion_index) * t) ** 2)
    return (0.3 * y / np.max(np.abs(y)) + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def write_ravdess_tree(base: Path, repetitions: int = 1) -> Path:
    """A tiny RAVDESS-layout corpus under ``base/corpora``: 6 actors x 4 emotions x 2 statements
    x ``repetitions`` takes of synthetic audio; returns the corpora folder."""
    root = base / "corpora" / "ravdess" / "Audio_Speech_Actors_01-24"
    for actor in range(1, 7):
        d = root / f"Actor_{actor:02d}"
        d.mkdir(parents=True)
        for ei, code in enumerate(["01", "03", "04", "05"]):  # neutral happy sad angry
            for stmt in (1, 2):
                for rep in range(1, repetitions + 1):
                    name = f"03-01-{code}-01-{stmt:02d}-{rep:02d}-{actor:02d}.wav"
                    take = (stmt - 1) * repetitions + rep
                    sf.write(d / name, emotional_tone(ei, actor, take), 16000)
    return base / "corpora"


@pytest.fixture
def ravdess_tree(tmp_path) -> Path:
    """A tiny RAVDESS-layout corpus: 6 actors x 4 emotions x 2 statements, synthetic audio."""
    return write_ravdess_tree(tmp_path)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a test module's torch work on one thread (restored afterwards)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
