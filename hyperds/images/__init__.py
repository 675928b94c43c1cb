"""Images: fetch an image's bytes by URI (`fetch`: local, s3://, any fsspec protocol, with the store's
storage options) and decode them (`decode`: Pillow, EXIF orientation, draft sizes, any mode to RGB).

Torch-free on purpose: the training loaders, the web app's thumbnails and the policy's blurred export
copies all read images through these two modules, so `pip install hyperds[web]` needs no torch.
Internal: reach images through FrameDataset, `hyperds serve` and export.
"""

__all__: list[str] = []
