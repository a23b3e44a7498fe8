"""Classical classifiers (the paper's Table 2: KNN, LDA, SVM, RDA) plus a per-class GMM and a
logistic regression (the head for frozen encoder embeddings), the attentive head over
encoder frames (:mod:`emovox.models.attentive`), fine-tuning of the encoder's top blocks
(:mod:`emovox.models.finetune`) and one HMM per class over hand-made frame features
(:mod:`emovox.models.hmm`); :func:`make_model` builds any of them.

Modules: :mod:`.registry` (models by name, pipelines, grids), :mod:`.rda` and :mod:`.gmm`
(generative classifiers on :mod:`.bayes`), :mod:`.sequences` and :mod:`.torch_utils` (shared
pieces of the frame-sequence heads).
"""

from __future__ import annotations

from emovox.models.gmm import GaussianMixtureClassifier
from emovox.models.rda import RDA
from emovox.models.registry import (
    CLASSICAL,
    CLF_STEP,
    FRAME_MODELS,
    SCALER_STEP,
    SEQUENCE_MODELS,
    default_param_grid,
    make_classical,
    make_model,
)

__all__ = [
    "CLASSICAL",
    "CLF_STEP",
    "FRAME_MODELS",
    "SCALER_STEP",
    "RDA",
    "GaussianMixtureClassifier",
    "SEQUENCE_MODELS",
    "default_param_grid",
    "make_classical",
    "make_model",
]
