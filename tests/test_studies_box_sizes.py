"""The box-size and anchor-coverage study on the shipped BCCD images (pure geometry)."""

import numpy as np
import pytest

from proxy_task.config import bccd_config
from proxy_task.data import read_split
from studies.box_sizes import coverage, main


def test_bccd_preset_anchors_cover_every_class_over_several_levels():
    cfg = bccd_config()
    records = [r for r in read_split(cfg, "train").records if len(r.boxes)]
    scales = [cfg.image_size / max(r.width, r.height) for r in records]
    result = coverage(cfg, [r.boxes for r in records], [r.labels for r in records], scales, 256, 1.5)
    covered = {c: round(float(np.mean(row["covered"])), 2) for c, row in result.items()}
    assert covered == {0: 0.89, 1: 0.99, 2: 0.98}  # Platelets, RBC, WBC
    main_level = {c: int(np.argmax(row["levels"])) + 3 for c, row in result.items()}
    assert main_level == {0: 3, 1: 4, 2: 5}  # platelets on P3, red cells on P4, white cells on P5


def test_cli_prints_tables_and_rejects_bad_fields(capsys):
    assert main(["bccd", "--image-size", "128", "--anchor-scale", "1"]) == 0
    out = capsys.readouterr().out
    assert "| Platelets | 209 |" in out and "| 128 | 1 | WBC |" in out
    assert main(["bccd", "nonsense=1"]) == 2
    assert "not FIELD=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["nope"], ["bccd", "data_root=/nope"]])
def test_cli_bad_preset_or_data_is_one_line(args, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
