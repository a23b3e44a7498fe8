"""Honest evaluation: configs, speaker-independent splits, experiment drivers, metrics, fusion and
reports."""
