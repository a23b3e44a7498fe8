"""Whisper's audio encoder in plain torch, and Whisper's own log-mel front end.

The architecture follows OpenAI's published Whisper (MIT licence, see ``LICENSE-whisper.txt``):

* a convolutional stem: ``conv1`` (kernel 3, padding 1) -> GELU -> ``conv2`` (kernel 3,
  stride 2, padding 1) -> GELU, halving the frame rate from 100 Hz to 50 Hz;
* a sinusoidal positional embedding (``sinusoids``), sliced to the actual number of frames so
  clips of any length up to ``n_ctx`` frames (30 s) run without padding to 30 s;
* ``n_layer`` pre-norm residual blocks: LayerNorm -> multi-head self-attention (query, key
  without bias, value, out) -> residual; LayerNorm -> MLP (4x, GELU) -> residual;
* a final LayerNorm ``ln_post``.

Parameter names mirror OpenAI's checkpoint with the ``encoder.`` prefix removed, so an
``openai-whisper`` state dict loads after stripping that prefix (see :mod:`.checkpoints`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emovox.encoders.mel import (  # noqa: F401 - re-exported
    FRAMES_PER_SECOND,
    HOP_LENGTH,
    N_FFT,
    N_MELS,
    SAMPLE_RATE,
    TOKENS_PER_SECOND,
    log_mel_spectrogram,
    mel_filters,
)

#: Encoder weights by :class:`WhisperEncoder` parameter name.
StateDict = dict[str, Tensor]


@dataclass(frozen=True)
class WhisperDims:
    """Hyper-parameters of a Whisper audio encoder."""

    n_mels: int = N_MELS
    n_ctx: int = 1500
    n_state: int = 384
    n_head: int = 6
    n_layer: int = 4

    def to_dict(self) -> dict[str, int]:
        """The dims as a plain JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WhisperDims:
        """Build from a dict with our keys (extra keys are ignored)."""
        return cls(**{k: int(d[k]) for k in ("n_mels", "n_ctx", "n_state", "n_head", "n_layer")})


#: Encoder configurations of the published checkpoints (the ``.en`` variants share them).
WHISPER_CONFIGS: dict[str, WhisperDims] = {
    "tiny": WhisperDims(n_state=384, n_head=6, n_layer=4),
    "tiny.en": WhisperDims(n_state=384, n_head=6, n_layer=4),
    "base": WhisperDims(n_state=512, n_head=8, n_layer=6),
    "base.en": WhisperDims(n_state=512, n_head=8, n_layer=6),
    "small": WhisperDims(n_state=768, n_head=12, n_layer=12),
    "small.en": WhisperDims(n_state=768, n_head=12, n_layer=12),
    "medium": WhisperDims(n_state=1024, n_head=16, n_layer=24),
    "medium.en": WhisperDims(n_state=1024, n_head=16, n_layer=24),
    "large-v2": WhisperDims(n_state=1280, n_head=20, n_layer=32),
    "large-v3": WhisperDims(n_mels=128, n_state=1280, n_head=20, n_layer=32),
}


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> Tensor:
    """Whisper's sinusoidal positional embedding: ``(length, channels)``, sin half then cos."""
    if channels % 2 != 0:
        raise ValueError(f"channels must be even, got {channels}")
    log_timescale_increment = math.log(max_timescale) / (channels // 2 - 1)
    inv_timescales = torch.exp(-log_timescale_increment * torch.arange(channels // 2))
    scaled_time = torch.arange(length)[:, None] * inv_timescales[None, :]
    return torch.cat([torch.sin(scaled_time), torch.cos(scaled_time)], dim=1).float()


class MultiHeadAttention(nn.Module):
    """Self-attention with separate q/k/v/out projections; the key has no bias (as Whisper)."""

    def __init__(self, n_state: int, n_head: int) -> None:
        super().__init__()
        if n_state % n_head != 0:
            raise ValueError(f"n_state {n_state} is not divisible by n_head {n_head}")
        self.n_head = n_head
        self.query = nn.Linear(n_state, n_state)
        self.key = nn.Linear(n_state, n_state, bias=False)
        self.value = nn.Linear(n_state, n_state)
        self.out = nn.Linear(n_state, n_state)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x``: (B, T, D); ``mask``: optional bool (B, 1, 1, T), True where keys are valid."""
        b, t, d = x.shape
        h = self.n_head

        def heads(y: Tensor) -> Tensor:
            return y.view(b, t, h, d // h).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class ResidualAttentionBlock(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, n_state: int, n_head: int) -> None:
        super().__init__()
        self.attn_ln = nn.LayerNorm(n_state)
        self.attn = MultiHeadAttention(n_state, n_head)
        self.mlp_ln = nn.LayerNorm(n_state)
        self.mlp = nn.Sequential(
            nn.Linear(n_state, 4 * n_state), nn.GELU(), nn.Linear(4 * n_state, n_state)
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Apply the block to ``x`` (B, T, D)."""
        x = x + self.attn(self.attn_ln(x), mask)
        return x + self.mlp(self.mlp_ln(x))


class WhisperEncoder(nn.Module):
    """Whisper's audio encoder: log-mel (B, n_mels, T) -> hidden states (B, ceil(T/2), n_state).

    Inputs need not be padded to 30 s: the positional embedding is sliced to the number of
    frames. Inputs longer than ``n_ctx`` encoder frames (30 s) raise ``ValueError``; chunk them.
    """

    def __init__(
        self,
        n_mels: int = N_MELS,
        n_ctx: int = 1500,
        n_state: int = 384,
        n_head: int = 6,
        n_layer: int = 4,
    ) -> None:
        super().__init__()
        self.dims = WhisperDims(n_mels, n_ctx, n_state, n_head, n_layer)
        self.conv1 = nn.Conv1d(n_mels, n_state, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(n_state, n_state, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", sinusoids(n_ctx, n_state))
        self.blocks = nn.ModuleList(
            [ResidualAttentionBlock(n_state, n_head) for _ in range(n_layer)]
        )
        self.ln_post = nn.LayerNorm(n_state)

    @classmethod
    def from_dims(cls, dims: WhisperDims) -> WhisperEncoder:
        """Build a randomly initialised encoder of the given dims."""
        return cls(**dims.to_dict())

    @classmethod
    def from_name(cls, name: str) -> WhisperEncoder:
        """Randomly initialised encoder shaped like a published model (``tiny.en``, ``base``...)."""
        try:
            return cls.from_dims(WHISPER_CONFIGS[name])
        except KeyError:
            raise ValueError(
                f"unknown Whisper config {name!r}; known: {', '.join(WHISPER_CONFIGS)}"
            ) from None

    @property
    def n_state(self) -> int:
        """Width of the hidden states."""
        return self.dims.n_state

    @property
    def max_frames(self) -> int:
        """Longest accepted input in mel frames (``2 * n_ctx``: 3000 frames = 30 s)."""
        return 2 * self.dims.n_ctx

    @staticmethod
    def output_lengths(mel_lengths: Tensor) -> Tensor:
        """Encoder frames produced from ``mel_lengths`` mel frames: ``ceil(L / 2)``."""
        return torch.div(mel_lengths + 1, 2, rounding_mode="floor")

    def forward(
        self,
        mel: Tensor,
        return_layers: bool = False,
        lengths: Tensor | None = None,
        n_blocks: int | None = None,
    ) -> Tensor | list[Tensor]:
        """Encode log-mel features.

        Args:
            mel: (B, n_mels, T) or (n_mels, T) log-mel from :func:`log_mel_spectrogram`.
            return_layers: return all hidden states instead of only the last one.
            lengths: optional (B,) valid mel frames per item of a right-padded batch; padded
                frames are masked so each item's valid outputs equal those of encoding it
                alone. Outputs at padded positions are meaningless: mask them when pooling
                (valid encoder frames: :meth:`output_lengths`).
            n_blocks: run only the first ``n_blocks`` blocks (``ln_post`` only when all run);
                a model that reads early layers need not pay for the later ones.

        Returns:
            The final hidden state (B, ceil(T/2), n_state) after ``ln_post``; or, with
            ``return_layers``, a list of ``n_layer + 1`` tensors of that shape: the conv stem
            output (+ positions), then each block's output, the last one after ``ln_post``
            (Hugging Face's ``hidden_states`` convention, so ``[-1]`` equals the default output).
        """
        if mel.dim() == 2:
            mel = mel.unsqueeze(0)
        if mel.dim() != 3 or mel.shape[1] != self.dims.n_mels:
            raise ValueError(
                f"expected mel of shape (B, {self.dims.n_mels}, T), got {tuple(mel.shape)}"
            )
        n_frames = mel.shape[-1]
        n_out = (n_frames + 1) // 2
        if n_out > self.dims.n_ctx:
            raise ValueError(
                f"input has {n_frames} mel frames; the encoder accepts at most {self.max_frames} "
                f"({self.max_frames / FRAMES_PER_SECOND:.0f} s): split longer audio into chunks"
            )
        x = F.gelu(self.conv1(mel))
        mask = None
        if lengths is not None:
            lengths = lengths.to(mel.device)
            time = torch.arange(n_frames, device=mel.device)
            x = x * (time[None, :] < lengths[:, None]).unsqueeze(1).to(x.dtype)
            out_time = torch.arange(n_out, device=mel.device)
            valid = out_time[None, :] < self.output_lengths(lengths)[:, None]
            mask = valid[:, None, None, :]
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        x = x + self.positional_embedding[:n_out].to(x.dtype)

        layers = [x]
        n_run = len(self.blocks) if n_blocks is None else n_blocks
        for block in self.blocks[:n_run]:
            x = block(x, mask)
            layers.append(x)
        if n_run < len(self.blocks):
            return layers if return_layers else x
        x = self.ln_post(x)
        if return_layers:
            layers[-1] = x
            return layers
        return x
