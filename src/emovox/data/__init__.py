"""Corpora and their manifests: one loader per corpus, the emotion taxonomy."""
