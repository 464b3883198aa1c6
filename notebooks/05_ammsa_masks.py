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
# # 05 · AM-MSA: predicted part masks and attention
#
# In every block of MUVA's encoder a residual mask predictor adds to the part-patch mask logits;
# the accumulated mask gates the attention between each part token and the patches (offline
# gating: a part token sees exactly the patches its mask keeps). Training pulls these masks
# towards the VGE's patch masks (BCE + Dice). This notebook runs a finished MUVA model on
# training images without the VGE masks, as at test time, and shows the predicted mask of each
# block and part beside the VGE mask, the mask IoU per block (does depth refine the mask?), and
# where the CLS and part tokens attend over the patch grid.
#
# Run time: under a minute with `smoke` when the run exists (otherwise it is trained here first,
# about 2 minutes); the same with `paper`, whose runs must exist. A method without part tokens
# (CLIP-ReID) has no masks: the cells then say so and do nothing.
#
# **Guarded numbers.** IoUs and attention shares depend on trained weights (last-bit differences
# between CPU micro-architectures), so they are printed in `NBVAL_IGNORE_OUTPUT` cells; compared
# cells print shapes, counts and robust facts (every part's mask beats the trivial all-patches
# mask; a part token's attention never leaves its predicted mask, which is what the gating
# guarantees).

# %% tags=["parameters"]
PROTOCOL: str = "synth-a->synth-b"  # protocol name shared by all notebooks (sets data.protocol)
METHOD: str = "muva"  # a method with part tokens (muva); others have no masks to show
PRESET: str = "smoke"  # smoke | paper
SEED: int = 0  # run seed
DEVICE: str = "auto"  # auto | cpu | cuda | cuda:N (for the probes of the trained model)
RUN_DIR: str = ""  # a finished run folder; empty: the run of this config (trained now for smoke)
OVERRIDES: str = ""  # config overrides in the CLI grammar, space-separated (e.g. model.gate_thresh set to 0.4)
N_IMAGES: int = 96  # training images for the IoU and attention statistics, spread over the split
N_SHOW: int = 2  # images in the figures

# %%
from muva_lib.runs import check_notebook_parameters

check_notebook_parameters(globals(), "05_ammsa_masks")  # an undeclared name (papermill -p TYPO ...) stops here

# %%
import torch

import muva_lib
from muva_lib import analysis, tables
from muva_lib.data import PARTS, protocols
from muva_lib.utils import evenly_spaced
from muva_lib.viz import masks as vm
from muva_lib.viz import save_figure

NOTEBOOK = "05_ammsa_masks"
nb = muva_lib.notebook(PROTOCOL, METHOD, PRESET, SEED, overrides=OVERRIDES, device=DEVICE, run_dir=RUN_DIR,
                       name=NOTEBOOK)  # config, threads, seeds, device; RUN_DIR set: figures under it
cfg, device, FIG_DIR = nb.cfg, nb.device, nb.fig_dir
parts = list(PARTS[:cfg.model.num_parts])
items = evenly_spaced(list(protocols.build(PROTOCOL, with_targets=False).train), N_IMAGES)
print(f"{METHOD} on {PROTOCOL} ({PRESET}): {cfg.model.num_parts} part tokens {parts}, gating "
      f"{cfg.model.gating!r} at {cfg.model.gate_thresh}, mask loss {cfg.stage2.mask_loss!r}; {len(items)} images")

# %%
# NBVAL_IGNORE_OUTPUT
run = nb.run
probe = analysis.mask_probe(run.root, items, device) if parts else None
print(f"run folder: {run.root}" + ("" if parts else f"; {METHOD} has no part tokens: nothing to show"))

# %% [markdown]
# ## Predicted vs VGE masks, per block and part
#
# Each row is one part of one image; the first column is the VGE mask the model was trained
# towards, the others the gate of each block (sigmoid of the accumulated logits above the
# threshold). The model sees no VGE mask here.

# %%
if probe is not None:
    pred = analysis.predicted_masks(probe.logits, probe.tau, probe.thresh)
    thumbs = vm.load_thumbs([it.path for it in items[:N_SHOW]], (cfg.data.height, cfg.data.width))
    fig = vm.mask_layers(thumbs, probe.vge[:N_SHOW].numpy(), pred[:N_SHOW].numpy(), probe.grid_hw, parts)
    save_figure(fig, NOTEBOOK, "masks_per_block", out_dir=FIG_DIR)
fig if probe is not None else None

# %%
if probe is not None:
    print(f"{len(probe.logits)} blocks x {len(parts)} parts x {probe.vge.shape[-1]} patches "
          f"({probe.grid_hw[0]}x{probe.grid_hw[1]} grid), {len(items)} images")

# %% [markdown]
# ## Mask IoU per block: does depth refine the mask?
#
# Mean IoU over the images between each block's predicted mask and the VGE mask. The all-patches
# mask (every patch in every part) is the trivial reference; its IoU is the share of patches the
# VGE gives the part.

# %%
# NBVAL_IGNORE_OUTPUT
if probe is not None:
    iou = analysis.mask_iou_per_layer(probe.logits, probe.vge, probe.tau, probe.thresh)
    trivial = analysis.mask_iou(torch.ones_like(probe.vge), probe.vge).mean(0).numpy()
    rows = [{"block": b + 1, **{p: round(float(iou[b, j]), 4) for j, p in enumerate(parts)}} for b in range(len(iou))]
    print(tables.format_table(rows + [{"block": "all patches", **{p: round(float(t), 4) for p, t in zip(parts, trivial)}}]))
    print("IoU change from the first to the last block:",
          ", ".join(f"{p} {iou[-1, j] - iou[0, j]:+.4f}" for j, p in enumerate(parts)))

# %%
if probe is not None:
    fig = vm.iou_per_layer(iou, parts, title="predicted vs VGE mask")
    save_figure(fig, NOTEBOOK, "mask_iou_per_block", out_dir=FIG_DIR)
fig if probe is not None else None

# %%
if probe is not None:
    print("last block beats the all-patches mask for every part:", bool((iou[-1] > trivial).all()))

# %% [markdown]
# ## Attention of the CLS and part tokens over the patches
#
# Last block, heads averaged, each token's attention over the patches renormalised to sum to
# one. With offline gating a part token attends only inside its predicted mask; how much of it
# lands inside the VGE mask says whether the prediction found the part.

# %%
if probe is not None:
    maps = analysis.token_attention(probe.attn[-1][:N_SHOW], len(parts), probe.grid_hw)
    fig = vm.attention_maps(thumbs, maps.numpy(), ["CLS", *parts])
    save_figure(fig, NOTEBOOK, "token_attention", out_dir=FIG_DIR)
fig if probe is not None else None

# %%
# NBVAL_IGNORE_OUTPUT
if probe is not None:
    in_vge = analysis.attention_inside(probe.attn[-1], probe.vge, len(parts)).mean(0)
    print("share of part-token attention inside the VGE mask:",
          ", ".join(f"{p} {v:.4f}" for p, v in zip(parts, in_vge.tolist())))

# %%
if probe is not None:
    outside = analysis.attention_inside(probe.attn[-1], ~pred[:, -1], len(parts), share=False)
    print("part-token attention outside its own predicted mask (largest):", f"{float(outside.max()):.4f}")

# %% [markdown]
# ## Summary

# %%
if probe is not None:
    print(f"{METHOD}: {len(probe.logits)} blocks, parts {parts}; masks beat all-patches: "
          f"{bool((iou[-1] > trivial).all())}; attention stays in the predicted mask: {float(outside.max()) < 1e-6}")
else:
    print(f"{METHOD}: no part tokens")

# %% [markdown]
# ## Explore
#
# Pick an image, a block and a part: the VGE mask, that block's predicted mask, where the CLS and part
# tokens attend, and the mask IoU per block (over all the images above) with the current block circled.
# Step the block slider to see whether depth refines the mask; a part token's attention stays inside its
# predicted mask.

# %%
# NBVAL_IGNORE_OUTPUT
from muva_lib.explore import masks_explorer

masks_explorer(run.root, items, device=DEVICE) if parts else print(f"{METHOD}: no part tokens")
