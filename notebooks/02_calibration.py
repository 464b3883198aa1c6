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
# # 02 · Calibration of the VGE boxes
#
# A grounding model boxes the whole person instead of the legs, or one slice of the legs, or
# nothing at all. MUVA calibrates the boxes before they become patch masks ("calibrated" is in
# the names of its mask files). This notebook fits the per-part statistics of box top, bottom,
# height and width over a dataset, shows the distribution of box heights before and after
# calibration (paper Fig. 5a: the spurious peak near the full image height and the tail of
# tiny heights), examples of oversized and over-split boxes before and after (Fig. 5b-d), and
# the mean IoU to the synthetic ground truth, raw vs calibrated, per part.
#
# The last section fits the same statistics on boxes that real models gave on real photographs
# (crops of OpenCV's `vtest.avi`, grounded by the `cascade` and `pose` backends): the real
# counterpart of Fig. 5a, and a gallery of the real failures calibration fixes.
#
# Thresholds are parameters of `VgeCfg` (`fence_k`, `min_spread`, `min_samples`, `fence_core`);
# see `muva_lib.grounding.calibrate` for the rules. Run time: about 20 s with `smoke` on 2 CPU
# cores once notebook 01 has run (its stores hold the answers); on its own the first time, about
# 20 s more to generate the synthetic domain and about 60 s more for the real crops. The same
# with `paper`.

# %% tags=["parameters"]
PROTOCOL: str = "synth-a->synth-b"  # protocol name shared by all notebooks (sets data.protocol)
METHOD: str = "muva"  # muva | clipreid | pivl
PRESET: str = "smoke"  # smoke | paper
SEED: int = 0  # run seed
DEVICE: str = "auto"  # auto | cpu | cuda | cuda:N (used by the mllm / detector backends)
RUN_DIR: str = ""  # run folder; empty: figures go to figures/02_calibration/
OVERRIDES: str = ""  # config overrides in the CLI grammar, space-separated (e.g. vge.noise set to heavy)
DATASET: str = "synth-a"  # dataset whose training images are grounded and calibrated
N_IMAGES: int = 0  # training images used, spread over the split (0: all)
N_EXAMPLES: int = 6  # boxes per before / after figure
REAL_FRAMES: int = 400  # frames of vtest.avi cut into real crops for the real-image section (0: skip it)

# %%
from muva_lib.runs import check_notebook_parameters

check_notebook_parameters(globals(), "02_calibration")  # an undeclared name (papermill -p TYPO ...) stops here

# %%
import numpy as np
import pandas as pd

import muva_lib
from muva_lib import explore, grounding, tables, utils
from muva_lib.data import real as real_crops
from muva_lib.grounding.backends import cascade as cascade_backend, pose as pose_backend
from muva_lib.viz import grounding as vg, robustness

nb = muva_lib.notebook(PROTOCOL, METHOD, PRESET, SEED, overrides=OVERRIDES, device=DEVICE, run_dir=RUN_DIR,
                       name="02_calibration")  # config, threads, seeds, device; no run (nb.run is never used)
cfg = nb.cfg
items = grounding.report.training_sample(DATASET, N_IMAGES)  # generates a synthetic domain the first time
vge = cfg.vge
print(f"{DATASET}: {len(items)} training images; backend {vge.backend!r}, noise preset {vge.noise!r}")
print(f"fences: k={vge.fence_k}, min spread {vge.min_spread}, core {vge.fence_core}, "
      f"min samples {vge.min_samples}")

# %% [markdown]
# ## Ground and calibrate
#
# The backend of the config (`vge.backend`, the synthetic one by default) grounds the images
# (or reads its store); the statistics are fitted on these images, then every box gets a
# calibrated box and a reason code.

# %%
# NBVAL_IGNORE_OUTPUT
view = grounding.report.build_views(items, vge, [vge.backend], {vge.backend: vge.model}, device=DEVICE,
                                    progress=True)[vge.backend]

# %%
print(tables.format_table(view.count_rows()), end="\n\n")
print("per-part statistics of the normalised box height (fractions of the image height):")
print(tables.format_table(utils.rounded(view.stats_rows(), 3)))

# %% [markdown]
# ## Box heights, raw vs calibrated (paper Fig. 5a)
#
# Normalised heights of the boxes per part (log counts). The raw leg boxes show the two failure
# modes the paper describes: a peak near the full image height (the whole person) and a tail of
# small heights (a slice of the legs); after calibration both collapse onto the main mode,
# which matches the ground truth.

# %%
heights = {"raw": view.heights("raw"), "calibrated": view.heights("calibrated")}
if view.truth is not None:
    heights["ground truth"] = view.heights("truth")
fig = vg.height_histograms(heights)
nb.save_figure(fig, "height_histograms")
fig

# %%
legs = {name: h["legs"] for name, h in heights.items()}
print("share of leg boxes taller than 0.75 of the image:",
      ", ".join(f"{name} {(h > 0.75).mean():.4f}" for name, h in legs.items()))
print("share of leg boxes shorter than 0.25 of the image:",
      ", ".join(f"{name} {(h < 0.25).mean():.4f}" for name, h in legs.items()))

# %% [markdown]
# ## Oversized boxes, before and after (Fig. 5b)
#
# Boxes taller than the upper fence of their part (often the whole person): top and bottom are
# clipped into the part's band, the width too when it is outside its fence.

# %%
oversized = view.cases("oversized", limit=N_EXAMPLES)
fig = vg.before_after(oversized, "oversized -> clipped to the band")
nb.save_figure(fig, "oversized_before_after")
vg.inline_jpeg(fig)  # images of people display as JPEG (small notebook); the saved files are PNG + PDF

# %%
print("oversized boxes per part:", view.reason_totals("oversized"))

# %% [markdown]
# ## Over-split boxes, before and after (Fig. 5c, d)
#
# Boxes shorter than the lower fence (a slice of the part): extended to cover the band.

# %%
oversplit = view.cases("oversplit", limit=N_EXAMPLES)
fig = vg.before_after(oversplit, "over-split -> extended over the band")
nb.save_figure(fig, "oversplit_before_after")
vg.inline_jpeg(fig)

# %%
print("over-split boxes per part:", view.reason_totals("oversplit"))

# %% [markdown]
# ## Every reason code, and the IoU to the ground truth
#
# How many boxes each rule changed, and the mean IoU of raw and calibrated boxes to the
# synthetic ground truth per part (a part with no raw box counts IoU 0; parts invisible in the
# image are left out). Calibration has to raise it.

# %%
print(tables.format_table(view.reason_rows()), end="\n\n")
iou = view.iou_rows()
print(tables.format_table(utils.rounded(iou)) if iou is not None else "no ground truth for this dataset")
if iou is not None:  # the README's IoU table
    nb.save_table(pd.DataFrame(utils.rounded(iou, 3)), "calibration_iou", f"Mean IoU to the ground truth, {DATASET} "
                  f"training images, {vge.backend} backend, noise {vge.noise}")

# %% [markdown]
# ## Real crops: calibration on real boxes
#
# The same statistics, fitted on boxes that models which really run here gave on real
# photographs: crops of real pedestrians cut from OpenCV's `vtest.avi` by HOG detection and
# tracking (their identities are noisy pseudo-labels, irrelevant here; notebook 01 shows the
# crops), grounded by `cascade` (OpenCV's Haar cascades, parts by fixed rules) and, when
# mediapipe is installed, `pose` (keypoints). There is no ground truth on real crops, so no IoU:
# what calibration does shows in the height distributions and in the boxes it changes.

# %%
# NBVAL_IGNORE_OUTPUT
real_missing = real_crops.real_vtest_missing() if REAL_FRAMES > 0 else "REAL_FRAMES is 0"
if real_missing:
    print(f"real-image section skipped: {real_missing}")
else:
    real = real_crops.real_items(real_crops.ensure_real_vtest(REAL_FRAMES))  # notebook 01's crops (cut here if missing)
    real_names = ["cascade"] + ([] if pose_backend.pose_missing() else ["pose"])
    real_views = grounding.report.build_views(real, vge, real_names, progress=True)
    print(pose_backend.pose_missing() or "pose backend available")

# %%
if not real_missing:
    cascade = real_views["cascade"]
    print(f"{len(real)} real crops; cascade answers and statistics of its normalised box heights:")
    print(tables.format_table(cascade.count_rows()), end="\n\n")
    print(tables.format_table(utils.rounded(cascade.stats_rows(), 3)))

# %% [markdown]
# ### Box heights on real crops, raw vs calibrated (the real Fig. 5a)
#
# The cascade's raw boxes scatter: face windows are small and often not on the face, the
# lower-body window sometimes covers the knees only; parts it could not place are missing from
# the raw histogram. After calibration every crop has every part, and heights outside the fences
# are pulled into the band of the bulk.

# %%
if not real_missing:
    real_heights = {"cascade raw": cascade.heights("raw"), "cascade calibrated": cascade.heights("calibrated")}
    fig = vg.height_histograms(real_heights)
    nb.save_figure(fig, "real_height_histograms_cascade")
fig if not real_missing else None

# %%
if not real_missing:
    for name, h in real_heights.items():
        print(f"{name:>18}: boxes per part " + ", ".join(f"{p} {len(v)}" for p, v in h.items())
              + "; median height " + ", ".join(f"{p} {np.median(v):.4f}" for p, v in h.items()))

# %% [markdown]
# The pose model's boxes, for comparison: keypoints put the parts where the body is, so its raw
# heights are already tight and calibration changes few of them (pose numbers come from TFLite
# on the CPU and may move in the last digits on another machine).

# %%
# NBVAL_IGNORE_OUTPUT
if not real_missing and "pose" in real_views:
    pose = real_views["pose"]
    fig = vg.height_histograms({"pose raw": pose.heights("raw"), "pose calibrated": pose.heights("calibrated")})
    nb.save_figure(fig, "real_height_histograms_pose")
    print(tables.format_table([r for r in pose.reason_rows() if r["reason"] != "ok"]))
fig if not real_missing and "pose" in real_views else None

# %% [markdown]
# ### Real failures calibration fixes
#
# Cascade boxes calibration changed, one of each kind in turn: missing parts filled from the
# band, oversized face windows clipped, boxes outside the band moved, parts out of order. Top:
# the raw answer (dashed, absent when the part was missing); bottom: the calibrated box.
# Calibration fixes heights and vertical positions; it keeps the horizontal centre of a box it
# moves, so a face window that fired on the background beside the person stays beside the person.

# %%
if not real_missing:
    real_fixed = cascade.failures(limit=8)
    fig = vg.before_after(real_fixed, "real cascade boxes: raw -> calibrated")
    nb.save_figure(fig, "real_failures_before_after")
vg.inline_jpeg(fig) if not real_missing else None

# %%
if not real_missing:
    print(tables.format_table(cascade.reason_rows()))

# %% [markdown]
# Does calibration bring the cascade's boxes closer to the pose model's? Agreement with the raw
# pose boxes (mean IoU, share with IoU at least 0.3, overlap of the vertical extents) of the raw
# and of the calibrated cascade boxes, per part, over the crops where both have a box.

# %%
# NBVAL_IGNORE_OUTPUT
if not real_missing and "pose" in real_views:
    pose_raw = [pose.raw(it.key) for it in real]
    for label, boxes in (("raw", [cascade.raw(it.key) for it in real]),
                         ("calibrated", [cascade.calibrated(it.key) for it in real])):
        print(f"pose vs cascade {label}:")
        print(tables.format_table(utils.rounded(cascade_backend.agreement_rows(pose_raw, boxes))), end="\n\n")

# %% [markdown]
# ## How robust is calibration? IoU against the failure rate
#
# Every failure rate of the synthetic VGE is a config field (`vge.noise_missing`,
# `vge.noise_oversize`, ...; `vge.noise` names the preset that fills the others), so the sweep
# needs no code change: `sweep_failure_rate` sets one rate for every part, keeps the `paper`
# preset's other rates, answers in memory (no store, no training) and scores raw and calibrated
# boxes of 320 of the images against the ground truth. Missing parts are filled from the band
# at any rate; whole-person boxes are fixed only while the fences of the quartile core hold,
# i.e. while they stay a minority on one side of the distribution (beyond about 40 %
# calibration stops helping, and can hurt).

# %%
from muva_lib.grounding import failure_sweep

RATES = (0.0, 0.15, 0.3, 0.45, 0.6)
sweep_items = utils.evenly_spaced(items, 320)  # a few hundred images keep the cell to a few seconds
sweep = [row for rate in ("missing", "oversize") for row in
         failure_sweep.sweep_failure_rate(sweep_items, rate, RATES, preset="paper", cfg=grounding.CalibCfg.from_vge(vge),
                                          seed=vge.noise_seed)
         ] if view.truth is not None else []  # needs the synthetic ground truth
if sweep:
    fig = robustness.iou_vs_rate(sweep)
    nb.save_figure(fig, "iou_vs_failure_rate")
fig if sweep else print(f"{DATASET} has no ground truth: no sweep")

# %%
print(tables.format_table(utils.rounded([{k: r[k] for k in ("rate", "value", "part", "raw", "calibrated", "gain")}
                                         for r in sweep if r["part"] == "mean"])) if sweep else "")

# %% [markdown]
# ## Summary
#
# The key numbers, rounded: mean IoU raw and calibrated per part; on the real crops, how many
# cascade boxes each rule changed per part.

# %%
if iou is not None:
    print(" ".join(f"{r['part']} {r['raw']:.4f}->{r['calibrated']:.4f}" for r in iou))
if not real_missing:
    print("real crops, cascade boxes changed per part: " + ", ".join(
        f"{p} {sum(r['boxes'] for r in cascade.reason_rows() if r['part'] == p and r['reason'] != 'ok')}"
        for p in cascade.parts))

# %% [markdown]
# ## Explore
#
# The calibration thresholds as sliders. Lower fence k or min spread to make the fences tighter: more
# boxes are replaced by the band (the calibrated histogram moves and the count of changed boxes grows),
# and the IoU table says whether that helps or hurts against the ground truth. Above min samples a part
# uses its own statistics; below it, the fixed prior bands.

# %%
explore.calibration_explorer(DATASET, n_images=N_IMAGES, backend=vge.backend, vge=vge)
