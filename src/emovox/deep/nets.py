"""The networks: a compact custom CNN, a torchvision-compatible ResNet-34 and the fast model's
strided CNN.

Both take log-mel input ``(B, C, n_mels, T)`` of any size and return logits ``(B, n_classes)``.
Every model built here remembers its architecture (``arch_name``, ``arch_kwargs``) so a trained
run can be rebuilt from ``model.json`` with :func:`build_model`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

RESNET34_URL = "https://download.pytorch.org/models/resnet34-b627a593.pth"


def _remember(model: nn.Module, name: str, kwargs: dict[str, Any]) -> None:
    model.arch_name = name
    model.arch_kwargs = dict(kwargs)


# --------------------------------------------------------------------------- custom CNN


class EmotionCNN(nn.Module):
    """Four conv blocks (conv3x3-BN-ReLU x ``convs[i]``, max-pool 2x2, channel dropout), widths
    ``width * (1, 2, 4, 8)``, then global average + max pooling, dropout and a linear head ``fc``.

    Block ``i`` drops whole feature maps (``Dropout2d``) with rate ``dropout * (i + 1) / 4``
    (cheap, unlike element dropout on the large early maps); the head uses ``dropout``.
    Pooling uses ``ceil_mode`` so any input with ``n_mels, T >= 1`` works. With the default
    ``width=32`` it has about 0.39 M parameters; it runs fastest in ``channels_last`` format.

    ``deltas=True`` stacks the input's first and second regression deltas along time (as
    :func:`emovox.features.delta` computes them, width 2) as extra input channels, computed
    inside the network so every caller feeds plain log-mel. ``pool="time"`` pools over time
    only and keeps the (pooled) frequency rows, so the head sees where in frequency a pattern
    lies (pitch and formant regions); ``pool="global"`` pools over both axes.
    """

    def __init__(
        self,
        n_classes: int,
        n_mels: int = 64,
        width: int = 32,
        dropout: float = 0.3,
        in_channels: int = 1,
        convs: Sequence[int] = (1, 1, 1, 1),
        deltas: bool = False,
        pool: str = "global",
    ):
        super().__init__()
        _remember(
            self,
            "emotion_cnn",
            dict(
                n_classes=n_classes,
                n_mels=n_mels,
                width=width,
                dropout=dropout,
                in_channels=in_channels,
                convs=list(convs),
                deltas=deltas,
                pool=pool,
            ),
        )
        if len(convs) != 4 or min(convs) < 1:
            raise ValueError(f"convs must be 4 positive counts, got {convs}")
        if pool not in ("global", "time"):
            raise ValueError(f"pool must be 'global' or 'time', got {pool!r}")
        self.n_mels = n_mels
        self.deltas = deltas
        self.pool = pool
        blocks: list[nn.Module] = []
        c_in = in_channels * (3 if deltas else 1)
        for i, k in enumerate(convs):
            c_out = width * 2**i
            layers: list[nn.Module] = []
            for j in range(k):
                layers += [
                    nn.Conv2d(c_in if j == 0 else c_out, c_out, 3, padding=1, bias=False),
                    nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True),
                ]
            layers += [nn.MaxPool2d(2, ceil_mode=True), nn.Dropout2d(dropout * (i + 1) / 4)]
            blocks.append(nn.Sequential(*layers))
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head_dropout = nn.Dropout(dropout)
        # frequency rows left after four ceil-mode 2x2 pools: ceil(n_mels / 16)
        rows = -(-n_mels // 16) if pool == "time" else 1
        self.fc = nn.Linear(2 * c_in * rows, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        if self.deltas:
            d1 = time_delta(x)
            x = torch.cat([x, d1, time_delta(d1)], dim=1)
        h = self.blocks(x)
        if self.pool == "time":
            if h.shape[2] * h.shape[1] * 2 != self.fc.in_features:
                raise ValueError(
                    f"pool='time' was built for {self.n_mels} mel bands; got input with "
                    f"{x.shape[2]}"
                )
            pooled = torch.cat([h.mean(dim=3).flatten(1), h.amax(dim=3).flatten(1)], dim=1)
        else:
            pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return self.fc(self.head_dropout(pooled))


def time_delta(x: Tensor, width: int = 2) -> Tensor:
    """Regression deltas along the last (time) axis, edge-padded: the torch twin of
    :func:`emovox.features.delta`, for ``(B, C, F, T)`` tensors."""
    T = x.shape[-1]
    pad = torch.cat(
        [x[..., :1].expand(*x.shape[:-1], width), x, x[..., -1:].expand(*x.shape[:-1], width)],
        dim=-1,
    )
    num = torch.zeros_like(x)
    for n in range(1, width + 1):
        num = num + n * (pad[..., width + n : width + n + T] - pad[..., width - n : width - n + T])
    return num / (2 * sum(n * n for n in range(1, width + 1)))


# --------------------------------------------------------------------------- ResNet-34


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """torchvision's ResNet basic block (same attribute names)."""

    expansion = 1

    def __init__(self, c_in: int, c_out: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ResNet layout: ``conv1 bn1 relu maxpool layer1..4 avgpool fc``."""

    def __init__(
        self,
        layers: Sequence[int],
        n_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(512 * BasicBlock.expansion, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():  # zero-init the last BN of each residual branch
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


def resnet34(n_classes: int, in_channels: int = 1, dropout: float = 0.0) -> ResNet:
    """Standard ResNet-34 (BasicBlock, [3, 4, 6, 3]) with torchvision's state-dict names."""
    model = ResNet([3, 4, 6, 3], n_classes, in_channels, dropout)
    kwargs = dict(n_classes=n_classes, in_channels=in_channels, dropout=dropout)
    _remember(model, "resnet34", kwargs)
    return model


# --------------------------------------------------------------------------- fast CNN


class FastCNN(nn.Module):
    """The fast model's network: stride-2 conv3x3-BN-ReLU layers (``widths``), global mean +
    max pooling, dropout and a linear head ``fc``; a few hundred thousand multiply-adds per
    frame, made to be distilled from the default model (:mod:`emovox.deep.distill`).

    ``embed_dim > 0`` adds ``proj``, a linear map of the pooled vector that training matches to
    the teacher's embedding; :meth:`forward` never uses it (it is not part of the export).
    """

    def __init__(
        self,
        n_classes: int,
        n_mels: int = 64,
        widths: Sequence[int] = (16, 32, 64, 128),
        dropout: float = 0.2,
        embed_dim: int = 0,
    ):
        super().__init__()
        _remember(
            self,
            "fast_cnn",
            dict(
                n_classes=n_classes,
                n_mels=n_mels,
                widths=list(widths),
                dropout=dropout,
                embed_dim=embed_dim,
            ),
        )
        if not widths or min(widths) < 1:
            raise ValueError(f"widths must be positive, got {widths}")
        layers: list[nn.Module] = []
        c_in = 1
        for w in widths:
            layers += [
                nn.Conv2d(c_in, w, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
            ]
            c_in = w
        self.n_mels = n_mels
        self.body = nn.Sequential(*layers)
        self.head_dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * c_in, n_classes)
        self.proj = nn.Linear(2 * c_in, embed_dim) if embed_dim > 0 else None

    def pooled(self, x: Tensor) -> Tensor:
        """``(B, 1, n_mels, T)`` log-mel → ``(B, 2 * widths[-1])`` mean and max of the last maps."""
        h = self.body(x)
        return torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.head_dropout(self.pooled(x)))


# --------------------------------------------------------------------------- registry

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "emotion_cnn": EmotionCNN,
    "resnet34": resnet34,
    "fast_cnn": FastCNN,
}


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered architecture (``"emotion_cnn"``, ``"resnet34"`` or ``"fast_cnn"``)
    by name."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name](**kwargs)


def architecture_of(model: nn.Module) -> tuple[str, dict[str, Any]]:
    """``(name, kwargs)`` that rebuild ``model`` with :func:`build_model`."""
    name = getattr(model, "arch_name", None)
    if name is None:
        raise ValueError(
            f"{type(model).__name__} was not built by emovox.deep.nets; use build_model()"
        )
    return name, dict(model.arch_kwargs)


def n_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# --------------------------------------------------------------------------- pretrained weights


def _read_state_dict(source: str | Path) -> dict[str, Tensor]:
    if str(source) == "imagenet":
        try:
            sd = torch.hub.load_state_dict_from_url(
                RESNET34_URL, map_location="cpu", progress=True, weights_only=True
            )
        except Exception as exc:  # network, proxy, certificate, disk: all mean "no weights"
            raise RuntimeError(
                f"downloading the ImageNet ResNet-34 weights from {RESNET34_URL} failed "
                f"({type(exc).__name__}: {exc}); download the file elsewhere and pass the local "
                "file path with --pretrained PATH (.pth/.pt or .safetensors)"
            ) from exc
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"pretrained weights not found: {path}")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path), device="cpu")
        elif path.suffix in (".pth", ".pt", ".bin"):
            try:
                sd = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise ValueError(
                    f"{path}: not a plain tensor state dict loadable with weights_only=True ({exc})"
                ) from exc
        else:
            raise ValueError(f"{path}: expected a .pth/.pt or .safetensors file")
    for wrapper in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(wrapper), dict):
            sd = sd[wrapper]
    if not isinstance(sd, dict):
        raise ValueError(f"{source}: expected a state dict, got {type(sd).__name__}")
    return {k.removeprefix("module."): v for k, v in sd.items() if isinstance(v, Tensor)}


def load_torchvision_weights(model: nn.Module, source: str | Path) -> dict[str, list[str]]:
    """Load a torchvision-layout state dict (``.pth``/``.pt``, ``.safetensors`` or ``"imagenet"``).

    ``conv1.weight`` is adapted from 3 RGB input channels to the model's count (summed for 1
    channel); tensors whose shape does not fit (``fc.*`` for another class count) are skipped.
    Returns ``{"loaded", "adapted", "skipped", "missing", "unexpected"}`` key lists.
    """
    sd = _read_state_dict(source)
    own = model.state_dict()
    report: dict[str, list[str]] = {
        "loaded": [],
        "adapted": [],
        "skipped": [],
        "missing": [],
        "unexpected": [],
    }
    new: dict[str, Tensor] = {}
    for key, value in sd.items():
        if key not in own:
            report["unexpected"].append(key)
            continue
        target = own[key]
        adapted = key == "conv1.weight" and value.ndim == 4 and value.shape[1] != target.shape[1]
        if adapted:  # RGB -> 1 channel: sum (a grey image gives the same response)
            c_in = target.shape[1]
            value = value.sum(dim=1, keepdim=True).repeat(1, c_in, 1, 1) / c_in
        if value.shape != target.shape:
            report["skipped"].append(key)
            continue
        new[key] = value.to(dtype=target.dtype)
        report["adapted" if adapted else "loaded"].append(key)
    report["missing"] = [k for k in own if k not in new and not k.endswith("num_batches_tracked")]
    model.load_state_dict(new, strict=False)
    return report


# --------------------------------------------------------------------------- fine-tuning helpers


def _stages(model: nn.Module) -> list[tuple[str, list[nn.Parameter]]]:
    """Parameter groups from input to output (stem, body stages, head)."""
    if all(hasattr(model, n) for n in ("conv1", "bn1", "layer1", "layer4", "fc")):
        names = [("stem", ["conv1", "bn1"])] + [(f"layer{i}", [f"layer{i}"]) for i in range(1, 5)]
    elif hasattr(model, "blocks") and hasattr(model, "fc"):
        names = [(f"blocks.{i}", [f"blocks.{i}"]) for i in range(len(model.blocks))]
    else:
        return [("all", list(model.parameters()))]
    names.append(("fc", ["fc"]))
    stages: list[tuple[str, list[nn.Parameter]]] = []
    seen: set[int] = set()
    for stage, prefixes in names:
        params = [model.get_submodule(p) for p in prefixes]
        plist = [q for m in params for q in m.parameters()]
        seen.update(id(q) for q in plist)
        stages.append((stage, plist))
    rest = [q for q in model.parameters() if id(q) not in seen]
    if rest:  # anything not in a known stage learns at the head's rate
        stages[-1][1].extend(rest)
    return stages


def param_groups_for_finetune(
    model: nn.Module, base_lr: float, decay: float = 0.3
) -> list[dict[str, Any]]:
    """Optimizer groups with layer-wise decayed learning rates: the head (``fc``) gets
    ``base_lr``, each earlier stage ``decay`` times the next (resnet: stem, layer1..4, fc)."""
    stages = _stages(model)
    n = len(stages)
    return [
        {"params": params, "lr": base_lr * decay ** (n - 1 - i), "name": name}
        for i, (name, params) in enumerate(stages)
    ]


def freeze_body(model: nn.Module, frozen: bool) -> None:
    """Freeze (or unfreeze) every parameter except the head ``fc``."""
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("fc.") or not frozen)
