"""`make demo`: import the real sample data into a local store, summarise it, run one query.

The store is $HYPERDS_STORE or ./hyperds-store; the demo's datasets are recreated on every run.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # the report is the output; progress bars would interleave

import polars as pl  # noqa: E402

import hyperds  # noqa: E402
from hyperds.frames.importers import import_camtrap_dp, import_megadetector  # noqa: E402
from hyperds.frames.summary import summarize  # noqa: E402

log = logging.getLogger("hyperds.demo")
DATA = Path(__file__).resolve().parent / "data"
IMPORTS = {
    "md_sample": (import_megadetector, DATA / "megadetector" / "expected_output_DRAFT.json"),
    "camtrap_sample": (import_camtrap_dp, DATA / "camtrap-dp"),
}
QUERY = ("camtrap_sample", "any_annotation(label = 'Ardea' AND source_kind = 'model' AND confidence >= 0.85)")


def open_fresh_store() -> hyperds.Store:
    """The default ./hyperds-store belongs to the demo and is wiped; under $HYPERDS_STORE only the
    demo's own datasets are dropped, so a real store keeps everything else."""
    uri = os.environ.get("HYPERDS_STORE")
    if not uri:
        shutil.rmtree("hyperds-store", ignore_errors=True)
        uri = "hyperds-store"
    store = hyperds.connect(uri)
    for name in IMPORTS:
        if name in store.datasets():
            store.drop_dataset(name)
    return store


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    start = time.perf_counter()
    store = open_fresh_store()
    reports = []
    for name, (importer, path) in IMPORTS.items():
        log.info("importing %s into %s", path, name)
        reports.append(importer(store.create_dataset(name), path))

    with pl.Config(tbl_rows=25, tbl_cols=12, fmt_str_lengths=50, tbl_hide_dataframe_shape=True):
        print(f"hyperds demo: store {store.uri}\n")
        print("imports")
        print(
            pl.DataFrame(
                [
                    {"dataset": r.dataset, "format": r.format, "frames": r.frames_inserted,
                     "annotations": r.annotations_inserted, "boxes clamped": r.boxes_clamped,
                     "failures": r.failures, "event-level obs": r.event_observations}
                    for r in reports
                ]
            )
        )
        for name in IMPORTS:
            for title, table in summarize(store.dataset(name)).items():
                print(f"\n{name}: {title}")
                print(table)
        name, text = QUERY
        query = store.dataset(name).query(text)
        result = query.to_polars(columns=["frame_id", "captured_at", "site", "seq_id", "frame_num", "labels"])
        print(f"\nquery on {name}: {query.sql}\n{result.height} frames")
        print(result.sort("captured_at"))
    print(f"\ndone in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
