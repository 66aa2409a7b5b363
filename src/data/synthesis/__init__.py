"""Offline speech synthesis (espeak-ng) and the generate-once helper the offline corpora share."""
