"""The train CLI: a bad path or genotype is one line on stderr and exit status 2."""

import json
import subprocess
import sys

import pytest


def _run(tmp_path, *args):
    cmd = [sys.executable, "-m", "proxy_task.train", *args, f"hydra.run.dir={tmp_path}/hydra"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("arg", "message"),
    [("genotype=/no/such/genotype.json", "genotype file not found"), ("proxy_task=tiny", "missing genotype=")],
)
def test_bad_inputs_are_one_line_and_exit_2(tmp_path, arg, message):
    proc = _run(tmp_path, arg)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_invalid_genotype_json(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "nasfpn-genotype", "version": 1, "cells": [{"level": 9}]}))
    proc = _run(tmp_path, f"genotype={bad}")
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
