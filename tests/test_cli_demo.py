"""`make demo` (examples/demo.py) on a store that holds other data: it reports and replaces only its own datasets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


def test_demo_leaves_and_ignores_other_datasets(store):
    store.create_dataset("field_2024").add_frames([{"frame_id": "a", "uri": "a.jpg"}])
    env = {**os.environ, "HYPERDS_STORE": store.uri}
    proc = subprocess.run([sys.executable, str(DEMO)], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert "field_2024" not in proc.stdout
    assert "md_sample: " in proc.stdout and "camtrap_sample: " in proc.stdout
    assert sorted(store.datasets()) == ["camtrap_sample", "field_2024", "md_sample"]
    assert len(store.dataset("field_2024")) == 1
