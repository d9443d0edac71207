"""Fuzz of every CLI that reads genotype files: malformed input is one line on stderr, exit 2.

Inputs are mutations of the paper genotype's JSON: truncated text, any JSON value in any
field, missing fields, out-of-range and forward input indices, duplicate output levels,
unknown ops, huge numbers, deep nesting, many identical cells, bad controller strings.
`space.describe` and `proxy_task.train` are called in process (their `main`) for speed;
a few real subprocess calls check the same at the command line.
"""

import contextlib
import copy
import io
import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import space
from space.describe import main as describe_main

BASE = json.loads(space.builtin_path("nasfpn_paper").read_text())
BASE.pop("hash", None)
TOP_KEYS = ("format", "version", "min_level", "max_level", "cells", "hash", "name", "controller_string")
CELL_KEYS = ("level", "op", "inputs", "is_output")
HUGE = (10**30, -(10**30), 10**400, 1e308, -1e308, 2**63, 2**64 + 1)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _nested(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)


@st.composite
def malformed(draw):
    """(kind, text) of a genotype file that is broken in one way (a few end up valid)."""
    d = copy.deepcopy(BASE)
    cells = d["cells"]
    k = draw(st.integers(0, len(cells) - 1))
    kind = draw(
        st.sampled_from(
            [
                "truncated",
                "document",
                "top_field",
                "missing",
                "cell_field",
                "index",
                "dup_output",
                "op",
                "huge",
                "deep",
                "identical_cells",
                "controller_string",
                "garbage",
            ]
        )  # fmt: skip
    )
    if kind == "truncated":
        text = json.dumps(d)
        return kind, text[: draw(st.integers(0, len(text) - 1))]
    if kind == "document":
        return kind, json.dumps(draw(json_values))
    if kind == "garbage":
        return kind, draw(st.text(max_size=200))
    if kind == "deep":
        nested = _nested(draw(st.integers(500, 200_000)), draw(st.sampled_from(["list", "dict"])))
        where = draw(st.sampled_from(["document", "cells", "inputs"]))
        if where == "document":
            return kind, nested
        text = json.dumps(d).replace('"cells": [', f'"cells": [{nested}, ', 1)
        return kind, text if where == "cells" else json.dumps(d).replace('"inputs": [', f'"inputs": [{nested}, ', 1)
    if kind == "top_field":
        d[draw(st.sampled_from(TOP_KEYS))] = draw(json_values)
    elif kind == "missing":
        if draw(st.booleans()):
            d.pop(draw(st.sampled_from(("cells", "min_level", "max_level", "format", "version"))), None)
        else:
            cells[k].pop(draw(st.sampled_from(CELL_KEYS)))
    elif kind == "cell_field":
        cells[k][draw(st.sampled_from(CELL_KEYS))] = draw(json_values)
    elif kind == "index":
        # negative, forward (pointing at this cell or a later one) or far out of range
        cells[k]["inputs"][draw(st.integers(0, 1))] = draw(st.integers(-5, 5 + len(cells) + 5) | st.sampled_from(HUGE))
    elif kind == "dup_output":
        outputs = [c for c in cells if c["is_output"]]
        outputs[draw(st.integers(0, len(outputs) - 1))]["level"] = outputs[-1]["level"] if k else outputs[0]["level"]
        if len({c["level"] for c in outputs}) == len(outputs):
            outputs[0]["level"] = outputs[1]["level"]
    elif kind == "op":
        cells[k]["op"] = draw(st.text(max_size=30).filter(lambda s: s not in space.genotype.OPS))
    elif kind == "huge":
        target = draw(st.sampled_from(["min_level", "max_level", "level", "input", "version", "cells"]))
        value = draw(st.sampled_from(HUGE))
        if target in ("min_level", "max_level", "version"):
            d[target] = value
        elif target == "level":
            cells[k]["level"] = value
        elif target == "input":
            cells[k]["inputs"][0] = value
        else:
            d["cells"] = cells[:1] * draw(st.integers(100, 5000)) + cells  # a very long list
    elif kind == "identical_cells":
        # many structurally identical intermediate cells (the canonical hash tie-break)
        d["cells"] = [{"level": 3, "op": "sum", "inputs": [0, 1], "is_output": False}] * draw(st.integers(8, 40))
        d["cells"] += [{"level": lv, "op": "sum", "inputs": [0, 1], "is_output": True} for lv in range(3, 8)]
    elif kind == "controller_string":
        d = {"controller_string": draw(json_values | st.lists(st.integers(-3, 12), max_size=40))}
        if draw(st.booleans()):
            d["min_level"], d["max_level"] = draw(json_values), draw(json_values)
    return kind, json.dumps(d)


def _is_valid(path) -> bool:
    try:
        space.load(path)
    except space.GenotypeError:
        return False
    return True  # anything else than GenotypeError propagates: a bug


def _one_error_line(err: str, path) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {err[:2000]!r}"
    assert lines[0].startswith("error: ") and "Traceback" not in err
    assert str(path) in lines[0] or "genotype" in lines[0]


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=malformed())
def test_describe_fuzz_one_line_exit_2(case, fuzz_dir):
    kind, text = case
    path = fuzz_dir / "genotype.json"
    path.write_text(text)
    err, out = io.StringIO(), io.StringIO()
    if _is_valid(path):
        return  # a mutation that kept the genotype valid: nothing to refuse
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        rc = describe_main([str(path), "--out", str(fuzz_dir / "diagram.png")])
    assert rc == 2, f"{kind}: exit {rc}"
    _one_error_line(err.getvalue(), path)
    assert out.getvalue() == ""  # no partial description of a bad genotype


def _train_main(*args: str) -> tuple[int, str]:
    import proxy_task.train

    err = io.StringIO()
    argv, sys.argv = sys.argv, ["proxy_task.train", *args]
    try:
        with contextlib.redirect_stderr(err):
            proxy_task.train.main()
        code = 0
    except SystemExit as e:
        code = e.code
    finally:
        sys.argv = argv
    return code, err.getvalue()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=malformed())
def test_train_cli_fuzz_one_line_exit_2(case, fuzz_dir):
    kind, text = case
    path = fuzz_dir / "train-genotype.json"
    path.write_text(text)
    if _is_valid(path):
        return  # valid: it would train
    code, err = _train_main(f"genotype={path}", "proxy_task=tiny", f"out_dir={fuzz_dir / 'out'}")
    assert code == 2, f"{kind}: exit {code}: {err[-1000:]}"
    _one_error_line(err, path)


@pytest.mark.parametrize(
    "name,text",
    [
        ("bytes", b"\xff\xfe\x00 not utf-8"),
        ("deep", ("[" * 100_000 + "]" * 100_000).encode()),
        (
            "identical",
            json.dumps(
                {
                    "cells": [{"level": 3, "op": "sum", "inputs": [0, 1], "is_output": False}] * 12
                    + [{"level": lv, "op": "sum", "inputs": [0, 1], "is_output": True} for lv in range(3, 8)]
                }
            ).encode(),
        ),  # fmt: skip
        ("controller_string", b'{"controller_string": 7}'),
    ],
)
def test_hand_picked_bad_files(name, text, tmp_path):
    path = tmp_path / f"{name}.json"
    path.write_bytes(text)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert describe_main([str(path), "--out", str(tmp_path / "d.png")]) == 2
    _one_error_line(err.getvalue(), path)
    code, err = _train_main(f"genotype={path}", "proxy_task=tiny", f"out_dir={tmp_path / 'out'}")
    assert code == 2
    _one_error_line(err, path)


def test_real_command_lines(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**BASE, "cells": BASE["cells"][:-1] + [{**BASE["cells"][-1], "op": "conv"}]}))
    missing = tmp_path / "missing.json"
    runs = [
        ([sys.executable, "-m", "space.describe", str(bad), "--out", str(tmp_path / "d.png")], bad, "op='conv'"),
        ([sys.executable, "-m", "space.describe", str(missing)], missing, "no such genotype file"),
        ([sys.executable, "-m", "proxy_task.train", f"genotype={bad}", "proxy_task=tiny"], bad, "op='conv'"),
    ]
    for cmd, path, words in runs:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert r.returncode == 2, r.stderr[-2000:]
        _one_error_line(r.stderr, path)
        assert words in r.stderr
