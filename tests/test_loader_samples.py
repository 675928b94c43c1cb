"""What a FrameDataset sample holds: crops of exactly their box, whole bursts, class and detection targets."""

from __future__ import annotations

import io
import operator
from collections import defaultdict

import numpy as np
import pyarrow.compute as pc
import pytest
import torch
from conftest import DATA
from PIL import Image

from hyperds.errors import LoaderError, ViewError
from hyperds.loaders import transforms as T
from hyperds.loaders.torch import FrameDataset, collate_detection, collate_sequences
from hyperds.views import handle as views_module

FRAME_ID = operator.itemgetter("frame_id")


def _id_and_class(row):
    return row["frame_id"], row["classes"][0]

W, H = 400, 300
GREY, RED, GREEN = (128, 128, 128), (255, 0, 0), (0, 200, 0)
RED_BOX = (100, 60, 200, 180)  # pixel x0, y0, x1, y1
GREEN_BOX = (260, 20, 380, 100)


def _synthetic_png() -> bytes:
    """A grey picture with a red and a green rectangle, lossless so pixels can be checked exactly."""
    im = Image.new("RGB", (W, H), GREY)
    im.paste(RED, RED_BOX)
    im.paste(GREEN, GREEN_BOX)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _norm(box):
    x0, y0, x1, y1 = box
    return [x0 / W, y0 / H, (x1 - x0) / W, (y1 - y0) / H]


@pytest.fixture(params=["local", "s3"])
def boxes_ds(request, store, tmp_path):
    """One frame with a confident 'lion' box (red) and an unsure 'zebra' box (green), on disk or on S3."""
    data = _synthetic_png()
    options = None
    if request.param == "local":
        (tmp_path / "img").mkdir()
        (tmp_path / "img" / "boxes.png").write_bytes(data)
        root = str(tmp_path / "img")
    else:
        bucket, client = request.getfixturevalue("s3_bucket")
        client.put_object(Bucket=bucket, Key="img/boxes.png", Body=data)
        root = f"s3://{bucket}/img"
        options = {"endpoint_url": request.getfixturevalue("s3_server")}
    ds = store.create_dataset("boxes", root=root)
    annotations = [
        {"label": "lion", "bbox": _norm(RED_BOX), "confidence": 0.97, "source_kind": "model", "source": "md"},
        {"label": "zebra", "bbox": _norm(GREEN_BOX), "confidence": 0.5, "source_kind": "model", "source": "md"},
        {"label": "lion"},  # image-level label: no box, never a crop
    ]
    ds.add_frames([{"frame_id": "f1", "uri": "boxes.png", "annotations": annotations}])
    return ds, options


def test_crops_match_their_boxes(boxes_ds):
    ds, options = boxes_ds
    confident = FrameDataset(
        ds, unit="crop", box_filter=pc.field("confidence") >= 0.9, crop_padding=0.1, storage_options=options
    )
    assert len(confident) == 1 and confident.classes == ["lion", "zebra"]
    crop, target = confident[0]
    x0, y0, x1, y1 = RED_BOX
    pad_x, pad_y = round(0.1 * (x1 - x0)), round(0.1 * (y1 - y0))
    assert crop.size == (x1 - x0 + 2 * pad_x, y1 - y0 + 2 * pad_y)
    pixels = np.asarray(crop)
    inner = pixels[pad_y:-pad_y, pad_x:-pad_x]
    assert (inner == RED).all()
    ring = np.ones(pixels.shape[:2], bool)
    ring[pad_y:-pad_y, pad_x:-pad_x] = False
    assert (pixels[ring] == GREY).all()
    assert int(target) == confident.classes.index("lion")

    every = FrameDataset(ds, unit="crop", storage_options=options)
    assert len(every) == 2
    got = {int(t): np.asarray(c) for c, t in every.__getitems__([0, 1])}
    assert (got[every.classes.index("zebra")] == GREEN).all()
    assert got[every.classes.index("zebra")].shape == (GREEN_BOX[3] - GREEN_BOX[1], GREEN_BOX[2] - GREEN_BOX[0], 3)


def test_detection_boxes_follow_the_resize(boxes_ds):
    ds, options = boxes_ds
    frames = FrameDataset(
        ds,
        target="detection",
        transform=T.Compose([T.Resize((150, 200)), T.ToTensor()]),
        storage_options=options,
        box_filter=pc.field("confidence") >= 0.9,
    )
    image, target = frames[0]
    assert image.shape == (3, 150, 200)
    assert target["labels"].tolist() == [frames.classes.index("lion")]
    # Where the red pixels are in the output image, found independently of the boxes.
    red = (image[0] > 0.8) & (image[1] < 0.2)
    ys, xs = torch.nonzero(red, as_tuple=True)
    found = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
    assert torch.allclose(target["boxes"][0], found, atol=1.5)
    images, targets = collate_detection([frames[0], frames[0]])
    assert images.shape == (2, 3, 150, 200) and len(targets) == 2


def test_detection_over_flip_mirrors_boxes(store, tmp_path):
    (tmp_path / "boxes.png").write_bytes(_synthetic_png())
    ds = store.create_dataset("flip", root=str(tmp_path))
    ds.add_frames([{"frame_id": "f", "uri": "boxes.png", "annotations": [{"label": "lion", "bbox": _norm(RED_BOX)}]}])
    frames = FrameDataset(ds, target="detection", transform=T.Compose([T.RandomHorizontalFlip(p=1.0), T.ToTensor()]))
    image, target = frames[0]
    red = (image[0] > 0.8) & (image[1] < 0.2)
    ys, xs = torch.nonzero(red, as_tuple=True)
    found = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
    assert torch.allclose(target["boxes"][0], found)


BURSTS = {  # seq_id -> [(frame_id, frame_num, labels)], inserted out of frame order on purpose
    "seqA": [("a3", 3, ["lion"]), ("a1", 1, ["lion"]), ("a2", 2, ["zebra"])],
    "seqB": [("b2", 2, ["zebra"]), ("b1", 1, ["zebra"])],
    "seqC": [("c1", 1, ["elephant"])],
}


@pytest.fixture
def bursts_ds(store, tmp_path):
    im = Image.new("RGB", (40, 30), GREY)
    rows = []
    for seq, frames in BURSTS.items():
        for fid, num, labels in frames:
            im.save(tmp_path / f"{fid}.jpg")
            rows.append(
                {"frame_id": fid, "uri": f"{fid}.jpg", "seq_id": seq, "frame_num": num, "annotations": [{"label": x} for x in labels]}
            )
    im.save(tmp_path / "lone.jpg")
    rows.append({"frame_id": "lone", "uri": "lone.jpg", "annotations": [{"label": "lion"}]})
    ds = store.create_dataset("bursts", root=str(tmp_path))
    ds.add_frames(rows)
    return ds


def test_sequences_group_exactly_their_burst(bursts_ds, tmp_path):
    expected = {seq: [fid for fid, _, _ in sorted(frames, key=lambda f: f[1])] for seq, frames in BURSTS.items()}
    expected["lone"] = ["lone"]
    ids = FrameDataset(bursts_ds, unit="sequence", target=lambda rows: [r["frame_id"] for r in rows])
    got = [target for _, target in ids.__getitems__(list(range(len(ids))))]
    assert sorted(got) == sorted(expected.values())
    uris = FrameDataset(bursts_ds, unit="sequence", target=lambda rows: [r["uri"] for r in rows])
    for (_, fids), (_, got_uris) in zip(ids.__getitems__(list(range(len(ids)))), uris.__getitems__(list(range(len(uris))))):
        assert got_uris == [(tmp_path / f"{fid}.jpg").as_uri() for fid in fids]  # resolved against the dataset's root

    frames = FrameDataset(bursts_ds, unit="sequence", transform=T.ToTensor(), max_frames=2)
    assert frames.classes == ["elephant", "lion", "zebra"]
    labels_of = {fid: labels for burst in BURSTS.values() for fid, _, labels in burst} | {"lone": ["lion"]}
    for i in range(len(frames)):
        stack, target = frames[i]
        members = ids[i][1][:2]
        assert stack.shape == (len(members), 3, 30, 40)
        want = torch.zeros(3)
        for fid in members:
            for label in labels_of[fid]:
                want[frames.classes.index(label)] = 1
        assert torch.equal(target, want)
    padded, lengths, targets = collate_sequences([frames[i] for i in range(len(frames))])
    assert padded.shape == (4, 2, 3, 30, 40) and sorted(lengths.tolist()) == [1, 1, 2, 2] and targets.shape == (4, 3)

    as_bytes = FrameDataset(bursts_ds, unit="sequence", transform=T.ToTensor(torch.uint8), max_frames=2)
    batch = [as_bytes[i] for i in range(len(as_bytes))]
    padded, lengths, _ = collate_sequences(batch)
    assert padded.dtype == torch.uint8  # padding keeps the frames' dtype
    for (stack, _), row, n in zip(batch, padded, lengths.tolist()):
        assert torch.equal(row[:n], stack) and not row[n:].any()


def test_classification_targets(bursts_ds):
    by_id = {fid: labels for burst in BURSTS.values() for fid, _, labels in burst} | {"lone": ["lion"]}
    frames = FrameDataset(bursts_ds, classes=["zebra", "lion", "elephant"])
    frame_ids = FrameDataset(bursts_ds, target=operator.itemgetter("frame_id"))
    for i in range(len(frames)):
        assert frames.classes[int(frames[i][1])] == by_id[frame_ids[i][1]][0]

    mapped = FrameDataset(bursts_ds, label_map={"lion": "cat", "zebra": "horse", "elephant": "other"}, multilabel=True)
    assert mapped.classes == ["cat", "horse", "other"]
    for i in range(len(mapped)):
        names = {mapped.classes[int(c)] for c in torch.nonzero(mapped[i][1])}
        assert names == {{"lion": "cat", "zebra": "horse", "elephant": "other"}[x] for x in by_id[frame_ids[i][1]]}

    with pytest.raises(LoaderError, match="exactly one class"):
        FrameDataset(bursts_ds, label_map={"lion": "cat"})  # zebra and elephant frames map to nothing
    for index in (3, -1):  # outside classes' 0..2: caught when the loader is built, naming the label
        with pytest.raises(LoaderError, match="'lion' to " + str(index)):
            FrameDataset(bursts_ds, label_map={"lion": index, "zebra": 1}, classes=["a", "b", "c"], multilabel=True)
    with pytest.raises(LoaderError, match="'zebra' to -2"):
        FrameDataset(bursts_ds, label_map={"lion": 0, "zebra": -2}, multilabel=True)
    with pytest.raises(LoaderError, match="unknown target"):
        FrameDataset(bursts_ds, target="segmentation")
    with pytest.raises(LoaderError, match="lacks column"):
        FrameDataset(bursts_ds.to_arrow(columns=["frame_id", "uri"]))


def test_multilabel_frames(store, tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "x.jpg")
    ds = store.create_dataset("multi", root=str(tmp_path))
    ds.add_frames([{"frame_id": "x", "uri": "x.jpg", "annotations": [{"label": "zebra"}, {"label": "wildebeest"}]}])
    with pytest.raises(LoaderError, match="'x' \\(2 classes\\)"):
        FrameDataset(ds)
    _, hot = FrameDataset(ds, multilabel=True, classes=["lion", "wildebeest", "zebra"])[0]
    assert hot.tolist() == [0.0, 1.0, 1.0]
    grazers = FrameDataset(ds, label_map={"zebra": "grazer", "wildebeest": "grazer", "lion": "cat"})
    assert grazers.classes == ["cat", "grazer"] and int(grazers[0][1]) == 1  # two labels, one class
    ds.add_frames([{"frame_id": "empty", "uri": "x.jpg"}])
    by_id = dict(zip(ds.to_arrow(columns=["frame_id"]).column("frame_id").to_pylist(), [0, 1]))
    frames = FrameDataset(ds, multilabel=True)
    assert frames.classes == ["wildebeest", "zebra"]
    assert frames[by_id["empty"]][1].tolist() == [0.0, 0.0] and frames[by_id["x"]][1].tolist() == [1.0, 1.0]


def test_constructing_reads_no_image(store):
    ds = store.create_dataset("nowhere", root="/nonexistent/place")
    ds.add_frames([{"frame_id": f"f{i}", "uri": f"{i}.jpg", "annotations": [{"label": "lion"}]} for i in range(5)])
    frames = FrameDataset(ds, on_error="raise")
    assert len(frames) == 5 and frames.skipped == 0
    counts = defaultdict(int)
    for f in FrameDataset(ds, on_error="skip").__getitems__(range(5)):
        counts[f] += 1
    assert not counts


def test_view_over_local_and_s3_datasets_and_a_query(store, s3_bucket, s3_server):
    """A published view spanning a local and an S3 dataset (each with its own root), one split of it, and a query."""
    thumbs = sorted((DATA / "serengeti-thumbs").glob("*.JPG"))[:8]
    bucket, client = s3_bucket
    species = ["lion", "zebra", "wildebeest", "hyena"]
    for name, root in (("east", str(thumbs[0].parent)), ("west", f"s3://{bucket}/west")):
        ds = store.create_dataset(name, root=root)
        rows = []
        for i, path in enumerate(thumbs):
            if name == "west":
                client.put_object(Bucket=bucket, Key=f"west/{path.name}", Body=path.read_bytes())
            rows.append(
                {"frame_id": f"{name}-{i}", "uri": path.name, "site": f"{name}{i % 4}", "annotations": [{"label": species[i % 4]}]}
            )
        ds.add_frames(rows)
    view = store.create_view(
        "cats_vs_stripes",
        "labels IS NOT NULL",
        datasets=["east", "west"],
        label_map={"lion": "cat", "hyena": "cat", "zebra": "stripes"},
        split={"by": "site", "fractions": {"train": 0.5, "val": 0.5}, "seed": 1},
    ).publish(version="1.0")
    frames = FrameDataset(view, target=_id_and_class, storage_options={"endpoint_url": s3_server}, transform=T.ToTensor())
    got = dict(t for _, t in frames.__getitems__(range(len(frames))))
    expected = {  # wildebeest frames are not in the view: the label map drops their only label
        f"{name}-{i}": {"lion": "cat", "hyena": "cat", "zebra": "stripes"}[species[i % 4]]
        for name in ("east", "west")
        for i in range(len(thumbs))
        if species[i % 4] != "wildebeest"
    }
    assert got == expected
    classified = FrameDataset(view, storage_options={"endpoint_url": s3_server}, transform=T.ToTensor())
    assert classified.classes == ["cat", "stripes"]
    ids = [t[0] for _, t in frames.__getitems__(range(len(frames)))]
    for i in range(len(classified)):
        assert classified.classes[int(classified[i][1])] == expected[ids[i]]

    train = FrameDataset(view, split="train", target=FRAME_ID, storage_options={"endpoint_url": s3_server})
    val = FrameDataset(view, split="val", target=FRAME_ID, storage_options={"endpoint_url": s3_server})
    train_ids = {t for _, t in train.__getitems__(range(len(train)))}
    val_ids = {t for _, t in val.__getitems__(range(len(val)))}
    assert train_ids | val_ids == set(expected) and not train_ids & val_ids
    assert set(view.frame_ids(split="train").to_pylist()) == train_ids

    query = store.dataset("west").query("site IN ('west0', 'west1')")
    queried = FrameDataset(query, target=FRAME_ID, storage_options={"endpoint_url": s3_server})
    assert sorted(t for _, t in queried.__getitems__(range(len(queried)))) == [f"west-{i}" for i in range(8) if i % 4 < 2]


def test_record_run_when_asked(store):
    ds = store.create_dataset("runs", root="/nonexistent/place")
    ds.add_frames([{"frame_id": f"f{i}", "uri": f"{i}.jpg", "annotations": [{"label": "lion"}]} for i in range(3)])
    view = store.create_view("lions", "array_has(labels, 'lion')", datasets=["runs"]).publish("1.0")
    FrameDataset(view)  # not asked: nothing recorded
    assert store.runs(view="lions").num_rows == 0
    FrameDataset(view, record_run="train-42", run_info={"lr": 0.01})
    runs = store.runs(view="lions", version="1.0")
    assert runs["run_id"].to_pylist() == ["train-42"] and runs["digest"].to_pylist() == [view.digest]
    info = runs["info"][0].as_py()
    assert '"lr": 0.01' in info and '"samples": 3' in info
    with pytest.raises(LoaderError, match="needs a published view"):
        FrameDataset(ds, record_run="train-43")


def test_keep_view_is_resolved_once_and_numbers_classes_alike_in_every_split(store, monkeypatch):
    """unknown_labels='keep': unmapped labels are classes too, taken from the whole view (not one split),
    read from the view's `classes` column in the loader's one resolve of the view."""
    thumbs = sorted((DATA / "serengeti-thumbs").glob("*.JPG"))[:8]
    species = ["lion", "zebra", "gnu", "hyena"]
    ds = store.create_dataset("keep", root=str(thumbs[0].parent))
    ds.add_frames([{"frame_id": f"f{i}", "uri": p.name, "site": f"s{i}", "annotations": [{"label": species[i % 4]}]}
                   for i, p in enumerate(thumbs)])
    split = {"by": "site", "fractions": {"train": 0.5, "val": 0.5}, "seed": 3}
    view = store.create_view("keepers", "labels IS NOT NULL", datasets=["keep"], label_map={"lion": "cat", "hyena": "cat"},
                             unknown_labels="keep", split=split).publish("1.0")
    manifest = view.to_arrow(["frame_id", "split"])
    split_of = dict(zip(manifest["frame_id"].to_pylist(), manifest["split"].to_pylist()))
    resolves = []
    real_resolve = views_module.resolve
    monkeypatch.setattr(views_module, "resolve", lambda *a, **k: resolves.append(a) or real_resolve(*a, **k))
    mapped = {"lion": "cat", "hyena": "cat"}
    expected_classes = sorted({mapped.get(s, s) for s in species})
    for name in ("train", "val"):
        fresh = store.view("keepers", "1.0")  # nothing cached from an earlier read
        resolves.clear()
        frames = FrameDataset(fresh, split=name, transform=T.ToTensor())
        assert len(resolves) == 1 and frames.classes == expected_classes
        ids = sorted(f for f, s in split_of.items() if s == name)
        assert len(frames) == len(ids) > 0
        for i, frame_id in enumerate(ids):
            label = species[int(frame_id[1:]) % 4]
            assert frames.classes[int(frames[i][1])] == mapped.get(label, label)
    with pytest.raises(ViewError, match="has no split 'test'; its splits: train, val"):
        FrameDataset(store.view("keepers", "1.0"), split="test")
