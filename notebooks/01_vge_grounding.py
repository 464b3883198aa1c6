# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · VGE grounding: part boxes per backend
#
# The visual grounding expert (VGE) gives every training image three part boxes (head, upper
# body, legs) before training; they become the patch masks of AM-MSA. This notebook grounds a
# sample of a dataset's training images with each backend, shows the boxes side by side (paper
# Fig. 4), a gallery of the answers that failed or that calibration had to fix, and the
# answer counts: parsed, fell back, failed.
#
# Backends: `synthetic` (the benchmark's true boxes through a noise model with the paper's
# failure modes, answered as CogVLM text), `prior` (fixed bands), and, when a model is given,
# `mllm` (an image-text-to-text model, e.g. Qwen2.5-VL) and `detector` (Grounding DINO / OWLv2).
#
# Run time: about 15 s with `smoke` on 2 CPU cores (plus about 20 s the first time, to generate
# the synthetic domain); `paper` is the same for the synthetic and prior backends, while an
# `mllm` on a GPU needs about a second per image and part.

# %% tags=["parameters"]
PROTOCOL: str = "synth-a->synth-b"  # protocol name shared by all notebooks (sets data.protocol)
METHOD: str = "muva"  # muva | clipreid | pivl
PRESET: str = "smoke"  # smoke | paper
SEED: int = 0  # run seed
DEVICE: str = "auto"  # auto | cpu | cuda | cuda:N (used by the mllm / detector backends)
RUN_DIR: str = ""  # run folder; empty: figures go to figures/01_vge_grounding/
OVERRIDES: str = ""  # config overrides in the CLI grammar, space-separated (e.g. vge.noise set to heavy)
DATASET: str = "synth-a"  # dataset whose training images are grounded
BACKENDS: str = "synthetic,prior"  # comma-separated backends to compare, first one drives the gallery
MLLM_MODEL: str = ""  # hub id or local folder of an image-text-to-text model; empty: no mllm row
DETECTOR_MODEL: str = ""  # hub id or local folder of Grounding DINO / OWLv2; empty: no detector row
N_IMAGES: int = 240  # training images grounded per backend, spread over the split (0: all)
N_SHOW: int = 6  # images in the box grid

# %%
from pathlib import Path

from muva_lib import config
from muva_lib.grounding.report import build_views, rounded, training_sample
from muva_lib.tables import format_table
from muva_lib.utils import set_threads
from muva_lib.viz import grounding as vg
from muva_lib.viz import save_figure

NOTEBOOK = "01_vge_grounding"
cfg = config.resolve(METHOD, PRESET, PROTOCOL, SEED, OVERRIDES)
set_threads(cfg.threads)
FIG_DIR = Path(RUN_DIR) / "figures" if RUN_DIR else None
items = training_sample(DATASET, N_IMAGES)  # generates a synthetic domain the first time
vge = cfg.vge
print(f"{DATASET}: {len(items)} training images; noise preset {vge.noise!r}; calibration fences "
      f"k={vge.fence_k}, min spread {vge.min_spread}, core {vge.fence_core}")

# %% [markdown]
# ## Grounding
#
# Each backend answers one prompt per part and image ("Guide me to the location of the legs of
# the person within the image by providing its bounding boxes"); answers go to the grounding
# store under `data/grounding/<dataset>/`, so a second run only reads them back. Calibration
# is fitted on the sample shown here.

# %%
# NBVAL_IGNORE_OUTPUT
names = [b.strip() for b in BACKENDS.split(",") if b.strip()]
names += [n for n, m in (("mllm", MLLM_MODEL), ("detector", DETECTOR_MODEL)) if m and n not in names]
views = build_views(items, vge, names, {"mllm": MLLM_MODEL, "detector": DETECTOR_MODEL}, device=DEVICE, progress=True)

# %%
for name, view in views.items():
    print(f"{name} ({view.tag}): answers per part")
    print(format_table(view.count_rows()), end="\n\n")
not_run = [n for n in ("mllm", "detector") if n not in views]
if not_run:
    print(f"not run: {', '.join(not_run)} (no model given; to add their rows pass "
          "-p MLLM_MODEL <hub id or folder> and / or -p DETECTOR_MODEL <hub id or folder> to papermill)")

# %% [markdown]
# ## Part boxes per backend (paper Fig. 4)
#
# The raw answers of each backend on the first images of the sample, with the ground truth of
# the synthetic benchmark in the last row. Red: head, green: upper body, blue: legs.

# %%
show = items[:N_SHOW]
rows = {name: [view.raw(it.key) for it in show] for name, view in views.items()}
first = next(iter(views.values()))
if first.truth is not None:
    rows["ground truth"] = [first.truth[it.key] for it in show]
fig = vg.boxes_grid(show, rows)
save_figure(fig, NOTEBOOK, "boxes_per_backend", out_dir=FIG_DIR)
fig

# %%
for name, view in views.items():
    iou = view.iou_rows()
    if iou is not None:
        print(f"{name}: mean IoU of the raw boxes to the ground truth {iou[-1]['raw']:.4f}")

# %% [markdown]
# ## Failure gallery
#
# Answers of the first backend that could not be used (no box, invalid box) or whose box the
# calibration changed: the raw answer dashed, the calibrated box solid, with the answer's
# status, the reason, and the start of the answer text.

# %%
failures = first.failures(limit=8)
fig = vg.failure_gallery(failures, ncols=8)
save_figure(fig, NOTEBOOK, "failure_gallery", out_dir=FIG_DIR)
fig

# %%
print(f"{len(failures)} cases shown; kinds of change over the sample:")
print(format_table([r for r in first.reason_rows() if r["reason"] != "ok"]))

# %% [markdown]
# ## Summary
#
# The key numbers of this notebook, rounded: answers parsed / fell back / failed over all parts,
# and the mean IoU to the ground truth of raw and calibrated boxes, per backend.

# %%
summary = []
for name, view in views.items():
    counts = view.count_rows()
    iou = view.iou_rows()
    summary.append({"backend": name, "parsed": sum(r["parsed"] for r in counts),
                    "fell back": sum(r["fell back"] for r in counts), "failed": sum(r["failed"] for r in counts),
                    "IoU raw": None if iou is None else iou[-1]["raw"],
                    "IoU calibrated": None if iou is None else iou[-1]["calibrated"]})
print(format_table(rounded(summary)))
