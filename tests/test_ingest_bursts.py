"""Bursts (seq_id, frame_num) from capture times per camera: hand-checked groupings and a property test."""

from __future__ import annotations

import datetime as dt
import io

import polars as pl
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from conftest import DATA
from hyperds.frames.bursts import assign_bursts

T0 = dt.datetime(2024, 3, 1, 6, 30, tzinfo=dt.UTC)


def _jpeg(when: dt.datetime | None) -> bytes:
    exif = Image.Exif()
    if when is not None:
        exif.get_ifd(0x8769)[0x9003] = when.strftime("%Y:%m:%d %H:%M:%S")
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (120, 80, 40)).save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def _grouping(ds) -> dict[str, tuple[str | None, int | None]]:
    rows = ds.to_arrow(columns=["uri", "seq_id", "frame_num"]).to_pylist()
    return {r["uri"].rsplit("/", 1)[-1]: (r["seq_id"], r["frame_num"]) for r in rows}


def test_bursts_hand_checked_two_cameras(store, tmp_path):
    shots = {"A": [0, 10, 30, 200, 230, 1000], "B": [5, 50, 120]}
    for cam, offsets in shots.items():
        folder = tmp_path / "in" / "s1" / cam
        folder.mkdir(parents=True)
        for s in offsets:
            (folder / f"{cam}{s:04d}.jpg").write_bytes(_jpeg(T0 + dt.timedelta(seconds=s)))
    (tmp_path / "in" / "s1" / "A" / "A_noexif.jpg").write_bytes(_jpeg(None))
    ds = store.create_dataset("b")
    assert ds.ingest(str(tmp_path / "in"), layout="{site}/{camera}/{name}", progress=False).ingested == 10
    got = _grouping(ds)
    # hand-checked: a gap over 60 s starts a new burst, per camera
    a1, a2, a3 = "s1/A/20240301T063000", "s1/A/20240301T063320", "s1/A/20240301T064640"
    b1, b2 = "s1/B/20240301T063005", "s1/B/20240301T063200"
    assert got == {
        "A0000.jpg": (a1, 1), "A0010.jpg": (a1, 2), "A0030.jpg": (a1, 3),
        "A0200.jpg": (a2, 1), "A0230.jpg": (a2, 2),
        "A1000.jpg": (a3, 1),
        "B0005.jpg": (b1, 1), "B0050.jpg": (b1, 2),
        "B0120.jpg": (b2, 1),
        "A_noexif.jpg": (None, None),
    }


def test_bursts_camtrap_sequence_and_gap(store, tmp_path):
    folder = tmp_path / "in" / "mica" / "c1"
    folder.mkdir(parents=True)
    for p in (DATA / "camtrap-dp" / "media").glob("*.JPG"):
        (folder / p.name).write_bytes(p.read_bytes())
    one = store.create_dataset("one")
    one.ingest(str(tmp_path / "in"), layout="{site}/{camera}/{name}", progress=False)
    got = _grouping(one)
    assert {s for s, _ in got.values()} == {"mica/c1/20210411T204309"}
    assert [n for _, n in sorted((k, v[1]) for k, v in got.items())] == list(range(1, 11))

    # EXIF seconds of RCNX0031..40 are 09,10,10,11,12,12,13,13,14,15: a 0.5 s gap splits at every new second
    split = store.create_dataset("split")
    split.ingest(str(tmp_path / "in"), layout="{site}/{camera}/{name}", burst_gap_s=0.5, progress=False)
    by_seq: dict[str, list[str]] = {}
    for name, (seq, _) in sorted(_grouping(split).items()):
        by_seq.setdefault(seq, []).append(name[-8:-4])
    assert sorted(by_seq.values()) == [["0031"], ["0032", "0033"], ["0034"], ["0035", "0036"], ["0037", "0038"], ["0039"], ["0040"]]


def test_existing_sequences_are_kept():
    df = pl.DataFrame(
        {
            "uri": ["a", "b", "c"],
            "camera": ["c1", "c1", "c1"],
            "captured_at": pl.Series([T0, T0 + dt.timedelta(seconds=5), T0 + dt.timedelta(seconds=9)]),
            "seq_id": ["given", None, None],
            "frame_num": [7, None, None],
        }
    )
    out = assign_bursts(df, by=["camera"])
    assert out["seq_id"].to_list() == ["given", "c1/20240301T063005", "c1/20240301T063005"]
    assert out["frame_num"].to_list() == [7, 1, 2]


@given(
    st.lists(
        st.tuples(st.sampled_from(["c1", "c2", "c3"]), st.integers(0, 600)),
        min_size=1,
        max_size=40,
    ),
    st.integers(0, 120),
)
def test_bursts_match_a_plain_python_grouping(shots, gap):
    df = pl.DataFrame(
        {
            "uri": [f"u{i:03d}" for i in range(len(shots))],
            "camera": [c for c, _ in shots],
            "captured_at": pl.Series([T0 + dt.timedelta(seconds=s) for _, s in shots]),
        }
    )
    out = assign_bursts(df, by=["camera"], gap_s=gap)
    expected: dict[str, tuple[int, int]] = {}  # uri -> (burst number, frame_num)
    burst = -1
    ordered = sorted(zip(df["camera"], [s for _, s in shots], df["uri"]))
    for i, (cam, s, uri) in enumerate(ordered):
        if i == 0 or cam != ordered[i - 1][0] or s - ordered[i - 1][1] > gap:
            burst, num = burst + 1, 0
        num += 1
        expected[uri] = (burst, num)
    got_nums = dict(zip(out["uri"], out["frame_num"]))
    assert got_nums == {u: n for u, (_, n) in expected.items()}
    groups = out.group_by("seq_id").agg(pl.col("uri").sort())["uri"].to_list()
    want = {}
    for uri, (b, _) in expected.items():
        want.setdefault(b, []).append(uri)
    assert sorted(groups) == sorted(sorted(v) for v in want.values())
