"""Clustering of pixel and segment features: spectral, diffusion condensation, k-means with
Sinkhorn optimal transport, attention-based clustering. Import from the submodules."""
