"""``trabecula pairs``, ``train``, ``enhance`` and ``evaluate``: thin verbs over :mod:`trabecula.enhance` and
the vertebra study (:mod:`trabecula.pipeline.vertebra_study`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trabecula.cli._app import app, out
from trabecula.cli._common import Force, InputSpacing, Series, Threads, Units, check_outputs, read_input


@app.command()
def pairs(
    out_dir: Annotated[Path, typer.Argument(help="Folder for the shards (.npz) and manifest.json.")],
    synthetic: Annotated[int, typer.Option(help="Number of synthetic trabecular specimens.")] = 30,
    edges: Annotated[int, typer.Option(help="Number of bone-cylinder edge objects (teach edges; training split only).")] = 2,
    didsr: Annotated[Path | None, typer.Option(help="Folder of the DIDSR L1 binary structures (.nrrd, 0.05 mm); default <data>/didsr_l1_vertebra; 'none' to skip.")] = None,
    augment: Annotated[int, typer.Option(help="Augmented copies of each real (DIDSR) structure: cube symmetry, rotation, ±15 % scale, one-voxel erosion/dilation; split with their original.")] = 0,
    lookalikes: Annotated[int, typer.Option(help="Voronoi-foam look-alikes of the DIDSR regions (matched BV/TV, Tb.Th, Tb.Sp; split with the region they imitate).")] = 0,
    shrew: Annotated[Path | None, typer.Option(help="The shrew sample (Shrew.nrrd), scaled to human strut thickness; default <data>/didsr_shrew/Shrew.nrrd; 'none' to skip.")] = None,
    protocols: Annotated[str, typer.Option(help="random (each specimen its own clinical protocol: pixel 0.15-0.5 mm, slice 0.5-2 mm, kernel, 5-300 mAs, 100-140 kVp, body) or a preset name for one fixed protocol.")] = "random",
    mas: Annotated[float | None, typer.Option(help="With --protocols PRESET: the tube load (mAs) instead of the preset's.")] = None,
    body: Annotated[str | None, typer.Option(help="With --protocols PRESET: the body around the specimen (NONE, wrist, ankle, lumbar, AxB mm).")] = None,
    medium: Annotated[str | None, typer.Option(help="With --protocols PRESET: what fills the specimen's box (air, marrow, pbs, soft_tissue, water).")] = None,
    split: Annotated[str, typer.Option(help="by-specimen (80/20, default) or by-slice (the study's; leaks neighbouring slices).")] = "by-specimen",
    input_dir: Annotated[Path | None, typer.Option("--input", help="Your own registered pairs: folder of clinical volumes (HU).")] = None,
    target_dir: Annotated[Path | None, typer.Option("--target", help="Your own pairs: folder of reference volumes, same file names.")] = None,
    low_dir: Annotated[Path | None, typer.Option("--low-dose", help="Your own pairs: folder of low-dose clinical volumes (for dlr).")] = None,
    from_scans: Annotated[tuple[Path, Path] | None, typer.Option("--from-scans", help="Your own UNREGISTERED scans: CLINICAL_DIR MICRO_DIR (same file names); each micro-CT is registered to its clinical scan in 3-D (mutual information, rigid then affine; refused below the metric threshold), QC page in OUT/qc/index.html.")] = None,
    size: Annotated[int, typer.Option(help="Synthetic, look-alike and shrew specimen size in 0.05 mm voxels (multiple of 4).")] = 240,
    seed: Annotated[int, typer.Option(help="Random seed (specimens, protocols, noise, split).")] = 0,
    workers: Annotated[int, typer.Option(help="Scan specimens in this many parallel processes (same result).")] = 1,
    cv_of: Annotated[Path | None, typer.Option(help="Make no scans: write fold --fold of a cross-validation over the real L1 regions of this pairs folder (shards shared).")] = None,
    fold: Annotated[int, typer.Option(help="With --cv-of: the fold (0-based) whose regions are the test split.")] = 0,
    folds: Annotated[int, typer.Option(help="With --cv-of: the number of folds (every region is tested once).")] = 5,
    force: Force = False,
) -> None:
    """Make paired training data with the scanner twin: real and generated specimens, each scanned under a clinical protocol (noisy, noise-free, finer detector) and by micro-CT; or your own registered pairs; or a cross-validation fold of a pairs folder."""
    from trabecula.enhance.data import cross_validation_fold, make_pairs, pair_counts

    if from_scans is not None:
        from trabecula.enhance.from_scans import pairs_from_scans
        from trabecula.progress import make_progress

        with make_progress() as prog:
            task = prog.add_task("pairs from scans", total=None)
            path = pairs_from_scans(from_scans[0], from_scans[1], out_dir, split=split, seed=seed, force=force,
                                    progress=lambda desc: prog.update(task, description=desc))
        c = pair_counts(path)
        out.print(f"wrote {path}: {c['specimens']} registered specimens ("
                  + ", ".join(f"{k} {v}" for k, v in c["splits"].items() if v) + f"); QC: {path.parent / 'qc' / 'index.html'}")
        return
    if cv_of is not None:
        path = cross_validation_fold(cv_of, out_dir, fold, folds, seed=seed, force=force)
        c = pair_counts(path)
        out.print(f"wrote {path}: fold {fold} of {folds} ({', '.join(f'{k} {v}' for k, v in c['splits'].items() if v)})")
        return
    path = make_pairs(out_dir, synthetic=synthetic, edges=edges, didsr=didsr, shrew=shrew, lookalikes=lookalikes,
                      augment=augment, protocols=protocols, mas=mas, body=body, medium=medium, split=split,
                      input_dir=input_dir, target_dir=target_dir, low_dir=low_dir, size=size, seed=seed, force=force,
                      workers=workers)
    c = pair_counts(path)
    out.print(f"wrote {path}: {c['specimens']} specimens ({c['backend']} backend, {c['split_mode']}; "
              + ", ".join(f"{k} {v}" for k, v in c["splits"].items() if v) + ")")


@app.command()
def train(
    model: Annotated[str, typer.Option(help="dlr, srdlr, pix2pixhd, pix2pix or crn.")],
    data: Annotated[Path, typer.Option(help="Pairs folder made by `trabecula pairs`.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder (config.json, log.csv, last.pt, best.pt).")],
    iters: Annotated[int, typer.Option(help="Training iterations (batches).")] = 2000,
    minutes: Annotated[float | None, typer.Option(help="Stop after this many minutes of training (checkpoint kept).")] = None,
    batch: Annotated[int, typer.Option(help="Patches per batch: the global batch, split equally among torchrun's processes.")] = 8,
    patch: Annotated[int, typer.Option(help="Input patch size in pixels (targets are scale × larger).")] = 40,
    lr: Annotated[float | None, typer.Option(help="Learning rate (default 1e-3 regression, 2e-4 GAN).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (weights and patch stream).")] = 0,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N (default: cuda when available).")] = None,
    threads: Threads = None,
    slices: Annotated[int, typer.Option("--2.5d", help="Adjacent input slices as channels (odd; 1 = 2-D).")] = 1,
    context_stride: Annotated[int, typer.Option(help="Slice step between the 2.5D input slices.")] = 1,
    val_every: Annotated[int, typer.Option(help="Validate, log and checkpoint every N iterations.")] = 250,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from last.pt.")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Network config override KEY=VALUE (e.g. width=48).")] = None,
    init: Annotated[str | None, typer.Option(help="Fine-tune: start from these weights (a shipped model name, a weights folder or a .pt).")] = None,
) -> None:
    """Train an enhancement model on paired data (several processes or GPUs: torchrun --nproc-per-node N -m trabecula train ...)."""
    import time

    from trabecula.enhance.train import PeerStopped, TrainConfig, parse_overrides, process_rank
    from trabecula.enhance.train import train as run_train

    rank = process_rank()[0]
    try:
        cfg = TrainConfig(model=model, data=str(data), out=str(out_dir), iters=iters, minutes=minutes, batch=batch,
                          patch=patch, lr=lr, seed=seed, device=device, threads=threads, in_channels=slices,
                          context_stride=context_stride, val_every=val_every, config=parse_overrides(set_), init=init)
        res = run_train(cfg, resume=resume, log=lambda s: out.print(s))
    except PeerStopped:
        # under torchrun rank 0 says what is wrong, in one line; the others leave quietly, a moment later, so
        # that torchrun (which stops every process at the first that ends) lets rank 0 say it
        time.sleep(2.0)
        raise typer.Exit(2) from None
    if rank == 0:
        out.print(f"trained {model}: {res['iterations']} iterations in {res['seconds']} s"
                  + (f" on {res['world_size']} processes" if res.get("world_size", 1) > 1 else "")
                  + f"; best checkpoint {out_dir}/best.pt")


@app.command()
def bundle(
    checkpoint: Annotated[Path, typer.Argument(help="Training checkpoint (RUN/best.pt) beside its config.json.")],
    out_dir: Annotated[Path, typer.Argument(help="Weights folder to write (model.pt, manifest.json, config.toml).")],
    evaluation: Annotated[Path | None, typer.Option(help="JSON of evaluation numbers to record in the manifest.")] = None,
    notes: Annotated[str, typer.Option(help="A note for the manifest.")] = "",
    force: Force = False,
) -> None:
    """Package a trained checkpoint as a weights folder: SHA-256, training config, the pairs' data hash and training ranges (enhance refuses inputs outside them)."""
    import json

    from trabecula.enhance.bundle import export_bundle
    from trabecula.errors import InputError

    ev = None
    if evaluation is not None:
        try:
            ev = json.loads(evaluation.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(evaluation, f"not readable JSON ({exc})") from exc
    path = export_bundle(checkpoint, out_dir, evaluation=ev, notes=notes, force=force)
    m = json.loads(path.read_text())
    out.print(f"wrote {out_dir}: {m['model']} ({m['parameters']} parameters, sha256 {m['sha256'][:12]}…); "
              f"training ranges: {', '.join(m.get('training_ranges') or {}) or 'none recorded'}")


def _shipped_epilog() -> str:
    from trabecula.enhance.catalog import shipped_model_lines

    lines = shipped_model_lines()
    return ("Shipped models:\n\n" + "\n\n".join(f"- {ln}" for ln in lines)) if lines else "No shipped models."


@app.command(epilog=_shipped_epilog())
def enhance(
    src: Annotated[Path, typer.Argument(help="Clinical CT volume in HU (file or folder).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output volume path (.nii.gz, .nrrd, .mha, .tif, .zarr).")],
    model: Annotated[str, typer.Option(help="A shipped model (listed below, with the protocols each was trained on) or a .pt file (weights or checkpoint).")] = "dlr",
    tile: Annotated[int, typer.Option(help="Tile size in input pixels.")] = 256,
    overlap: Annotated[int | None, typer.Option(help="Tile overlap in input pixels (default: exact, from the receptive field).")] = None,
    batch: Annotated[int, typer.Option(help="Tiles per forward pass.")] = 8,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda when available).")] = None,
    threads: Threads = None,
    resample: Annotated[bool, typer.Option(help="For a model without training ranges: resample an input whose spacing differs from its training grid (with a warning) instead of refusing.")] = False,
    allow_out_of_range: Annotated[bool, typer.Option(help="Enhance an input outside the model's training ranges (pixel, slice, kernel, MTF50, noise) with a warning instead of refusing.")] = False,
    check: Annotated[bool, typer.Option(help="Run the hallucination (data-consistency) check and print its score.")] = False,
    consistency_map: Annotated[Path | None, typer.Option(help="Write the consistency z-map here (implies --check).")] = None,
    input_spacing: InputSpacing = None,
    units: Units = None,
    series: Series = None,
    force: Force = False,
) -> None:
    """Enhance a clinical CT volume with a trained model (tiled, batched; SHA-256-checked weights)."""
    from trabecula.enhance.infer import check_enhance_options, load_model
    from trabecula.enhance.infer import enhance as run_enhance
    from trabecula.enhance.protocol import protocol_line
    from trabecula.io import write_volume
    from trabecula.progress import progress_steps

    device = check_enhance_options(tile=tile, overlap=overlap, batch=batch, threads=threads, device=device)
    check_outputs(force, output, consistency_map)
    vol = read_input(src, input_spacing, units, series)
    lm = load_model(model, device)
    with progress_steps(f"enhance ({lm.label})", None) as advance:
        res = run_enhance(vol, lm, tile=tile, overlap=overlap, batch=batch, device=device, resample=resample,
                          threads=threads, progress=advance, allow_out_of_range=allow_out_of_range)
    write_volume(res, output, force=force)
    out.print(protocol_line(res.provenance.extra["enhance_input_protocol"]))
    out.print(f"wrote {output}  {res}  (model {lm.label}, weights sha256 {lm.sha256[:12]}…)")
    if check or consistency_map is not None:
        from trabecula.enhance.hallucination import check_enhanced

        r = check_enhanced(res, vol, lm, resample=resample)
        why = "; ".join(r.details.get("reasons", []))
        flag = f"[red]FLAGGED[/red]: {why}" if r.flagged else "[green]consistent[/green]"
        out.print(f"consistency score {r.score:.3f}, unsupported voxels {100 * r.unsupported_fraction:.2f} %, "
                  f"largest unsupported region {r.details['largest_unsupported_mm3']:.2f} mm³ — {flag}")
        if consistency_map is not None:
            write_volume(r.z_map, consistency_map, force=force)
            out.print(f"wrote {consistency_map} (z-scores of the re-degraded output's residual)")


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option(help="Pairs folder (its test split is evaluated).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the tables (CSV, Markdown) and summary.json.")],
    model: Annotated[list[str] | None, typer.Option(help="LABEL=MODEL (shipped name or .pt); repeat. Default: every shipped model.")] = None,
    fid_slices: Annotated[int, typer.Option(help="Test slices per method for FID/KID (seeded sample).")] = 96,
    split: Annotated[str, typer.Option(help="Split to evaluate: test or val.")] = "test",
    edge_test: Annotated[bool, typer.Option(help="Also measure noise SD and MTF50/MTF10 on a slanted edge (DLR/SR-DLR targets).")] = True,
    seed: Annotated[int, typer.Option(help="Random seed (FID sample, KID subsets, edge noise).")] = 0,
    threads: Threads = None,
    workers: Annotated[int, typer.Option(help="Evaluate specimens in this many parallel processes.")] = 1,
    max_slices: Annotated[int | None, typer.Option(help="Evaluate only the central N slices of each specimen (faster; VOIs shrink).")] = None,
    force: Force = False,
) -> None:
    """The study's evaluation on held-out specimens: SSIM, PSNR, FID, KID, morphometry tables, statistics, hallucination check."""
    from trabecula.enhance.checks import check_positive_int, check_threads
    from trabecula.pipeline.vertebra_study import run_evaluation

    check_threads(threads)
    check_positive_int(workers, "--workers", maximum=256)
    check_positive_int(fid_slices, "--fid-slices", maximum=1 << 20)
    if max_slices is not None:
        check_positive_int(max_slices, "--max-slices")
    models = {label: ref or label for label, _, ref in (m.partition("=") for m in model or [])}
    summary = run_evaluation(data, models or None, out_dir, split=split, fid_slices=fid_slices, seed=seed,
                             force=force, workers=workers, max_slices=max_slices, edge_test=edge_test, threads=threads)
    _print_evaluation(summary, out_dir)


def _print_evaluation(summary: dict, out_dir: Path) -> None:
    tables = summary["tables"]
    out.print(Path(tables["image_quality"]).read_text())
    for r in summary["image_quality"]:
        if r.get("consistency_score") is not None:
            out.print(f"hallucination check {r['method']}: mean consistency score {r['consistency_score']:.3f}, "
                      f"flagged {int(r['flagged_specimens'])} of {len(summary['specimens'])} specimens "
                      "(per specimen: consistency.csv)")
    for p in tables["morphometry"].values():
        out.print(Path(p).read_text())
    edge = summary.get("edge_test") or {}
    for k, v in {**edge.get("inputs", {}), **edge.get("models", {})}.items():
        extra = (f"; noise {v['noise_change_percent']:+.0f} %, MTF50 {v['mtf50_change_percent']:+.1f} %, "
                 f"MTF10 {v['mtf10_change_percent']:+.1f} % vs {v['against']}") if "against" in v else ""
        out.print(f"{k}: noise SD {v['noise_sd_hu']:.1f} HU, MTF50 {v['mtf50_lpmm']:.3f}, MTF10 {v['mtf10_lpmm']:.3f} lp/mm{extra}")
    out.print(f"wrote {out_dir}/ (summary.json, image_quality.*, table_*.csv/md, slices.csv, morphometry.csv, consistency.csv)")
