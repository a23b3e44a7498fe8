"""The bundle format: a ready-to-use emotion model in one folder (a frozen Whisper encoder,
pooled layer statistics and a calibrated linear head).

``model.safetensors``
    ``encoder.*`` (fp16; only the blocks the head reads) and ``head.mean``, ``head.scale``,
    ``head.weight``, ``head.bias`` (fp32); optionally ``domain.mean``, ``domain.components``,
    ``domain.scale``, ``domain.residual`` (fp32, the domain score of
    :mod:`emovox.inference.domain`); optionally ``adapted_head.mean``, ``adapted_head.scale``,
    ``adapted_head.weight``, ``adapted_head.bias`` (fp32, the head for standardised
    embeddings of :mod:`emovox.inference.adapt`; its temperature is ``adapted_temperature``).
``model.json``
    format, labels, which layers and statistics feed the head, the softmax temperature, the
    ``uncertain`` threshold, the ``out_of_domain`` threshold and score kind (``domain_threshold``,
    ``domain_method``; optional), the temperature as a function of the domain score
    (``domain_temperature``; optional, :mod:`emovox.inference.calibration`), preprocessing,
    and the model card (data, protocol, scores, limits).
``LICENSE-whisper.txt``
    the MIT notice of the encoder weights.

This module reads and writes the folder; :mod:`emovox.inference.engine` runs it
(:func:`~emovox.inference.engine.load_bundle`), :mod:`emovox.inference.backends` holds the
encoders and :mod:`emovox.inference.export` the ONNX export.

>>> cfg, encoder_weights, head = read_bundle(None)   # the packaged default model  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from emovox.audio import Preprocess
from emovox.inference.domain import DomainScore
from emovox.io import atomic_write_json

FORMAT = "emovox-bundle"
VERSION = 1
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "model.json"
LICENSE_FILE = "LICENSE-whisper.txt"
ADAPTED_PREFIX = "adapted_head."  # tensors of the optional head for adapted embeddings


class BundleError(ValueError):
    """A bundle folder that cannot be used, naming the folder and the problem."""


@dataclass
class BundleConfig:
    """Everything in ``model.json`` besides the tensors."""

    labels: list[str]
    layers: list[int]  # hidden states pooled (0 = stem, i = after block i)
    dims: dict[str, int]  # WhisperDims of the stored encoder (n_layer = blocks stored)
    stats: list[str] = field(default_factory=lambda: ["mean", "std"])
    temperature: float = 1.0
    threshold: float = 0.5
    preprocess: dict[str, Any] = field(default_factory=lambda: asdict(Preprocess()))
    card: dict[str, Any] = field(default_factory=dict)
    domain_threshold: float | None = None  # out_of_domain above it (domain.* tensors)
    domain_method: str = "residual"  # the kind of domain score (emovox.inference.domain)
    adapted_temperature: float | None = None  # of the adapted_head.* tensors, when present
    # the temperature as a function of the domain score (emovox.inference.calibration
    # .DomainTemperature as a dict); None: ``temperature`` for every input
    domain_temperature: dict[str, float] | None = None
    format: str = FORMAT
    version: int = VERSION

    @property
    def n_blocks(self) -> int:
        """Encoder blocks that must run: the highest layer the head reads."""
        return max(self.layers)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able content of ``model.json``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "model.json") -> BundleConfig:
        """Read ``model.json``'s content, checking format and version (``where`` names it in
        errors); unknown keys are ignored."""
        if d.get("format") != FORMAT:
            raise BundleError(f"{where}: not an {FORMAT} file (format = {d.get('format')!r})")
        if int(d.get("version", 0)) > VERSION:
            raise BundleError(
                f"{where}: bundle version {d['version']} is newer than this emovox reads "
                f"({VERSION}); upgrade emovox"
            )
        known = set(cls.__dataclass_fields__)
        try:
            return cls(**{k: v for k, v in d.items() if k in known})
        except TypeError as exc:
            raise BundleError(f"{where}: {exc}") from exc


def default_bundle_path() -> Path:
    """Where the packaged default model lives (``emovox/assets/default_model``)."""
    return Path(str(resources.files("emovox") / "assets" / "default_model"))


def bundle_path(path: str | Path | None) -> Path:
    """Resolve ``None`` to the default model and check the folder looks like a bundle."""
    folder = default_bundle_path() if path is None else Path(path).expanduser()
    if folder.is_file() and folder.name in (MODEL_FILE, CONFIG_FILE):
        folder = folder.parent
    if not (folder / CONFIG_FILE).is_file() or not (folder / MODEL_FILE).is_file():
        if path is None:
            raise FileNotFoundError(
                f"the default model is not in this installation ({folder}); build it with "
                "`emovox build-model` or pass a model folder"
            )
        raise FileNotFoundError(
            f"{folder}: not an emovox model folder (needs {CONFIG_FILE} and {MODEL_FILE})"
        )
    return folder


def read_bundle(
    path: str | Path | None,
) -> tuple[BundleConfig, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(config, encoder weights, head tensors)`` of a bundle folder, as float32 arrays."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    folder = bundle_path(path)
    try:
        cfg = BundleConfig.from_dict(
            json.loads((folder / CONFIG_FILE).read_text()), str(folder / CONFIG_FILE)
        )
    except json.JSONDecodeError as exc:
        raise BundleError(f"{folder / CONFIG_FILE}: not valid JSON ({exc})") from exc
    try:
        tensors = load_file(str(folder / MODEL_FILE))
    except (SafetensorError, OSError) as exc:
        raise BundleError(f"{folder / MODEL_FILE}: unreadable safetensors ({exc})") from exc
    enc = {k[8:]: v.astype(np.float32) for k, v in tensors.items() if k.startswith("encoder.")}
    head = {k[5:]: v.astype(np.float32) for k, v in tensors.items() if k.startswith("head.")}
    need = {"mean", "scale", "weight", "bias"}
    if need - set(head):
        raise BundleError(f"{folder / MODEL_FILE}: missing head tensors {sorted(need - set(head))}")
    n_feat = head["weight"].shape[1]
    if head["weight"].shape[0] != len(cfg.labels) or head["mean"].shape != (n_feat,):
        raise BundleError(f"{folder}: head shapes do not match the {len(cfg.labels)} labels")
    return cfg, enc, head


def read_domain(path: str | Path | None, cfg: BundleConfig) -> DomainScore | None:
    """The bundle's domain score (:mod:`emovox.inference.domain`), None when it has none."""
    from safetensors import SafetensorError, safe_open

    file = bundle_path(path) / MODEL_FILE
    try:
        with safe_open(str(file), framework="numpy") as f:
            tensors = {k[7:]: f.get_tensor(k) for k in f.keys() if k.startswith("domain.")}
    except (SafetensorError, OSError) as exc:
        raise BundleError(f"{file}: unreadable safetensors ({exc})") from exc
    if not tensors:
        return None
    try:
        return DomainScore.from_tensors(tensors, cfg.domain_threshold, cfg.domain_method)
    except ValueError as exc:
        raise BundleError(f"{file}: {exc}") from exc


def read_adapted(path: str | Path | None, cfg: BundleConfig) -> dict[str, np.ndarray] | None:
    """The bundle's adapted head (``mean, scale, weight, bias``; :mod:`emovox.inference.adapt`),
    None when it has none."""
    from safetensors import SafetensorError, safe_open

    file = bundle_path(path) / MODEL_FILE
    pre = ADAPTED_PREFIX
    try:
        with safe_open(str(file), framework="numpy") as f:
            head = {
                k[len(pre) :]: f.get_tensor(k).astype(np.float32)
                for k in f.keys()
                if k.startswith(pre)
            }
    except (SafetensorError, OSError) as exc:
        raise BundleError(f"{file}: unreadable safetensors ({exc})") from exc
    if not head:
        return None
    need = {"mean", "scale", "weight", "bias"}
    if need - set(head) or head["weight"].shape[0] != len(cfg.labels):
        raise BundleError(f"{file}: incomplete adapted head (needs {pre}{{{','.join(need)}}})")
    if cfg.adapted_temperature is None:
        raise BundleError(f"{file}: adapted head without adapted_temperature in {CONFIG_FILE}")
    return head


def write_bundle(
    folder: str | Path,
    cfg: BundleConfig,
    encoder_state: dict[str, Any],
    head: dict[str, np.ndarray],
    domain: DomainScore | None = None,
    adapted: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write a bundle: encoder tensors (fp16, only blocks < ``cfg.n_blocks``; ``ln_post`` only
    when the last layer is read), head (fp32), the optional domain score (fp32; its threshold
    goes to ``cfg.domain_threshold``), the optional adapted head (fp32; set
    ``cfg.adapted_temperature``), ``model.json`` and the Whisper licence."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n_layer = cfg.dims["n_layer"]
    keep: dict[str, np.ndarray] = {}
    for k, v in encoder_state.items():
        arr = v.detach().cpu().float().numpy() if hasattr(v, "detach") else np.asarray(v)
        if k == "positional_embedding":
            continue  # recomputed (standard sinusoids)
        if k.startswith("blocks.") and int(k.split(".")[1]) >= cfg.n_blocks:
            continue
        if k.startswith("ln_post.") and cfg.n_blocks < n_layer:
            continue
        keep[f"encoder.{k}"] = arr.astype(np.float16)
    for k, v in head.items():
        keep[f"head.{k}"] = np.asarray(v, dtype=np.float32)
    if domain is not None:
        keep.update({f"domain.{k}": v for k, v in domain.tensors().items()})
        cfg.domain_threshold, cfg.domain_method = domain.threshold, domain.method
    for k, v in (adapted or {}).items():
        keep[f"{ADAPTED_PREFIX}{k}"] = np.asarray(v, dtype=np.float32)
    cfg.dims = dict(cfg.dims) | {"n_layer": cfg.n_blocks}
    tmp = folder / f".{MODEL_FILE}.tmp"
    save_file(keep, str(tmp), metadata={"format": FORMAT, "version": str(VERSION)})
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # safetensors writes owner-only files
    os.replace(tmp, folder / MODEL_FILE)
    atomic_write_json(folder / CONFIG_FILE, cfg.to_dict())
    lic = Path(str(resources.files("emovox") / "encoders" / LICENSE_FILE))
    if lic.is_file():
        shutil.copyfile(lic, folder / LICENSE_FILE)
    return folder
