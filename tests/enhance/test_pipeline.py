"""Paired data, training (CLI, resume), enhancement (CLI), hallucination check and the evaluation protocol,
end to end on a tiny pairs folder."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from trabecula import Volume
from trabecula.cli import main
from trabecula.enhance.data import (
    PairSet,
    PatchDataset,
    default_didsr_dir,
    make_pairs,
    pair_counts,
    specimen_plan,
    write_pairs,
)
from trabecula.enhance.hallucination import check_enhanced, consistency_check
from trabecula.enhance.infer import LoadedModel
from trabecula.errors import ParameterError
from trabecula.io import read_volume, write_volume


def test_manifest_split_by_specimen_and_grids(tiny_pairs):
    ps = PairSet.open(tiny_pairs)
    m = ps.manifest
    assert m["input_spacing"] == [0.1, 0.2, 0.2] and m["target_spacing"] == [0.1, 0.1, 0.1]
    splits = {s["id"]: s["split"] for s in m["specimens"]}
    assert sorted(splits.values()).count("test") == 1 and splits["edge-00"] == "train"
    test_id = ps.ids("test")[0]
    assert test_id not in ps.ids("train")  # no specimen in two splits
    d = ps.load(test_id)
    assert d["target"].shape == (d["input"].shape[0], 2 * d["input"].shape[1], 2 * d["input"].shape[2])
    # the noisy scan differs from its noise-free twin by noise only; the finer detector is on the target grid
    assert 1 < np.std(d["input"] - d["input_clean"]) < 50
    assert d["target_sr"].shape == d["target"].shape
    assert ps.model_keys("dlr") == ("input", "input_clean") and ps.model_keys("srdlr") == ("input", "target_sr")
    assert ps.model_keys("pix2pixhd") == ("input", "target")
    ds = PatchDataset(ps, "train", 8, 2, in_channels=3, context_stride=2, seed=1)
    x, y = ds[5]
    x2, _ = ds[5]
    assert x.shape == (3, 8, 8) and y.shape == (1, 16, 16) and np.array_equal(x, x2)


def test_by_slice_split_puts_every_specimen_in_train_and_test(tmp_path):
    plan = specimen_plan(n_synthetic=2, n_edges=0, seed=1, size=40)
    write_pairs(tmp_path, plan, split="by-slice", seed=1)
    ps = PairSet.open(tmp_path)
    for sid in ps.ids("test"):
        tr, te = set(ps.slices(sid, "train")), set(ps.slices(sid, "test"))
        assert tr and te and not tr & te


def test_make_pairs_scans_planned_specimens_and_counts_them(tmp_path):
    path = make_pairs(tmp_path / "p", synthetic=3, edges=1, didsr="none", shrew="none", size=40, seed=2)
    c = pair_counts(path)
    assert c["specimens"] == 4 and c["backend"] == "twin" and c["split_mode"] == "by-specimen"
    assert sum(c["splits"].values()) == 4 and c["splits"]["mixed"] == 0
    with pytest.raises(ParameterError, match="both folders"):
        make_pairs(tmp_path / "q", input_dir=tmp_path)
    with pytest.raises(ParameterError, match="--protocols PRESET"):
        make_pairs(tmp_path / "q", synthetic=1, didsr="none", shrew="none", mas=50)
    with pytest.raises(ParameterError, match="--protocols: use random or a preset name"):
        make_pairs(tmp_path / "q", synthetic=1, didsr="none", shrew="none", protocols="foo")


def test_default_didsr_dir_is_under_trabecula_data(tmp_path, monkeypatch):
    monkeypatch.setenv("TRABECULA_DATA", str(tmp_path))
    assert default_didsr_dir() is None
    (tmp_path / "didsr_l1_vertebra").mkdir()
    assert default_didsr_dir() == tmp_path / "didsr_l1_vertebra"


def test_check_enhanced_matches_hu_only_for_a_twin_trained_micro_ct_model(tiny_pairs):
    ps = PairSet.open(tiny_pairs)
    sid = ps.ids("train")[0]
    inp, tgt = ps.volume(sid, "input"), ps.volume(sid, "target")
    net = SimpleNamespace(scale=2, in_channels=1, name="srdlr")
    image = LoadedModel(net, {"input": {"spacing_mm": [0.1, 0.2, 0.2]}, "data": {"backend": "image"}})
    twin = LoadedModel(net, {"input": {"spacing_mm": [0.1, 0.2, 0.2]}, "data": {"backend": "twin"}})
    assert check_enhanced(tgt, inp, image, resample=False).score == consistency_check(tgt, inp).score
    assert check_enhanced(tgt, inp, twin, resample=True).score == consistency_check(tgt, inp, match_hu=True).score
    assert check_enhanced(tgt, inp, twin, resample=False).details["hu_scale_fit"] != [1.0, 0.0]


def test_hallucination_check_flags_invented_structure(tiny_pairs):
    ps = PairSet.open(tiny_pairs)
    sid = ps.ids("train")[0]
    # the noise-free scan (the score is the share of the input's variance the output explains: noise lowers it),
    # away from the specimen box's faces (where the input blurs into the body around it, which the target lacks)
    inp, tgt = ps.volume(sid, "input_clean"), ps.volume(sid, "target")
    inp = inp.crop((4, inp.shape[0] - 4), (3, inp.shape[1] - 3), (3, inp.shape[2] - 3))
    # the twin's micro-CT (80 kVp) is on another HU scale than the 120 kVp input: matched, it is consistent
    ok = consistency_check(tgt, inp, match_hu=True)
    assert not ok.flagged and ok.score > 0.5
    assert consistency_check(tgt, inp).flagged  # compared raw, the scales disagree everywhere
    a, b = ok.details["hu_scale_fit"]
    own = tgt.with_data((a * tgt.numpy().astype(np.float32) + b).astype(np.float32))  # on the input's scale
    same = consistency_check(own, inp)
    assert not same.flagged and same.score == pytest.approx(ok.score, abs=0.02)
    fake = own.numpy().copy()
    fake[8:24, 12:22, 12:22] = np.percentile(fake, 99)  # a 1.6 × 1.0 × 1.0 mm bone block the input never saw
    bad = consistency_check(own.with_data(fake), inp)
    assert bad.flagged and bad.unsupported_fraction > 0.01 and bad.details["largest_unsupported_mm3"] > 0.25
    z = np.abs(bad.z_map.numpy())
    inside = np.zeros(z.shape, bool)
    inside[6:18, 3:8, 3:8] = True  # the block, on the cropped input grid
    assert z[inside].mean() > 3 * z[~inside].mean()
    wrong = consistency_check(tgt.with_data(tgt.numpy()[::-1, ::-1].copy()), inp, match_hu=True)
    assert wrong.flagged and wrong.score < 0.5
    # another beam energy's HU scale is matched back, not flagged
    scaled = consistency_check(own.with_data(3.0 * own.numpy() + 100.0), inp, match_hu=True)
    assert scaled.details["hu_scale_fit"][0] == pytest.approx(1 / 3, rel=0.05)
    assert not scaled.flagged and scaled.score == pytest.approx(ok.score, abs=0.02)


@pytest.mark.slow
def test_pairs_train_resume_enhance_evaluate_cli(tiny_pairs, tmp_path, capsys):
    # pairs verb (own small set, no DIDSR)
    code = main(["pairs", str(tmp_path / "p"), "--synthetic", "2", "--edges", "0", "--didsr", "none", "--shrew", "none",
                 "--size", "40", "--protocols", "study-mdct", "--mas", "100", "--body", "wrist"])
    assert code == 0 and (tmp_path / "p" / "manifest.json").exists()
    assert main(["pairs", str(tmp_path / "p"), "--synthetic", "1", "--didsr", "none"]) == 2  # exists, no --force
    m = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert m["protocols"]["mas"] == 100.0 and m["protocols"]["body"] == "wrist" and m["protocol_ranges"] is None
    assert main(["pairs", str(tmp_path / "p0"), "--synthetic", "1", "--didsr", "none", "--protocols", "study-mdct",
                 "--mas", "0"]) == 2
    # train, then resume to more iterations
    run = tmp_path / "run"
    args = ["train", "--model", "srdlr", "--data", str(tiny_pairs), "--out", str(run), "--patch", "12", "--batch", "2",
            "--val-every", "2", "--threads", "1", "--set", "width=8", "--set", "blocks=1", "--2.5d", "3"]
    assert main([*args, "--iters", "2"]) == 0
    assert main([*args, "--iters", "2"]) == 2  # run folder in use without --resume
    assert main([*args, "--iters", "4", "--resume"]) == 0
    rows = (run / "log.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "4"]
    assert json.loads((run / "config.json").read_text())["in_channels"] == 3
    # fine-tuning starts from the given weights; a network of another shape is refused in one line
    import torch

    ft = tmp_path / "ft"
    ft_args = [a if a != str(run) else str(ft) for a in args]
    assert main([*ft_args, "--iters", "1", "--lr", "1e-12", "--init", str(run / "best.pt")]) == 0
    assert "fine-tuning from" in capsys.readouterr().out
    a_w = torch.load(run / "best.pt", weights_only=True)["G"]
    b_w = torch.load(ft / "last.pt", weights_only=True)["G"]
    assert all(torch.allclose(a_w[k], b_w[k], atol=1e-6) for k in a_w)  # lr 1e-12: still the initial weights
    bad = [{"width=8": "width=6", str(ft): str(tmp_path / "ft2")}.get(a, a) for a in ft_args]
    assert main([*bad, "--iters", "1", "--init", str(run / "best.pt")]) == 2
    assert "init:" in capsys.readouterr().err
    # enhance a volume with the checkpoint (spacing (0.1, 0.2, 0.2) = the training grid), with the check
    ps = PairSet.open(tiny_pairs)
    sid = ps.ids("test")[0]
    write_volume(ps.volume(sid, "input"), tmp_path / "in.nii.gz")
    code = main(["enhance", str(tmp_path / "in.nii.gz"), "--model", str(run / "best.pt"), "-o", str(tmp_path / "o.nii.gz"),
                 "--tile", "16", "--consistency-map", str(tmp_path / "z.nii.gz")])
    out = capsys.readouterr().out
    assert code == 0 and "consistency score" in out
    o = read_volume(tmp_path / "o.nii.gz")
    assert o.spacing == pytest.approx((0.1, 0.1, 0.1)) and o.units == "HU"
    # a wrong spacing is one clear line and exit 2
    write_volume(Volume(np.zeros((4, 16, 16), np.float32), (1.0, 0.5, 0.5), units="HU"), tmp_path / "w.nii.gz")
    assert main(["enhance", str(tmp_path / "w.nii.gz"), "--model", str(run / "best.pt"), "-o", str(tmp_path / "w2.nii.gz")]) == 2
    assert "trained on" in capsys.readouterr().err
    # the evaluation protocol end to end (tables, FID on a few slices, consistency)
    code = main(["evaluate", "--data", str(tiny_pairs), "--out", str(tmp_path / "ev"), "--model",
                 f"srdlr={run / 'best.pt'}", "--fid-slices", "4", "--no-edge-test"])
    assert code == 0
    assert "hallucination check srdlr: mean consistency score" in capsys.readouterr().out
    s = json.loads((tmp_path / "ev" / "summary.json").read_text())
    methods = {r["method"] for r in s["image_quality"]}
    assert {"input", "srdlr"} <= methods
    assert (tmp_path / "ev" / "table_srdlr.md").exists() or len(s["specimens"]) * 2 < 3
    assert all(r.get("fid") is not None for r in s["image_quality"])


def _fake_didsr(folder, n: int, size: int = 48):
    import numpy as np

    from trabecula.io import write_volume
    from trabecula.phantom.standin import synthetic_structure
    from trabecula.volume import Volume

    folder.mkdir()
    for k in range(n):
        s = synthetic_structure((size,) * 3, 0.05, bv_tv=0.2, scale_mm=0.6, kind="mixed", seed=k).numpy()
        write_volume(Volume(s.astype(np.uint8), 1.0, units="binary"), folder / f"Segmentation-grayscale-{k}_0000{k}.nrrd")
    return folder


def test_augmented_copies_of_real_structures_are_planned_recorded_and_split_with_their_source(tmp_path):
    from trabecula.enhance.data import _split_specimens, load_structure, specimen_plan

    d = _fake_didsr(tmp_path / "didsr", 10)
    plan = specimen_plan(n_synthetic=0, n_edges=0, didsr_dir=d, seed=1, augment=2)
    assert len(plan) == 30 and plan == specimen_plan(0, 0, d, 1, augment=2)  # reproducible from the seed
    copies = [p for p in plan if "augmentation" in p]
    assert len(copies) == 20 and all(p["source_specimen"] != p["id"] for p in copies)
    split = _split_specimens(plan, seed=1)
    for p in plan:
        assert split[p["id"]] == split[p["source_specimen"]]  # strictly by source specimen
    assert {"train", "test"} <= set(split.values())
    # without augmentation the split is the one it always was (plan order, one group per specimen)
    plain = specimen_plan(0, 0, d, 1)
    assert _split_specimens(plain, 1) == {k: v for k, v in split.items() if "-aug" not in k}
    v = load_structure(copies[0])
    assert v.units == "binary" and all(n % 4 == 0 for n in v.shape)
    assert v.provenance.extra["source_specimen"] == copies[0]["source_specimen"]
    assert v.provenance.extra["augmentation"] == copies[0]["augmentation"]


def test_two_vertebrae_of_one_donor_are_two_specimens_and_duplicate_ids_are_refused(tmp_path):
    from trabecula.enhance.data import didsr_region_id, specimen_plan

    assert didsr_region_id("Segmentation-grayscale-5_06219.nrrd") == "didsr-5_06219"
    d = _fake_didsr(tmp_path / "didsr", 2, size=40)
    (d / "Segmentation-grayscale-1_00001.nrrd").rename(d / "Segmentation-grayscale-7_00000.nrrd")  # same donor as 0_00000
    plan = specimen_plan(0, 0, d, 1, size=40, augment=1)
    assert len({p["id"] for p in plan}) == len(plan) == 4
    with pytest.raises(ParameterError, match="unique"):
        write_pairs(tmp_path / "dup", [plan[0], plan[0]])


def test_parallel_scanning_writes_the_same_pairs(tmp_path):
    plan = specimen_plan(n_synthetic=2, n_edges=0, seed=9, size=32)
    one = write_pairs(tmp_path / "one", plan, seed=9)
    two = write_pairs(tmp_path / "two", plan, seed=9, workers=2)
    a, b = PairSet.open(one.parent), PairSet.open(two.parent)
    strip = [{k: v for k, v in r.items()} for r in a.specimens]
    assert strip == b.specimens
    for r in plan:
        da, db = a.load(r["id"]), b.load(r["id"])
        assert all(np.array_equal(da[k], db[k]) for k in da)


def test_shrew_at_human_scale_and_look_alikes_are_planned_and_split_with_their_source(tmp_path):
    from trabecula.enhance.data import _split_specimens, default_shrew_path, load_structure, specimen_plan
    from trabecula.morphometry import measure

    d = _fake_didsr(tmp_path / "didsr", 5, size=40)
    shrew = default_shrew_path()
    if shrew is None:
        pytest.skip("the shrew sample is not in the data folder")
    plan = specimen_plan(n_synthetic=0, n_edges=0, didsr_dir=d, seed=2, size=40, augment=1, lookalikes=2, shrew=shrew)
    sources = [p["source"] for p in plan]
    assert sources.count("shrew") == 2 and sources.count("lookalike") == 2
    look = [p for p in plan if p["source"] == "lookalike"]
    assert all(p["source_specimen"].startswith("didsr-") for p in look)
    split = _split_specimens(plan, seed=2)
    for p in plan:
        assert split[p["id"]] == split[p["source_specimen"]]
    v = load_structure(next(p for p in plan if p["id"] == "shrew"))
    assert v.units == "binary" and v.spacing == pytest.approx((0.05,) * 3) and v.shape == (40, 40, 40)
    m = measure(v.numpy(), spacing=v.spacing, metrics=("bvtv", "tbth"))
    assert m.tb_th_mm == pytest.approx(0.2, rel=0.2) and 0.2 < m.bv_tv < 0.4  # human strut, shrew's BV/TV 0.29
    assert "human_scale" in v.provenance.extra
    lk = load_structure(look[0])
    assert lk.units == "binary" and lk.shape == (40, 40, 40) and 0.05 < lk.numpy().mean() < 0.5


def test_random_protocol_pairs_record_their_protocols_and_reproduce_from_the_seed(tmp_path):
    from trabecula.scanner.protocols import ProtocolRanges

    plan = specimen_plan(n_synthetic=2, n_edges=0, seed=4, size=40)
    for run in ("a", "b"):
        write_pairs(tmp_path / run, plan, seed=4)
    a, b = PairSet.open(tmp_path / "a"), PairSet.open(tmp_path / "b")
    assert a.manifest["protocols"] == "random"
    assert ProtocolRanges.from_dict(a.manifest["protocol_ranges"]) == ProtocolRanges()
    protos = [r["protocol"] for r in a.specimens]
    assert protos[0] != protos[1] and protos == [r["protocol"] for r in b.specimens]
    for p in protos:
        assert 0.15 <= p["pixel_mm"] <= 0.5 and 5 <= p["mas"] <= 300 and 100 <= p["kvp"] <= 140
    for sid in a.ids("train") + a.ids("test") + a.ids("val"):
        da, db = a.load(sid), b.load(sid)
        assert set(da) == {"input", "input_clean", "target_sr", "target"}
        assert all(np.array_equal(da[k], db[k]) for k in da)  # reproducible from the seed
        assert da["target_sr"].shape == da["target"].shape == (da["input"].shape[0], 2 * da["input"].shape[1],
                                                               2 * da["input"].shape[2])


def test_the_check_flags_a_region_exactly_at_its_size_limit(tiny_pairs):
    ps = PairSet.open(tiny_pairs)
    sid = ps.ids("train")[0]
    inp = ps.volume(sid, "input_clean")
    inp = inp.crop((4, inp.shape[0] - 4), (3, inp.shape[1] - 3), (3, inp.shape[2] - 3))
    ok = consistency_check(ps.volume(sid, "target"), inp, match_hu=True)
    a, b = ok.details["hu_scale_fit"]
    own = ps.volume(sid, "target")
    fake = (a * own.numpy().astype(np.float32) + b).astype(np.float32)
    fake[8:24, 12:22, 12:22] = np.percentile(fake, 99)
    bad = consistency_check(own.with_data(fake), inp, flag_fraction=1.0, min_score=-1e9)
    size = bad.details["largest_unsupported_mm3"]
    assert size > 0
    at_limit = consistency_check(own.with_data(fake), inp, flag_fraction=1.0, min_score=-1e9, min_cluster_mm3=size)
    assert at_limit.flagged  # a region of exactly the limit is not within it
    above = consistency_check(own.with_data(fake), inp, flag_fraction=1.0, min_score=-1e9, min_cluster_mm3=size * 1.01)
    assert not any("unsupported region" in r for r in above.details["reasons"])


def test_a_model_names_itself_as_chosen(tmp_path):
    from trabecula.enhance.infer import load_model

    assert load_model("srdlr", "cpu").label == "srdlr"
    # a weights folder of another name reports that name beside its network
    import shutil

    from trabecula.enhance.catalog import WEIGHTS_DIR

    shutil.copytree(WEIGHTS_DIR / "srdlr", tmp_path / "srdlr-mine")
    lm = load_model(str(tmp_path / "srdlr-mine"), "cpu")
    assert lm.name == "srdlr" and "srdlr-mine" in lm.label and lm.label.endswith(" (srdlr)")
