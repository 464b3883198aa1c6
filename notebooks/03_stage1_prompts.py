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
# # 03 · Stage 1: prompt learning
#
# Stage 1 learns one set of context words per identity while the encoders stay frozen: MUVA's
# multi-grained prompts (global, head, upper body, legs) are pulled towards the identity's
# visual prototypes (the mean feature of its images, VPM-1) with a cluster-contrastive loss;
# CLIP-ReID's single prompt is trained with image-to-text and text-to-image contrastive
# losses. This notebook shows the stage-1 curves of one run and asks whether each granularity's
# prompt has learned its identity: for each identity, is its text feature of granularity *g*
# nearest to its own visual prototype slice *g*? (Text-to-prototype retrieval accuracy; chance
# is one over the number of identities.)
#
# Run time: under a minute with `smoke` when the run exists (notebook 00 or
# `python -m muva_lib run` makes it; otherwise it is trained here first, about 2 minutes); the
# same with `paper`, whose runs must exist.
#
# **Guarded numbers.** Losses and accuracies come out of training and differ in the last bits
# between CPU micro-architectures, so they are printed in `NBVAL_IGNORE_OUTPUT` cells only; the
# compared cells print the config, counts and robust facts (the loss went down, every
# granularity is above chance).

# %% tags=["parameters"]
PROTOCOL: str = "synth-a->synth-b"  # protocol name shared by all notebooks (sets data.protocol)
METHOD: str = "muva"  # muva | clipreid
PRESET: str = "smoke"  # smoke | paper
SEED: int = 0  # run seed
DEVICE: str = "auto"  # auto | cpu | cuda | cuda:N (for the probes of the trained model)
RUN_DIR: str = ""  # a finished run folder; empty: the run of this config (trained now for smoke)
OVERRIDES: str = ""  # config overrides in the CLI grammar, space-separated (e.g. stage1.epochs set to 5)
N_SHOW: int = 24  # identities in the similarity matrices

# %%
from muva_lib.runs import check_notebook_parameters

check_notebook_parameters(globals(), "03_stage1_prompts")  # an undeclared name (papermill -p TYPO ...) stops here

# %%
import muva_lib
from muva_lib import analysis, tables
from muva_lib.models.prompt_learner import build_templates
from muva_lib.train import stage1_weights
from muva_lib.viz import save_figure
from muva_lib.viz import training as vt

NOTEBOOK = "03_stage1_prompts"
nb = muva_lib.notebook(PROTOCOL, METHOD, PRESET, SEED, overrides=OVERRIDES, device=DEVICE, run_dir=RUN_DIR,
                       name=NOTEBOOK)  # config, threads, seeds, device; RUN_DIR set: figures under it
cfg, device, FIG_DIR = nb.cfg, nb.device, nb.fig_dir
s1 = cfg.stage1
print(f"{METHOD} on {PROTOCOL} ({PRESET}): stage 1 {s1.epochs} epochs, lr {s1.lr:g}, batch {s1.batch_size}, "
      f"loss terms {stage1_weights(cfg)}")
print("prompts:", *build_templates(cfg.model.num_parts, cfg.model.template_type, cfg.model.domain_context,
                                   cfg.model.ctx_num), sep="\n  ")

# %%
# NBVAL_IGNORE_OUTPUT
run, result = nb.run, nb.result
print(f"run folder: {run.root}")

# %% [markdown]
# ## Loss curves
#
# Per epoch: the weighted total, each term, the in-batch accuracy the stage logs (MUVA: a text
# feature's nearest prototype is its own; CLIP-ReID: an image's nearest text in the batch is its
# identity's) and the learning rate (warm-up, then cosine).

# %%
fig = vt.loss_curves({METHOD: result.stage1}, title=f"stage 1 ({METHOD})")
save_figure(fig, NOTEBOOK, "stage1_curves", out_dir=FIG_DIR)
fig

# %%
print(f"{len(result.stage1)} epochs; loss decreased: {analysis.decreased(result.stage1)}; "
      f"accuracy rose: {result.stage1[-1]['acc'] > result.stage1[0]['acc']}")

# %% [markdown]
# ## Text-to-prototype retrieval per granularity
#
# The identity prompts through the frozen text encoder give one feature per granularity; the
# stage-1 cache gives each training image's feature, cut into the same slices (global = the
# CLS token, then one slice per part token). `all` compares the concatenations, which is what
# the MUVA loss trains.

# %%
# NBVAL_IGNORE_OUTPUT
text, feats, labels = analysis.stage1_probe(run.root, device)
acc = analysis.text_to_prototype_accuracy(text, feats, labels)
acc.update(analysis.text_to_prototype_accuracy(text.flatten(1)[:, None], feats, labels, names=["all"]))
chance = 1 / len(text)
print(tables.format_table([{"granularity": g, "accuracy": round(a, 4)} for g, a in acc.items()]))

# %%
fig = vt.accuracy_bars({METHOD: acc}, chance=chance, title="text -> own visual prototype")
save_figure(fig, NOTEBOOK, "text_to_prototype_accuracy", out_dir=FIG_DIR)
fig

# %%
print(f"{len(text)} identities (chance {chance:.4f}), {len(feats)} cached images; granularities: {list(acc)}")
print("every granularity above chance:", all(a > chance for a in acc.values()))

# %% [markdown]
# The similarities behind it, for the first identities: rows are text features, columns visual
# prototypes; a learned prompt lights up the diagonal.

# %%
sim = analysis.text_prototype_similarity(text, feats, labels)
names = analysis.granularity_names(sim.shape[0])
fig = vt.similarity_heatmap({g: sim[i].numpy() for i, g in enumerate(names)}, n_show=N_SHOW)
save_figure(fig, NOTEBOOK, "text_prototype_similarity", out_dir=FIG_DIR)
fig

# %%
diag = {g: bool(sim[i].diagonal().mean() > sim[i].mean()) for i, g in enumerate(names)}
print("true pairs more similar than the average pair:", diag)

# %% [markdown]
# ## Summary

# %%
print(f"{METHOD}: {len(result.stage1)} stage-1 epochs over {len(feats)} images of {len(text)} ids; "
      f"granularities {names}; all above chance: {all(a > chance for a in acc.values())}")

# %% [markdown]
# ## Explore
#
# The runs of this protocol side by side: stage-1 curves (prompt loss, accuracy, learning rate), the
# final metrics per target, and the configuration keys in which the runs differ. Select one run to read
# its curves alone.

# %%
# NBVAL_IGNORE_OUTPUT
from muva_lib.explore import runs_explorer

runs_explorer([p.parent for p in sorted(run.root.parents[1].glob("*/*/config.json"))], curves="stage 1")
