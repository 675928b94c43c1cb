"""`pip install hyperds` without the torch extra: the store, importers, queries, views, commits and the
CLI work, and reaching the loaders raises MissingExtraError naming `hyperds[torch]`.

Runs in a subprocess with torch hidden from imports (a sys.meta_path blocker installed before hyperds
is imported), so the torch in the test venv cannot leak in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MD_JSON = ROOT / "examples" / "data" / "megadetector" / "expected_output_DRAFT.json"

HIDE_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _NoTorch())
for _m in [m for m in sys.modules if m == "torch" or m.startswith("torch.")]:
    del sys.modules[_m]
"""

WORKFLOW = """
import json, sys
import hyperds
from hyperds.frames.importers import import_megadetector

store = hyperds.connect(sys.argv[1])
ds = store.create_dataset("md")
report = import_megadetector(ds, sys.argv[2])
animals = ds.query("array_has(labels, 'animal')")
n_animals = animals.count()
first = animals.frame_ids()[0].as_py()
view = store.create_view("animals", "array_has(labels, 'animal')", datasets=["md"]).publish()
ann = ds.get(first)["annotations"][0]
result = ds.commit([{"op": "relabel", "frame_id": first, "ann_id": ann["ann_id"], "label": "zebra"}], author="t")
zebras = ds.query("array_has(labels, 'zebra')").frame_ids().to_pylist()
from hyperds.cli.main import main
cli_rc = main(["--store", sys.argv[1], "view", "list"])
errors = {}
for how in ("import hyperds.loaders.torch", "hyperds.FrameDataset", "from hyperds import IterableFrameDataset"):
    try:
        exec(how)
    except hyperds.MissingExtraError as exc:
        errors[how] = [str(exc), isinstance(exc, ImportError)]
print(json.dumps({
    "frames": len(ds), "imported": report.frames_inserted,
    "animals": n_animals, "view_frames": len(view), "view_pins": view.pins, "version": ds.version,
    "commit_before": result.version_before, "zebras": zebras, "first": first, "errors": errors, "cli_rc": cli_rc,
    "torch_loaded": any(m == "torch" or m.startswith("torch.") for m in sys.modules),
}))
"""


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-c", HIDE_TORCH + code, *args], capture_output=True, text=True,
                          env=env, timeout=300, check=False)


def test_store_query_view_commit_work_without_torch_and_loaders_name_the_extra(tmp_path):
    done = _run(WORKFLOW, str(tmp_path / "store"), str(MD_JSON))
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["torch_loaded"] is False and got["cli_rc"] == 0
    assert "animals" in done.stdout  # the CLI listed the view
    assert got["frames"] == got["imported"] > 0 and 0 < got["animals"] <= got["frames"]
    assert got["view_frames"] == got["animals"] and got["view_pins"] == {"md": got["commit_before"]}
    assert got["version"] > got["commit_before"] and got["zebras"] == [got["first"]]
    assert len(got["errors"]) == 3  # every way to reach the loaders raised MissingExtraError
    for message, is_import_error in got["errors"].values():
        assert "pip install 'hyperds[torch]'" in message and is_import_error



WEB_AND_POLICY = """
import io, json, sys
import hyperds
from hyperds.frames.importers import import_megadetector
from PIL import Image

store = hyperds.connect(sys.argv[1])
ds = store.create_dataset("md")
import_megadetector(ds, sys.argv[2])
view = store.create_view("all", "TRUE", datasets=["md"], empty="keep").publish()
store.set_policy(author="t", people_labels=["person"], people="omit")
result = view.export("csv", sys.argv[3], policy="public")
from hyperds.images.decode import decode_rgb
buf = io.BytesIO()
Image.new("L", (8, 6)).save(buf, format="JPEG")
decoded = decode_rgb(buf.getvalue())
from starlette.testclient import TestClient
from hyperds.web import create_app
first = view.frame_ids()[0].as_py()
with TestClient(create_app(store)) as client:
    thumb = client.get("/image/thumb", params={"dataset": "md", "frame_id": first})
print(json.dumps({
    "exported": result.frames, "view_frames": len(view), "policy": result.provenance.get("policy"),
    "decoded": [decoded.mode, decoded.size[0], decoded.size[1]], "thumb": thumb.status_code,
    "thumb_type": thumb.headers.get("content-type"),
    "torch_loaded": any(m == "torch" or m.startswith("torch.") for m in sys.modules),
}))
"""


def test_web_images_and_an_export_with_the_policy_work_without_torch(tmp_path):
    """`pip install hyperds[web]` needs no torch: the web app and its image path (images.fetch/decode, shared
    with the loaders) and an export that applies the store's policy run with torch hidden."""
    done = _run(WEB_AND_POLICY, str(tmp_path / "store"), str(MD_JSON), str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["torch_loaded"] is False
    assert 0 < got["exported"] <= got["view_frames"] and got["policy"]["name"] == "public"
    assert got["decoded"] == ["RGB", 8, 6]
    assert got["thumb"] == 200 and got["thumb_type"].startswith("image/")  # the image, or the grey SVG naming why
