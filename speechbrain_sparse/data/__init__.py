"""Data for the experiments: the synthetic multi-dialect corpus and manifest helpers.

``sentences`` gives the text, ``voices`` the eSpeak NG voices, ``dialects`` the
per-dialect speaker styles, ``acoustics`` the signal processing, ``synth`` the corpus
generator (``sb-sparse synth``) and ``generic_layout`` / ``manifests`` the CSV
manifests that SpeechBrain recipes read.
"""
