"""`python -m space.describe`: summary, cost, diagram; one-line errors with exit code 2."""

import subprocess
import sys

from space.describe import main


def test_describe_paper_genotype(tmp_path, capsys):
    out = tmp_path / "paper.png"
    assert main(["nasfpn_paper", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "29,858,816 parameters" in text and "49.88 G (49,877,811,200) multiply-adds" in text
    assert "2@P5" in text and "4@P7" in text  # unconnected raw P5, P7 shown
    assert out.stat().st_size > 10_000 and out.read_bytes()[:4] == b"\x89PNG"


def test_describe_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"cells": [{"level": 4, "op": "sum", "inputs": [1, 1], "is_output": false}]}')
    for arg in [str(tmp_path / "missing.json"), str(bad)]:
        r = subprocess.run([sys.executable, "-m", "space.describe", arg], capture_output=True, text=True)
        assert r.returncode == 2
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
        assert r.stderr.startswith("error: ")
