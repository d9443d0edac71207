"""JSON, the only serialization of a genotype. Format version 1:

    {
      "format": "nasfpn-genotype",
      "version": 1,
      "min_level": 3,
      "max_level": 7,
      "cells": [
        {"level": 4, "op": "attention", "inputs": [1, 3], "is_output": false},
        ...
      ],
      "name": "optional free text",
      "hash": "optional; checked against the canonical hash when present"
    }

`cells` follow the official block specs: inputs index the pool [P_min..P_max, cell 0,
cell 1, ...]. Every pair is written sorted (the canonical form, `Genotype.canonical()`): an
`attention` cell whose inputs sit at the same level then builds the same network here (the
lower pool index is the attention source) and in the official TensorFlow builders (the first
input is). A file with unsorted pairs is read as written. `load` also accepts a bare list of [level, op, [i, j], is_output] block
specs, or {"controller_string": [...]} (the integer form), so files written by other
tools can be read. Every problem raises GenotypeError with a one-line message.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from space.atomic import write_text_atomic
from space.genotype import Cell, Genotype, GenotypeError, check_cell_count, from_controller_string

FORMAT = "nasfpn-genotype"
VERSION = 1
MAX_FILE_BYTES = 1 << 20  # MAX_CELLS cells take ~6 kB indented
_CELL_KEYS = {"level", "op", "inputs", "is_output"}


def to_dict(genotype: Genotype, name: str | None = None) -> dict[str, Any]:
    """A JSON-ready dict in format version 1, with every input pair sorted."""
    d: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "min_level": genotype.min_level,
        "max_level": genotype.max_level,
        "cells": [
            {"level": c.level, "op": c.op, "inputs": list(c.sorted_inputs()), "is_output": c.is_output}
            for c in genotype.cells
        ],
        "hash": genotype.hash(),
    }
    if name:
        d["name"] = name
    return d


def _cell_from_dict(k: int, d: object) -> Cell:
    if isinstance(d, (list, tuple)):
        if len(d) != 4:
            raise GenotypeError(f"cell {k}: expected [level, op, [i, j], is_output], got {d!r}")
        d = dict(zip(("level", "op", "inputs", "is_output"), d))
    if not isinstance(d, dict):
        raise GenotypeError(f"cell {k}: expected an object, got {type(d).__name__}")
    missing = _CELL_KEYS - set(d)
    if missing:
        raise GenotypeError(f"cell {k}: missing field(s) {sorted(missing)}")
    unknown = set(d) - _CELL_KEYS
    if unknown:
        raise GenotypeError(f"cell {k}: unknown field(s) {sorted(unknown)}")
    inputs = d["inputs"]
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
        raise GenotypeError(f"cell {k}: inputs={inputs!r}, expected a list of two pool indices")
    return Cell(d["level"], d["op"], tuple(inputs), d["is_output"])


def from_dict(d: object) -> Genotype:
    """Parse any accepted JSON form. Raises GenotypeError."""
    if isinstance(d, list):
        check_cell_count(len(d))
        return Genotype(tuple(_cell_from_dict(k, c) for k, c in enumerate(d)))
    if not isinstance(d, dict):
        raise GenotypeError(f"expected a JSON object or list, got {type(d).__name__}")
    min_level, max_level = d.get("min_level", 3), d.get("max_level", 7)
    if "controller_string" in d:
        return from_controller_string(d["controller_string"], min_level, max_level)
    if d.get("format", FORMAT) != FORMAT:
        raise GenotypeError(f"format is {d.get('format')!r}, expected {FORMAT!r}")
    version = d.get("version", VERSION)
    if version != VERSION:
        raise GenotypeError(f"format version {version!r} is not supported (this reader knows {VERSION})")
    if "cells" not in d:
        raise GenotypeError("missing field 'cells'")
    if not isinstance(d["cells"], list):
        raise GenotypeError(f"'cells' must be a list, got {type(d['cells']).__name__}")
    check_cell_count(len(d["cells"]))
    cells = tuple(_cell_from_dict(k, c) for k, c in enumerate(d["cells"]))
    genotype = Genotype(cells, min_level, max_level)
    stored = d.get("hash")
    if stored is not None and stored != genotype.hash():
        raise GenotypeError(
            f"stored hash {stored!r} does not match the cells (canonical hash {genotype.hash()!r});"
            " the file was edited: remove the 'hash' field to accept the cells as they are"
        )
    return genotype


def dumps(genotype: Genotype, name: str | None = None) -> str:
    return json.dumps(to_dict(genotype, name), indent=2) + "\n"


def loads(text: str) -> Genotype:
    """Parse JSON text. Raises GenotypeError (malformed JSON included)."""
    if len(text) > MAX_FILE_BYTES:
        raise GenotypeError(f"{len(text)} characters: a genotype is at most {MAX_FILE_BYTES} (a few kB)")
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise GenotypeError(f"malformed JSON: {e}") from None
    except ValueError as e:  # e.g. an integer of more than 4300 digits (Python's conversion limit)
        raise GenotypeError(f"malformed JSON: {str(e).splitlines()[0]}") from None
    return from_dict(d)


def load(path: str | os.PathLike[str]) -> Genotype:
    """Read a genotype file. Raises GenotypeError naming the file on any problem."""
    p = Path(path)
    try:
        info = p.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block, a device never end
            raise GenotypeError(f"{p}: not a regular file; give a genotype JSON file")
        if info.st_size > MAX_FILE_BYTES:
            raise GenotypeError(f"{p}: {info.st_size} bytes, a genotype file is at most {MAX_FILE_BYTES}")
        text = p.read_text()
    except FileNotFoundError:
        raise GenotypeError(f"{p}: no such genotype file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise GenotypeError(f"{p}: cannot read genotype file ({e})") from None
    try:
        return loads(text)
    except GenotypeError as e:
        raise GenotypeError(f"{p}: {e}") from None
    except RecursionError:
        raise GenotypeError(f"{p}: JSON nested too deeply") from None


def save(genotype: Genotype, path: str | os.PathLike[str], name: str | None = None) -> Path:
    """Write atomically (`space.atomic`), so a crash never leaves half a file."""
    return write_text_atomic(path, dumps(genotype, name))


# The shipped genotypes by every name they go by: the one table every command resolves with.
BUILTIN_NAMES = {"paper": "nasfpn_paper", "nasfpn_paper": "nasfpn_paper", "fpn": "fpn"}


def builtin_path(name: str) -> Path:
    """Path of a shipped genotype: 'paper' (= 'nasfpn_paper') or 'fpn'."""
    return Path(__file__).parent / "genotypes" / f"{BUILTIN_NAMES.get(name, name)}.json"


def load_builtin(name: str) -> Genotype:
    return load(builtin_path(name))


def load_spec(spec: str) -> Genotype:
    """A genotype from a JSON file path or a shipped name (`BUILTIN_NAMES`).

    Raises:
        FileNotFoundError: neither a shipped name nor an existing file.
        GenotypeError: a file that is not a valid genotype (one line).
    """
    if spec in BUILTIN_NAMES:
        return load_builtin(spec)
    path = Path(spec).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"genotype file not found: {path}")
    return load(path)
