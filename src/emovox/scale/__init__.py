"""Scaling out: batch inference and embeddings on Ray (:mod:`emovox.scale.ray_engine`, needs
``pip install 'emovox[ray]'``) and multi-GPU training with DistributedDataParallel
(:mod:`emovox.scale.ddp`, run with ``torchrun``). Nothing here is imported by ``import emovox``.
"""
