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
# # 04 · Stage 2: fine-tuning the image encoder
#
# Stage 2 trains the image encoder with the frozen prompts' text features as a classifier. MUVA
# combines the ID loss, the image-to-text loss, the prototype-memory loss (VPM-2, rebuilt every
# epoch and updated with the hardest positive of each identity) and the BCE + Dice mask loss on
# every block's predicted part masks; CLIP-ReID uses ID losses on two heads, a triplet loss and
# the image-to-text loss. This notebook shows every loss term over the epochs, the learning
# rates, statistics of the visual prototype memory of the final model, and the target-domain
# mAP over the epochs at which the run was evaluated.
#
# Run time: under a minute with `smoke` when the run exists (otherwise it is trained here first,
# about 2 minutes); the same with `paper`, whose runs must exist.
#
# **Guarded numbers.** Loss values, memory similarities and mAP come out of training and differ
# in the last bits between CPU micro-architectures: they appear only in `NBVAL_IGNORE_OUTPUT`
# cells. Compared cells print the loss terms and their weights, the learning-rate schedule
# (pure arithmetic on the config), counts, and robust facts (the total loss went down; most
# images are nearer their own prototype than any other).

# %% tags=["parameters"]
PROTOCOL: str = "synth-a->synth-b"  # protocol name shared by all notebooks (sets data.protocol)
METHOD: str = "muva"  # muva | clipreid
PRESET: str = "smoke"  # smoke | paper
SEED: int = 0  # run seed
DEVICE: str = "auto"  # auto | cpu | cuda | cuda:N (for the probes of the trained model)
RUN_DIR: str = ""  # a finished run folder; empty: the run of this config (trained now for smoke)
OVERRIDES: str = ""  # config overrides in the CLI grammar, space-separated (e.g. stage2.epochs set to 4)
EVAL_PERIOD: int = 2  # when the run is trained here: evaluate the target every k stage-2 epochs

# %%
from muva_lib.runs import check_notebook_parameters

check_notebook_parameters(globals(), "04_stage2_training")  # an undeclared name (papermill -p TYPO ...) stops here

# %%
import muva_lib
from muva_lib import analysis, tables
from muva_lib.train import stage2_weights
from muva_lib.viz import save_figure
from muva_lib.viz import training as vt

NOTEBOOK = "04_stage2_training"
extra = [f"stage2.eval_period={EVAL_PERIOD}"] if EVAL_PERIOD else []
nb = muva_lib.notebook(PROTOCOL, METHOD, PRESET, SEED, overrides=OVERRIDES.split() + extra, device=DEVICE,
                       run_dir=RUN_DIR, name=NOTEBOOK)  # config, threads, seeds, device; RUN_DIR set: figures under it
cfg, device, FIG_DIR = nb.cfg, nb.device, nb.fig_dir
s2 = cfg.stage2
print(f"{METHOD} on {PROTOCOL} ({PRESET}): stage 2 {s2.epochs} epochs, base lr {s2.base_lr:g}, "
      f"warm-up {s2.warmup_epochs}, milestones {list(s2.milestones)}, batch {cfg.data.batch_size}")
print("loss terms and weights:", stage2_weights(cfg))

# %%
# NBVAL_IGNORE_OUTPUT
run, result = nb.run, nb.result
print(f"run folder: {run.root}")

# %% [markdown]
# ## Every loss term over the epochs
#
# Unweighted epoch means of each term (the total is weighted), the training ID accuracy and the
# base learning rate (the mask predictors run at `rmp_lr_mult` times it).

# %%
fig = vt.loss_curves({METHOD: result.stage2}, title=f"stage 2 ({METHOD})")
save_figure(fig, NOTEBOOK, "stage2_curves", out_dir=FIG_DIR)
fig

# %%
terms = [k[5:] for k in vt.curve_keys({METHOD: result.stage2}) if k.startswith("loss_")]
print(f"{len(result.stage2)} epochs; terms logged: {terms}; total loss decreased: {analysis.decreased(result.stage2)}")
print("base lr per epoch:", [f"{r['lr']:.2e}" for r in result.stage2])

# %% [markdown]
# ## The visual prototype memory
#
# VPM-2 of the final model, built as stage 2 builds it every epoch: each training image's
# normalised BN feature (VGE masks for MUVA), averaged per identity. A useful memory keeps each
# image closer to its own prototype than to any other; the histograms show both similarities
# over the training set (CLIP-ReID trains without the memory loss: its memory is shown for
# comparison).

# %%
# NBVAL_IGNORE_OUTPUT
bank, x, labels = analysis.memory_probe(run.root, device)
stats = analysis.memory_stats(bank, x, labels)
own, other = analysis.memory_similarities(bank, x, labels)
print(tables.format_table([{k: round(v, 4) for k, v in stats.items()}]))
print("seconds per memory rebuild:", [round(r.get("memory_s", 0.0), 1) for r in result.stage2])

# %%
fig = vt.similarity_histograms(own, other, title=f"VPM-2 of the final {METHOD} model")
save_figure(fig, NOTEBOOK, "memory_similarities", out_dir=FIG_DIR)
fig

# %%
print(f"memory of {bank.shape[0]} prototypes x {bank.shape[1]} dims over {len(x)} images; "
      f"most images nearest their own prototype: {stats['nearest_own'] > 0.5}")

# %% [markdown]
# ## Target mAP over the epochs
#
# The run's evaluations on the target domain (`stage2.eval_period`; the last point is the
# final evaluation, the number the tables report: no model selection on the target).

# %%
fig = vt.metric_curves({METHOD: result.evals})
save_figure(fig, NOTEBOOK, "target_map", out_dir=FIG_DIR)
fig

# %%
# NBVAL_IGNORE_OUTPUT
print(tables.format_table([{"epoch": r["epoch"], "target": r["target"], "mAP": tables.fmt_pct(r["mAP"]),
                            "R1": tables.fmt_pct(r["rank1"])} for r in result.evals]))

# %% [markdown]
# ## Summary

# %%
print(f"{METHOD}: {len(result.stage2)} stage-2 epochs, terms {terms}, evaluated at epochs "
      f"{[r['epoch'] for r in result.evals]}; loss decreased: {analysis.decreased(result.stage2)}")

# %% [markdown]
# ## Explore
#
# The same for stage 2: each loss term per epoch, and under "target metrics" mAP and rank-1 over the
# evaluated epochs, for every run of this protocol; the config differences say what separates two
# curves.

# %%
# NBVAL_IGNORE_OUTPUT
from muva_lib.explore import runs_explorer

runs_explorer([p.parent for p in sorted(run.root.parents[1].glob("*/*/config.json"))], curves="stage 2")
