"""``trabecula report --reader-study STUDY.db``: the analysis becomes a section of the HTML report."""

from __future__ import annotations

import json
import sqlite3

import numpy as np

from trabecula.cli import main
from trabecula.readerstudy.criteria import CRITERIA


def test_report_gets_the_reader_study_section(small_study, tmp_path):
    db, readers = small_study
    con = sqlite3.connect(db)
    images = [i for (i,) in con.execute("select id from image")]
    rng = np.random.default_rng(0)
    for rid, _ in readers:
        for iid in images:
            scores = {c.key: int(rng.integers(1, c.points + 1)) for c in CRITERIA}
            cols = ", ".join(scores)
            con.execute(f"insert into answer (reader_id, image_id, {cols}, comment, updated) values (?, ?, "
                        + ", ".join("?" * len(scores)) + ", '', 0)", (rid, iid, *scores.values()))
    con.commit()
    con.close()
    study = tmp_path / "study.json"
    study.write_text(json.dumps({"title": "t", "notes": ["<b>a note</b>"]}))
    out = tmp_path / "r.html"
    assert main(["report", "--from", str(study), "-o", str(out), "--no-viewer", "--reader-study", str(db)]) == 0
    text = out.read_text()
    assert "Reader study" in text and "Kendall" in text and "Mann" in text
    assert "<b>a note</b>" not in text  # the study file's own text is still escaped
