"""Shared by every corpus: audio I/O, the clip cache, the split data module base and the training-only
waveform augmentations."""
