"""Noisy/clean speech pairs for spectral denoising (``data=denoising``)."""
