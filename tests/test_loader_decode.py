"""Loader decoding on the real edge-case JPEGs (CMYK, grayscale, EXIF-rotated, truncated) and the transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import DATA
from PIL import Image

from hyperds.errors import ImageLoadError
from hyperds.loaders import transforms as T
from hyperds.images.decode import decode_rgb
from hyperds.loaders.torch import FrameDataset

EDGE = DATA / "edge-cases"
BASE = "african_elephants.jpg"


def _pixels(path) -> np.ndarray:
    """Raw stored pixels as RGB, with no orientation applied: the independent reference."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32)


@pytest.fixture
def edge_ds(store):
    names = [
        BASE,
        "african_elephants_bw.jpg",
        "african_elephants_cmyk.jpg",
        "african_elephants_with_exif_orientation.jpg",
        "african_elephants_truncated_file.jpg",
        "does_not_exist.jpg",
    ]
    ds = store.create_dataset("edge", root=str(EDGE))
    ds.add_frames([{"frame_id": n.removesuffix(".jpg"), "uri": n, "annotations": [{"label": "elephant"}]} for n in names])
    return ds


def _by_id(ds, **kwargs) -> dict[str, int]:
    table = ds.to_arrow(columns=["frame_id"])
    frames = FrameDataset(ds, **kwargs)
    return frames, {fid: i for i, fid in enumerate(table.column("frame_id").to_pylist())}


def test_edge_cases_decode_upright_rgb(edge_ds):
    frames, idx = _by_id(edge_ds)
    base = _pixels(EDGE / BASE)

    image, target = frames[idx["african_elephants_cmyk"]]
    assert image.mode == "RGB" and image.size == (2048, 1536)
    assert np.abs(np.asarray(image, np.float32) - base).mean() < 5  # same photo, CMYK converted
    assert int(target) == 0

    image, _ = frames[idx["african_elephants_bw"]]
    gray = np.asarray(image, np.float32)
    assert image.mode == "RGB" and image.size == (2048, 1536)
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    assert np.abs(gray[..., 0] - base.mean(axis=2)).mean() < 10


def test_exif_rotated_image_is_turned_upright(edge_ds):
    frames, idx = _by_id(edge_ds)
    image, _ = frames[idx["african_elephants_with_exif_orientation"]]
    stored = _pixels(EDGE / "african_elephants_with_exif_orientation.jpg")
    assert stored.shape[:2] == (2048, 1536)  # stored portrait; orientation 6 means "turn 90 degrees clockwise"
    clockwise = np.rot90(stored, k=-1)
    got = np.asarray(image, np.float32)
    assert got.shape == clockwise.shape == (1536, 2048, 3)
    assert np.abs(got - clockwise).mean() < 3
    assert np.abs(got - np.rot90(stored, k=1)).mean() > 20  # the other way round is clearly wrong
    assert np.abs(got - _pixels(EDGE / BASE)).mean() < 5  # and it matches the upright original


def test_draft_decodes_smaller_but_never_below_the_request():
    data = (EDGE / "african_elephants_with_exif_orientation.jpg").read_bytes()
    asked = []

    def want(w, h):
        asked.append((w, h))
        return (300, 225)

    image = decode_rgb(data, want)
    assert asked == [(2048, 1536)]  # the request is made in displayed (upright) coordinates
    w, h = image.size
    assert 300 <= w < 600 and 225 <= h < 450 and w > h
    reference = Image.fromarray(np.rot90(_pixels(EDGE / "african_elephants_with_exif_orientation.jpg"), k=-1).astype(np.uint8))
    reference = np.asarray(reference.resize((w, h), Image.Resampling.BOX), np.float32)
    assert np.abs(np.asarray(image, np.float32) - reference).mean() < 6


def test_frame_dataset_drafts_for_a_resize(edge_ds):
    frames, idx = _by_id(edge_ds, transform=T.Compose([T.Resize(224), T.CenterCrop(224), T.ToTensor()]))
    image, _ = frames[idx[BASE.removesuffix(".jpg")]]
    assert image.shape == (3, 224, 224)
    base = Image.open(EDGE / BASE).convert("RGB").resize((299, 224), Image.Resampling.BILINEAR)
    left = (299 - 224) // 2
    expected = torch.from_numpy(np.asarray(base.crop((left, 0, left + 224, 224)), np.float32) / 255).permute(2, 0, 1)
    assert (image - expected).abs().mean() < 0.04


@pytest.mark.parametrize("name, reason", [("african_elephants_truncated_file", "truncated"), ("does_not_exist", "no such")])
def test_unreadable_image_names_frame_and_uri(edge_ds, name, reason):
    frames, idx = _by_id(edge_ds)
    with pytest.raises(ImageLoadError) as err:
        frames.__getitems__([idx[BASE.removesuffix(".jpg")], idx[name]])
    assert err.value.frame_id == name
    assert err.value.uri == f"file://{EDGE}/{name}.jpg"
    assert name in str(err.value) and reason in str(err.value) and "on_error='skip'" in str(err.value)


def test_skip_drops_and_counts_unreadable_images(edge_ds):
    frames, idx = _by_id(edge_ds, on_error="skip", transform=T.Compose([T.Resize((32, 32)), T.ToTensor()]))
    batch = frames.__getitems__(list(range(len(frames))))
    assert len(batch) == len(frames) - 2
    assert frames.skipped == 2
    assert frames[idx["does_not_exist"]] is None and frames.skipped == 3


def test_resize_scales_boxes_and_flip_mirrors_them():
    img = Image.new("RGB", (400, 300))
    boxes = torch.tensor([[100.0, 60.0, 200.0, 180.0]])
    out, moved = T.Resize((150, 200))(img, boxes)
    assert out.size == (200, 150)
    assert torch.allclose(moved, torch.tensor([[50.0, 30.0, 100.0, 90.0]]))
    out, moved = T.Resize(150)(img, boxes)  # shorter side 150: factor 0.5 both ways
    assert out.size == (200, 150) and torch.allclose(moved, torch.tensor([[50.0, 30.0, 100.0, 90.0]]))
    flipped, mirrored = T.RandomHorizontalFlip(p=1.0)(img, boxes)
    assert torch.allclose(mirrored, torch.tensor([[200.0, 60.0, 300.0, 180.0]]))
    cropped, shifted = T.CenterCrop(200)(img, boxes)  # left 100, top 50
    assert cropped.size == (200, 200) and torch.allclose(shifted, torch.tensor([[0.0, 10.0, 100.0, 130.0]]))
    with pytest.raises(TypeError):
        T.RandomResizedCrop(64)(img, boxes)


def test_random_transforms_follow_their_generator():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8))

    def run(seed):
        g = torch.Generator().manual_seed(seed)
        t = T.Compose([T.RandomResizedCrop(32, generator=g), T.RandomHorizontalFlip(generator=g), T.ToTensor()])
        return torch.stack([t(img) for _ in range(4)])

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))
    assert run(1).shape == (4, 3, 32, 32)
    normalized = T.Normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])(torch.full((3, 2, 2), 0.75))
    assert torch.allclose(normalized, torch.ones(3, 2, 2))


def test_to_tensor_float_and_uint8():
    pixels = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    img = Image.fromarray(pixels)
    raw = T.ToTensor(torch.uint8)(img)
    assert raw.dtype == torch.uint8 and torch.equal(raw, torch.from_numpy(pixels).permute(2, 0, 1))
    scaled = T.ToTensor()(img.convert("L"))  # grayscale comes out as three equal channels
    assert scaled.shape == (3, 5, 7) and scaled.dtype == torch.float32
    assert torch.allclose(scaled[0], torch.from_numpy(np.asarray(img.convert("L"), np.float32) / 255))


def test_crop_of_a_large_jpeg_decodes_at_reduced_scale_but_large_enough(store):
    """A 400x300-pixel box of a 2048x1536 JPEG, wanted at 32x32: decoded smaller, never below 32x32."""
    box = (600, 500, 1000, 800)  # pixel x0, y0, x1, y1 on the upright image
    ds = store.create_dataset("bigcrop", root=str(EDGE))
    bbox = [box[0] / 2048, box[1] / 1536, (box[2] - box[0]) / 2048, (box[3] - box[1]) / 1536]
    ds.add_frames([{"frame_id": "e", "uri": BASE, "annotations": [{"label": "elephant", "bbox": bbox}]}])
    seen = []

    class Record:
        def draft_size(self, w, h):
            return (32, 32)

        def __call__(self, img):
            seen.append(img.size)
            return T.Compose([T.Resize((32, 32)), T.ToTensor()])(img)

    frames = FrameDataset(ds, unit="crop", transform=Record())
    crop, _ = frames[0]
    (w, h), = seen
    assert 32 <= w < 400 and 32 <= h < 300  # drafted (1/8 scale gives 50x38), still enough for 32x32
    full = Image.open(EDGE / BASE).convert("RGB").crop(box).resize((32, 32), Image.Resampling.BOX)
    expected = torch.from_numpy(np.asarray(full, np.float32) / 255).permute(2, 0, 1)
    assert (crop - expected).abs().mean() < 0.05


@pytest.mark.parametrize("size, crop", [(224, 224), ((300, 200), (180, 150)), (100, None), (2000, 1000)])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_resize_crop_to_tensor_runs_fused_and_matches_the_separate_steps(size, crop, dtype):
    img = decode_rgb((DATA / "megadetector" / "ena24_7904.jpg").read_bytes(), lambda w, h: (w // 3, h // 3))
    steps = [T.Resize(size), *([T.CenterCrop(crop)] if crop else []), T.ToTensor(dtype)]
    composed = T.Compose(steps)
    assert [type(s).__name__ for s in composed._steps] == ["_ResizeToTensor"]
    boxes = torch.tensor([[10.0, 20.0, 200.0, 150.0], [0.0, 0.0, img.width, img.height]])
    fused, fused_boxes = composed(img, boxes)
    separate, separate_boxes = img, boxes
    for step in steps:
        separate, separate_boxes = step(separate, separate_boxes)
    assert fused.shape == separate.shape and fused.dtype == dtype and fused.is_contiguous()
    levels = (fused.double() - separate.double()).abs() * (1 if dtype == torch.uint8 else 255)
    assert levels.max() <= 2 + 1e-6 and (levels > 1e-6).double().mean() < 0.05
    assert torch.allclose(fused_boxes, separate_boxes, atol=1e-3)
    assert torch.equal(composed(img), fused)  # without boxes: the same image


def test_unfused_compositions_keep_pillows_exact_pixels():
    img = Image.fromarray(np.random.default_rng(2).integers(0, 256, (60, 80, 3), dtype=np.uint8))
    nearest = T.Compose([T.Resize(30, Image.Resampling.NEAREST), T.ToTensor(torch.uint8)])
    assert [type(s).__name__ for s in nearest._steps] == ["Resize", "ToTensor"]
    expected = torch.from_numpy(np.asarray(img.resize((40, 30), Image.Resampling.NEAREST))).permute(2, 0, 1)
    assert torch.equal(nearest(img), expected)
    padded = T.Compose([T.Resize(30), T.CenterCrop(50), T.ToTensor(torch.uint8)])  # crop larger: black border
    out = padded(img)
    assert out.shape == (3, 50, 50) and out[:, :10].sum() == 0 and out[:, 10:40, 5:45].sum() > 0
    same, boxes = padded(img, torch.tensor([[0.0, 0.0, 80.0, 60.0]]))  # resized to 40x30, shifted by (5, 10)
    assert torch.equal(same, out) and torch.allclose(boxes, torch.tensor([[5.0, 10.0, 45.0, 40.0]]))
