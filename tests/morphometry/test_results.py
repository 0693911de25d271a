"""Results of measure() as a table, CSV and JSON; the measure option parsers."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from trabecula import Volume
from trabecula.errors import OutputExistsError, ParameterError
from trabecula.morphometry.measure import METRICS, measure
from trabecula.morphometry.results import (
    CSV_FIELDS,
    TABLE_ROWS,
    csv_row,
    format_value,
    map_paths,
    parse_metrics,
    parse_threshold,
    write_results_csv,
    write_results_json,
)


@pytest.fixture(scope="module")
def results() -> list[dict]:
    b = np.zeros((12, 16, 16), np.uint8)
    b[4:8] = 1  # a 4-voxel plate: Tb.Th defined, SMI/DA too
    r = measure(Volume(b, 0.1, units="binary"), metrics=("bvtv", "tbth", "tbsp", "da"))
    return [{**r.to_dict(), "source": "plate.nrrd"}]


def test_format_value_numbers_nan_and_text():
    assert format_value(0.123456, "{:.4f}") == "0.1235"
    assert format_value(float("nan"), "{:.4f}") == "n/a"
    assert format_value(np.float32(2.0), "{:.0f}") == "2"
    assert format_value("whole volume", "{:.4f}") == "whole volume"
    assert all(key and label and "{" in fmt for key, label, fmt in TABLE_ROWS)


def test_csv_row_splits_the_direction_and_joins_spacing_and_warnings():
    row = csv_row({"source": "a.nii", "bv_tv": 0.2, "main_direction": [1.0, 0.0, 0.0], "spacing_mm": [0.5, 0.1, 0.1],
                   "warnings": ["one", "two"]})
    assert list(row) == CSV_FIELDS
    assert (row["main_direction_z"], row["main_direction_y"], row["main_direction_x"]) == (1.0, 0.0, 0.0)
    assert row["spacing_mm"] == "0.5x0.1x0.1" and row["warnings"] == "one; two" and row["smi"] == ""
    empty = csv_row({})
    assert all(math.isnan(empty[f"main_direction_{a}"]) for a in "zyx")
    assert empty["spacing_mm"] == "" and empty["warnings"] == "" and empty["source"] == ""


def test_results_written_as_json_and_csv_and_not_overwritten(tmp_path, results):
    jp, cp = tmp_path / "r.json", tmp_path / "r.csv"
    write_results_json(results, jp)
    write_results_csv(results, cp)
    back = json.loads(jp.read_text())
    assert back[0]["source"] == "plate.nrrd" and back[0]["bv_tv"] == pytest.approx(results[0]["bv_tv"])
    assert math.isnan(back[0]["conn_d_per_mm3"])  # not asked for: NaN survives as NaN
    rows = list(csv.DictReader(cp.open(newline="")))
    assert len(rows) == 1 and list(rows[0]) == CSV_FIELDS
    assert float(rows[0]["bv_tv"]) == results[0]["bv_tv"] and rows[0]["spacing_mm"] == "0.1x0.1x0.1"
    with pytest.raises(OutputExistsError):
        write_results_json(results, jp)
    with pytest.raises(OutputExistsError):
        write_results_csv(results, cp)
    write_results_csv(results * 2, cp, force=True)
    assert len(list(csv.DictReader(cp.open(newline="")))) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.json"]  # no temporary left behind


def test_map_paths_are_named_after_the_input_stem(tmp_path):
    got = map_paths([Path("in/scan.nii.gz"), Path("dicom_folder")], tmp_path, ".nrrd")
    assert got[Path("in/scan.nii.gz")] == (tmp_path / "scan_tb_th.nrrd", tmp_path / "scan_tb_sp.nrrd")
    assert got[Path("dicom_folder")] == (tmp_path / "dicom_folder_tb_th.nrrd", tmp_path / "dicom_folder_tb_sp.nrrd")


def test_option_parsers_name_the_option():
    assert parse_threshold("isodata") == "isodata" and parse_threshold("Otsu") == "Otsu"
    assert parse_threshold("350.5") == 350.5
    with pytest.raises(ParameterError, match="--threshold: use isodata, otsu or a number"):
        parse_threshold("halfway")
    assert parse_metrics(" BVTV, tbth ,,") == ["bvtv", "tbth"]
    assert parse_metrics(",".join(METRICS)) == list(METRICS)
    with pytest.raises(ParameterError, match="--metrics: unknown metric.s. volume"):
        parse_metrics("bvtv,volume")
    with pytest.raises(ParameterError, match=r"\(none\)"):
        parse_metrics(" , ")
