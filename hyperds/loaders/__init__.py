"""Loaders: a view's frames streamed into training (PyTorch datasets, fetching, decoding, transforms)."""
