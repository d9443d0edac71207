"""The README's "Use the architecture in your detector" example runs as written."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Use the architecture in your detector"


def readme_example() -> str:
    """The one python code block of the section (up to the next '## ' heading)."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, f"expected one python block in {SECTION!r}, found {len(blocks)}"
    return blocks[0]


@pytest.mark.slow
def test_readme_detector_example_runs(tmp_path, nasfpn_cache):
    # run from a copy of the repository root's layout: its docs/ and data/, nothing written into the repository
    (tmp_path / "docs").symlink_to(REPO / "docs")
    (tmp_path / "data").symlink_to(REPO / "data")
    script = tmp_path / "example.py"
    script.write_text(readme_example() + "\nprint([tuple(p.shape) for p in levels], sorted(detections))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "NASFPN_CACHE": nasfpn_cache}
    run = [sys.executable, str(script)]
    proc = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last == (
        "[(1, 64, 48, 80), (1, 64, 24, 40), (1, 64, 12, 20), (1, 64, 6, 10), (1, 64, 3, 5)] ['boxes', 'labels', 'scores']"
    )
    assert (tmp_path / "retinanet_nasfpn.pt").is_file() and (tmp_path / "nasfpn.pt2").is_file()
