"""Deep-learning enhancement of clinical CT (``trabecula pairs|train|enhance``; the evaluation study is
:mod:`trabecula.pipeline.vertebra_study`).

* :mod:`.data` — paired training data: specimens scanned by the scanner twin at two doses and by micro-CT
  (:func:`make_pairs`), or your own registered pairs; the :class:`PairSet` reader and patch sampling;
* :mod:`.models` — DLR (DnCNN-style residual denoiser), SR-DLR (EDSR-style ×2 super-resolution),
  pix2pixHD (global generator + multi-scale discriminators) and the baselines pix2pix and CRN;
* :mod:`.train` — training (regression and GAN steps, validation, checkpoints, resume, multi-process);
* :mod:`.infer` — tiled, batched inference with SHA-256-checked shipped weights (:func:`enhance`);
* :mod:`.hallucination` — the data-consistency check that flags structure the input cannot support;
* :mod:`.bundle` — exporting a trained checkpoint as a shipped weights bundle (weights, manifest, config).

PyTorch loads only when a model is built or run.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "data": ["make_pairs", "PairSet", "pairs_from_folders", "write_pairs", "specimen_plan"],
        "models": ["build_network", "Enhancer", "count_parameters"],
        "train": ["TrainConfig", "train"],
        "infer": ["enhance", "enhance_array", "load_model", "shipped_models", "predict", "LoadedModel"],
        "hallucination": ["consistency_check", "check_enhanced", "ConsistencyResult"],
        "bundle": ["export_bundle"],
    },
)
