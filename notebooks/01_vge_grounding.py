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
# The last section does the same on real photographs of real people (crops of OpenCV's
# `vtest.avi`) with two models that really run offline here: `pose` (mediapipe's keypoints) and
# `cascade` (OpenCV's Haar cascades), beside `prior`.
#
# Run time: about 20 s with `smoke` on 2 CPU cores once the stores hold the answers; the first
# time about 20 s more to generate the synthetic domain and about 60 s more to cut the real crops
# and ground them. `paper` is the same for these backends, while an `mllm` on a GPU needs about a
# second per image and part.

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
REAL_FRAMES: int = 400  # frames of vtest.avi cut into real crops for the real-image section (0: skip it)
N_REAL_SHOW: int = 8  # real crops in the real box grid

# %%
from muva_lib.runs import check_notebook_parameters

check_notebook_parameters(globals(), "01_vge_grounding")  # an undeclared name (papermill -p TYPO ...) stops here

# %%
import json

import numpy as np
import pandas as pd
from PIL import Image

import muva_lib
from muva_lib import analysis, explore, grounding, human_parsing, tables, utils
from muva_lib.data import real as real_crops
from muva_lib.grounding.backends import cascade, pose
from muva_lib.viz import grounding as vg, human_parsing as vp

nb = muva_lib.notebook(PROTOCOL, METHOD, PRESET, SEED, overrides=OVERRIDES, device=DEVICE, run_dir=RUN_DIR,
                       name="01_vge_grounding")  # config, threads, seeds, device; no run (nb.run is never used)
cfg = nb.cfg
items = grounding.report.training_sample(DATASET, N_IMAGES)  # generates a synthetic domain the first time
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
views = grounding.report.build_views(items, vge, names, {"mllm": MLLM_MODEL, "detector": DETECTOR_MODEL},
                                     device=DEVICE, progress=True)

# %%
for name, view in views.items():
    print(f"{name} ({view.tag}): answers per part")
    print(tables.format_table(view.count_rows()), end="\n\n")
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
nb.save_figure(fig, "boxes_per_backend")
vg.inline_jpeg(fig)  # images of people display as JPEG (small notebook); the saved files are PNG + PDF

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
nb.save_figure(fig, "failure_gallery")
vg.inline_jpeg(fig)

# %%
print(f"{len(failures)} cases shown; kinds of change over the sample:")
print(tables.format_table([r for r in first.reason_rows() if r["reason"] != "ok"]))

# %% [markdown]
# ## Real photographs of real people
#
# The synthetic benchmark proves the chain; this section runs it on real pedestrians. The crops
# come from OpenCV's `vtest.avi` (a fixed camera over a square, Debian's `opencv-doc` package):
# OpenCV's HOG people detector finds the walkers, an IoU tracker with a colour check links them
# over frames, and each tracklet becomes one identity. Those identities are **pseudo-labels**: a
# person whose track broke has two ids, and a track that jumped between two walkers who crossed
# mixes them. Here only the crops matter, not the ids: the first `REAL_FRAMES` frames, every crop
# of the set (training, query and gallery).
#
# Three box sources on the same crops:
# - `pose`: mediapipe 0.10.14's 33-keypoint model (the wheel bundles it), parts from keypoints:
#   head from face points and shoulders, upper body from shoulders to hips, legs from hips to
#   ankles. It finds one upright person per crop well; it cannot tell which of two overlapping
#   people the crop is about, and occluded limbs come with low visibility (the part then falls
#   back). It is an optional install (see the README); without it this section shows the others.
# - `cascade`: OpenCV's Haar cascades (face, upper body = head and shoulders, lower body, full
#   body), best window each, parts by fixed rules. Grey-level templates from 2001: they miss most
#   15-pixel and back-facing faces and fire on background texture, so many parts fall back.
# - `prior`: fixed bands, read off the paper's 256 x 128 example; HOG crops frame people with a
#   margin, so the bands sit too high.

# %%
# NBVAL_IGNORE_OUTPUT
real_missing = real_crops.real_vtest_missing() if REAL_FRAMES > 0 else "REAL_FRAMES is 0"
if real_missing:
    print(f"real-image section skipped: {real_missing}")
else:
    real_root = real_crops.ensure_real_vtest(REAL_FRAMES)  # cuts the crops the first time (about 30 s)
    real = real_crops.real_items(real_root)
    real_names = ["cascade", "prior"] + ([] if pose.pose_missing() else ["pose"])
    real_views = grounding.report.build_views(real, vge, real_names, progress=True)
    print(pose.pose_missing() or "pose backend available")

# %%
if not real_missing:
    meta = json.loads((real_root / "meta.json").read_text())
    print("\n".join(real_crops.summary_lines(meta)))
    print(f"{len(real)} real crops grounded; cascade answers per part:")
    print(tables.format_table(real_views["cascade"].count_rows()))

# %% [markdown]
# ### Part boxes on real crops: pose, cascade, prior
#
# Raw answers (before calibration) on crops spread over the set. Red: head, green: upper body,
# blue: legs; a missing box is a part the backend could not place.

# %%
# NBVAL_IGNORE_OUTPUT
if not real_missing:
    real_show = utils.evenly_spaced(real, N_REAL_SHOW)
    order = [n for n in ("pose", "cascade", "prior") if n in real_views]
    fig = vg.boxes_grid(real_show, {n: [real_views[n].raw(it.key) for it in real_show] for n in order})
    nb.save_figure(fig, "real_boxes_per_backend")
vg.inline_jpeg(fig) if not real_missing else None

# %% [markdown]
# How often each backend places every part, how often those parts come in the order of an
# upright person (head above upper body above legs), and how the boxes agree between backends
# (per part, over the crops where both have a box: mean IoU, the share with IoU at least 0.3,
# and the mean overlap of the vertical extents, which is what the patch masks mostly keep). The
# cascade and prior numbers are exact for one OpenCV build; the pose numbers come from TFLite
# on the CPU and may move in the last digits on another machine. Both tables go to
# `figures/tables/real_placement.md` and `real_agreement.md` (and `.tex`).

# %%
# NBVAL_IGNORE_OUTPUT
if not real_missing:
    raw = {n: [v.raw(it.key) for it in real] for n, v in real_views.items()}
    crops = (f"{len(real)} crops of the first {meta['config']['max_frames']} frames of vtest.avi "
             f"(HOG on one frame in {meta['config']['step']})")
    placement = [analysis.placement_row(raw[n], backend=n) for n in order]
    nb.save_table(pd.DataFrame(placement), "real_placement", f"Raw part boxes on {crops}")
    pairs = [(a, b) for a, b in (("pose", "cascade"), ("pose", "prior"), ("cascade", "prior")) if a in raw]
    agreement = [{"backends": f"{a} vs {b}", **r}
                 for a, b in pairs for r in utils.rounded(cascade.agreement_rows(raw[a], raw[b]), 2)]
    nb.save_table(pd.DataFrame(agreement), "real_agreement",
                  f"Agreement of raw part boxes on {crops}: agree = share of crops with both boxes at IoU >= 0.3")
    print(tables.format_table(placement), tables.format_table(agreement), sep="\n\n")

# %%
if not real_missing:
    print("cascade vs prior (exact for one OpenCV build):")
    print(tables.format_table(utils.rounded(cascade.agreement_rows(raw["cascade"], raw["prior"]))))

# %% [markdown]
# ### Real failures
#
# Cascade answers that could not be used or that calibration (fitted on these real crops)
# changed: the raw box dashed, the calibrated one solid. Notebook `02_calibration` shows the
# statistics behind these fixes.

# %%
if not real_missing:
    real_failures = real_views["cascade"].failures(limit=8)
    fig = vg.failure_gallery(real_failures, ncols=8)
    nb.save_figure(fig, "real_failure_gallery")
vg.inline_jpeg(fig) if not real_missing else None

# %%
if not real_missing:
    print(tables.format_table([r for r in real_views["cascade"].reason_rows() if r["reason"] != "ok"]))

# %% [markdown]
# ## Parsing maps: pi-VL's part input
#
# pi-VL (the third method) is given human parsing maps where MUVA is given boxes. Here they are
# the synthetic benchmark's per-pixel ground truth, grouped into background / head / upper /
# lower / shoes; on real data they come from parsing PNGs (`parsing.source=png`, LIP / SCHP
# order) or a transformers segmentation model (`parsing.source=hf`). Maps are stored under
# `data/parsing/<dataset>/`; each patch of the run's grid (8 x 4 at the smoke preset's 128 x 64,
# 16 x 8 at the paper's 256 x 128) takes its majority label (`parsing.vote=majority`, the
# default), which is what pi-VL's dense part loss in stage 1 sees.

# %%
pcfg = nb.cfg_for("pivl").parsing
shown = utils.evenly_spaced(items, N_SHOW)
maps, grouping = human_parsing.parsing_maps_for(shown, pcfg)
grid = grounding.grid_for((cfg.data.height, cfg.data.width))
labels = human_parsing.grid_labels(maps, grid, grouping.num_parts + 1, pcfg.vote, pcfg.fg_share)
fig = vp.parsing_rows([Image.open(it.path) for it in shown], [maps[it.key] for it in shown],
                      grouping.class_names, [labels[it.key] for it in shown], grid)
nb.save_figure(fig, "parsing_maps")
fig

# %% [markdown]
# Share of the shown images' patches per part class, under the run's vote and under the
# foreground-favouring one (`parsing.vote=foreground`: a patch takes its most frequent part class
# once the parts together cover `parsing.fg_share`, 25%, of it). At the smoke grid the majority
# leaves most patches as background: a synthetic person is about a quarter of the image wide, so a
# 16 x 16 patch is mostly backdrop, some people keep only one or two part patches and shoes rarely
# win a cell. pi-VL's dense loss uses only the part patches, so at this budget it sees few of them
# per image; the foreground vote about doubles them. Its effect on pi-VL is the `fg-vote` ablation
# in `06_results`.

# %%
fg_labels = human_parsing.grid_labels(maps, grid, grouping.num_parts + 1, "foreground", pcfg.fg_share)
votes = {f"{pcfg.vote} (run)": labels, f"foreground, {pcfg.fg_share:.0%}": fg_labels}
counts = {v: np.bincount(np.concatenate([lab[it.key] for it in shown]), minlength=grouping.num_parts + 1)
          for v, lab in votes.items()}
print(tables.format_table([{"part class": name, **{v: f"{c[i]} ({c[i] / c.sum():.1%})" for v, c in counts.items()}}
                           for i, name in enumerate(grouping.class_names)]
                          + [{"part class": "part patches / image",
                              **{v: f"{np.mean([(lab[it.key] > 0).sum() for it in shown]):.1f}" for v, lab in votes.items()}}]))

# %% [markdown]
# The same count over every training image of the dataset, at the run's grid and at the paper's
# (16 x 8 at 256 x 128), under both votes: the share of background patches, part patches per
# image (mean and fewest), the share of images with at most two part patches, and for each part
# class the share of images with at least one patch of it. Written to
# `figures/tables/part_patches.md` (and `.tex`); ground truth, so the same everywhere.

# %%
all_items = grounding.report.training_sample(DATASET, 0)
all_maps, _ = human_parsing.parsing_maps_for(all_items, pcfg)
paper_data = muva_lib.resolve("pivl", "paper", PROTOCOL, SEED).data
paper_grid = grounding.grid_for((paper_data.height, paper_data.width))
patch_rows = []
for g in dict.fromkeys([grid, paper_grid]):
    for vote in ("majority", "foreground"):
        lab = human_parsing.grid_labels(all_maps, g, grouping.num_parts + 1, vote, pcfg.fg_share)
        stats = analysis.part_patch_stats(np.stack([lab[it.key] for it in all_items]), grouping.class_names)
        patch_rows.append(analysis.part_patch_row(stats, grid=f"{g[0]}x{g[1]}", vote=vote))
nb.save_table(pd.DataFrame(patch_rows), "part_patches",
              f"Patch labels of pi-VL's parsing maps, {DATASET} training images")
print(tables.format_table(patch_rows))

# %% [markdown]
# ## Summary
#
# The key numbers of this notebook, rounded: answers parsed / fell back / failed over all parts,
# and the mean IoU to the ground truth of raw and calibrated boxes, per backend; then the same
# counts on the real crops for the deterministic backends (no ground truth there).

# %%
summary = []
for name, view in views.items():
    counts = view.count_rows()
    iou = view.iou_rows()
    summary.append({"backend": name, "parsed": sum(r["parsed"] for r in counts),
                    "fell back": sum(r["fell back"] for r in counts), "failed": sum(r["failed"] for r in counts),
                    "IoU raw": None if iou is None else iou[-1]["raw"],
                    "IoU calibrated": None if iou is None else iou[-1]["calibrated"]})
print(tables.format_table(utils.rounded(summary)))
if not real_missing:
    real_summary = [{"backend": n, **{k: sum(r[k] for r in real_views[n].count_rows())
                                      for k in ("parsed", "fell back", "failed")}} for n in ("cascade", "prior")]
    print(f"\nreal crops ({len(real)}):")
    print(tables.format_table(real_summary))

# %% [markdown]
# ## Explore
#
# One training image at a time: the part boxes of a backend and the patch masks they become on the
# model's grid, with what the store recorded for each part (status, reason, calibration). Raise the
# synthetic backend's noise to `heavy` and toggle raw / calibrated to watch calibration pull outliers
# back into the band; switch to `cascade` or `pose` (when installed) to compare detectors.

# %%
explore.grounding_explorer(DATASET, n_images=N_IMAGES, vge=vge, input_hw=(cfg.data.height, cfg.data.width),
                           models={"mllm": MLLM_MODEL, "detector": DETECTOR_MODEL}, device=DEVICE)
