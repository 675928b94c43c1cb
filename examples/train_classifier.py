"""Train a tiny image classifier on the sample data through a published view, then record the run.

Two real datasets (the Camtrap DP example's local heron photos, the MegaDetector sample's images),
one view of two weighted sub-queries mapping their labels to two classes, published as 1.0. The training
code only names the view: `hyperds.view("heron_vs_other", "1.0")` gives the same frames forever.
Run: python examples/train_classifier.py [--store DIR] [--epochs 5]   (CPU, well under 30 s)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, WeightedRandomSampler

import hyperds
from hyperds.frames.importers import import_camtrap_dp, import_megadetector
from hyperds import FrameDataset
from hyperds.loaders.transforms import Compose, Resize, ToTensor

DATA = Path(__file__).resolve().parent / "data"
VIEW = "heron_vs_other"


def publish_view(store: hyperds.Store) -> hyperds.View:
    """Import the two samples and publish the training view (the data team's side)."""
    import_camtrap_dp(store.create_dataset("mica"), DATA / "camtrap-dp")
    md_dir = DATA / "megadetector"
    import_megadetector(store.create_dataset("md", root=str(md_dir)), md_dir / "expected_output_DRAFT.json")
    in_repo = ", ".join(f"'{p.name}'" for p in sorted(md_dir.iterdir()) if p.suffix.lower() == ".jpg")
    draft = store.create_view(
        VIEW,
        {
            # each sub-query runs on both datasets; each matches frames of one of them
            "herons": "array_has(labels, 'Ardea') AND NOT uri LIKE 'http%'",  # the package's local photos
            "others": f"frame_id IN ({in_repo})",  # MegaDetector sample images kept in the repo
        },
        datasets=["mica", "md"],
        label_map={"Ardea": "heron", "animal": "other"},  # person / vehicle detections are dropped
        weights={"herons": 1.0, "others": 1.0},  # draw both sub-queries equally often
        message="herons vs other animals, local sample images",
    )
    return draft.publish("1.0")


def train(store: hyperds.Store, epochs: int = 5, size: int = 64) -> dict[str, float]:
    """The training side: everything comes from the published view version."""
    torch.manual_seed(0)
    view = hyperds.view(VIEW, "1.0", store=store)
    data = FrameDataset(view, transform=Compose([Resize((size, size)), ToTensor()]))
    weights = torch.tensor(view.to_arrow(["weight"]).column("weight").to_pylist())  # in manifest order
    sampler = WeightedRandomSampler(weights, num_samples=len(data), replacement=True)
    loader = DataLoader(data, batch_size=8, sampler=sampler, collate_fn=_collate)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, data.num_classes),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(epochs):
        total, n = 0.0, 0
        for images, targets in loader:
            loss = nn.functional.cross_entropy(model(images), targets)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, n = total + loss.item() * len(targets), n + len(targets)
        print(f"epoch {epoch + 1}: train loss {total / n:.3f} over {n} images")
    with torch.no_grad():
        images, targets = _collate([data[i] for i in range(len(data))])
        accuracy = float((model(images).argmax(1) == targets).float().mean())
    metrics = {"train_accuracy": accuracy, "images": len(data), "classes": data.classes}
    view.record_run(f"train-{int(time.time())}", info={"epochs": epochs, **metrics})
    return metrics


def _collate(batch: list) -> tuple[torch.Tensor, torch.Tensor]:
    images, targets = zip(*batch, strict=True) if batch else ((), ())
    return torch.stack(images), torch.as_tensor(targets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="store folder (default: a fresh temporary one)")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    store = hyperds.connect(args.store or tempfile.mkdtemp(prefix="hyperds-train-"))
    view = publish_view(store)
    print(f"published {view.name} {view.version}: {len(view)} frames, classes {view.classes}, digest {view.digest[:16]}…")
    metrics = train(store, args.epochs)
    print(f"train accuracy {metrics['train_accuracy']:.2f} on {metrics['images']} images ({metrics['classes']})")
    print(store.runs(view=VIEW).select(["run_id", "version", "digest", "frame_count"]).to_pylist())


if __name__ == "__main__":
    main()
