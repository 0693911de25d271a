import json

from trabecula.cli import main


def test_demo_runs_every_stage_and_checks_pass(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path / "d")])
    out = capsys.readouterr().out
    assert code == 0, out
    s = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert s["stages"][0] == "io"
    io = s["results"]["io"]
    assert io["ok"] is True
    assert len(io["round_trips"]) == 7 and all(r["array_equal"] for r in io["round_trips"])
    assert "demo finished" in out
