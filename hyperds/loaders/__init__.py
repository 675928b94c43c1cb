"""Loaders: a FrameSource's frames streamed into training (PyTorch datasets, fetching, decoding, transforms).

The torch extra (`pip install 'hyperds[torch]'`): importing this package without torch raises
MissingExtraError naming it. Public: `hyperds.loaders.torch` (FrameDataset, IterableFrameDataset, collate
functions) and `hyperds.loaders.transforms`; the other modules are internal (the loader is a sample plan,
plan.py, x a target encoder, targets.py, x an image pipeline, pipeline.py, over index arrays, index.py).
"""

from __future__ import annotations

try:
    import torch as _torch  # the name `torch` here is the submodule hyperds.loaders.torch
except ImportError as exc:
    from ..errors import MissingExtraError

    raise MissingExtraError("hyperds.loaders (FrameDataset, IterableFrameDataset)", "torch", "PyTorch") from exc
del _torch

__all__ = ["torch", "transforms"]
