"""Spectral denoising beyond the task: classical baselines, speech-quality scores, enhancing files."""
