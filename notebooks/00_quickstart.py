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
# # 00 · Quickstart: the whole chain on the synthetic benchmark
#
# One protocol end to end: synthesise the domains, read them back as a re-ID dataset, ground
# and calibrate the part boxes (the VGE), rasterise them into patch masks, train both stages of
# MUVA and of the CLIP-ReID baseline, and evaluate on the unseen target domain beside a
# training-free colour-histogram baseline and the frozen CLIP image encoder the methods start from
# (zero-shot: no re-ID training). With `smoke` that CLIP is the workbench's own tiny CLIP,
# pretrained on a synthetic captioned corpus of other identities (`model.pretrained=synth`,
# notebook 07; `model.pretrained=` gives the random-init ablation). This is what `make demo` runs.
# It reproduces no paper figure; it is the smallest complete run of the pipeline.
#
# Run time with `smoke` on 2 CPU cores from nothing: the estimate `make demo` prints
# (`ESTIMATE_MINUTES` in `muva_lib/commands/demo.py`, measured), most of it the two trainings;
# seconds when the runs exist (they are looked up under `runs/` by config). With `paper` the
# runs must exist (`python -m muva_lib run --preset paper ...`); this notebook then only reads them.
#
# **What nbval compares.** Training numbers (losses, mAP) differ in the last bits between CPU
# micro-architectures and drift over hundreds of steps, so they are printed only in cells marked
# `NBVAL_IGNORE_OUTPUT`. The compared cells print what is deterministic everywhere (dataset and
# protocol counts, config values, mask coverage of the VGE boxes) and robust facts about the
# trained models (the losses went down, which methods beat the colour baselines).

# %% tags=["parameters"]
PROTOCOL: str = "synth-a->synth-b"  # a synthetic protocol (sets data.protocol)
METHOD: str = "muva"  # method whose VGE masks are shown (its config drives grounding)
PRESET: str = "smoke"  # smoke | paper
SEED: int = 0  # run seed
DEVICE: str = "auto"  # auto | cpu | cuda | cuda:N (grounding backends; training follows the config)
RUN_DIR: str = ""  # output folder; empty: figures to figures/00_quickstart/, the table to figures/tables/
OVERRIDES: str = ""  # config overrides in the CLI grammar, space-separated (e.g. stage2.epochs set to 2)
METHODS: str = "muva,clipreid"  # comma-separated methods trained and compared
EVAL_PERIOD: int = 2  # evaluate the target every k stage-2 epochs too (0: only at the end)

# %%
from muva_lib.runs import check_notebook_parameters

check_notebook_parameters(globals(), "00_quickstart")  # an undeclared name (papermill -p TYPO ...) stops here

# %%
import time

import numpy as np

import muva_lib
from muva_lib import analysis, baselines, explore, grounding, paths, tables, train, utils
from muva_lib.data import protocols, readers, synthetic
from muva_lib.eval import zeroshot
from muva_lib.viz import data as vd, masks as vm, training as vt

nb = muva_lib.notebook(PROTOCOL, METHOD, PRESET, SEED, overrides=OVERRIDES, device=DEVICE, run_dir=RUN_DIR,
                       name="00_quickstart")  # config, threads, seeds, device; RUN_DIR set: outputs under it
cfg = nb.cfg
methods = [m.strip() for m in METHODS.split(",") if m.strip()]
extra = [f"stage2.eval_period={EVAL_PERIOD}"] if EVAL_PERIOD else []
cfgs = {m: nb.cfg_for(m, extra) for m in methods}  # every compared method on the same protocol, preset, seed
proto = protocols.get_protocol(PROTOCOL)
domains = list(dict.fromkeys(proto.source_datasets + proto.target_datasets))
print(f"{PROTOCOL}: train on {'+'.join(proto.sources)}, test on {'+'.join(proto.targets)}; methods {methods}")
print(f"preset {PRESET}: {cfg.model.arch} at {cfg.data.height}x{cfg.data.width}, "
      f"stage 1 {cfg.stage1.epochs} epochs, stage 2 {cfg.stage2.epochs} epochs, batch {cfg.data.batch_size}")

# %% [markdown]
# ## 1. Synthesise the domains
#
# Pedestrians drawn procedurally, one domain per dataset bias (background, light, colour cast,
# blur, cameras), written in the Market-1501 layout with their ground truth. Identities come in
# families that share an outfit and differ in one part, so a global look is not enough. A
# domain already on disk (`$MUVA_SYNTH`, default `data/synth/`) is used as it is.

# %%
# NBVAL_IGNORE_OUTPUT
missing = [d for d in domains if not (paths.synth_root() / d / "meta.json").is_file()]  # an existing benchmark is kept
if missing:
    summary = synthetic.generate(paths.synth_root(), seed=0, domains=missing, workers=2)
    print(f"{summary['images']} images of {missing} written in {summary['seconds']:.0f} s")
print(f"synthetic benchmark: {paths.synth_root()}")

# %%
splits = {d: readers.read_dataset(d) for d in domains}
print(tables.format_table([{"dataset": d, **s.summary()} for d, s in splits.items()]))

# %%
fig = vd.identity_grid({d: s.train for d, s in splits.items()}, ids_per_group=2, images_per_id=3)
nb.save_figure(fig, "sample_identities")
fig.set_dpi(vm.SCREEN_DPI)  # shown small in the notebook; the saved file keeps its resolution
fig

# %%
print("identities per domain (train / query):",
      ", ".join(f"{d} {s.num_train_pids}/{len({it.pid for it in s.query})}" for d, s in splits.items()))

# %% [markdown]
# ## 2. The protocol
#
# The protocol merges its sources' training splits (ids and cameras offset per source) and keeps
# each target's query and gallery for testing.

# %%
data = protocols.build(PROTOCOL)
rows = [{"target": t, "queries": len(s[0].query), "gallery": len(s[0].gallery)} for t, s in data.targets.items()]
print(f"train: {len(data.train)} images, {data.num_classes} ids, {data.num_cams} cameras")
print(tables.format_table(rows))

# %% [markdown]
# ## 3. Ground, calibrate, rasterise
#
# The VGE (`vge.backend`: the synthetic one, the ground truth through the paper's failure
# modes) boxes head, upper body and legs of every training image; calibration repairs the
# boxes that fall outside each part's statistics; the boxes become boolean masks on the patch
# grid, the targets of AM-MSA's mask predictors. Notebooks 01 and 02 look at this step closely.

# %%
# NBVAL_IGNORE_OUTPUT
grid = grounding.grid_for((cfg.data.height, cfg.data.width))
masks = grounding.part_masks_for(data.train, cfg.vge, grid, device=DEVICE, progress=True)

# %%
sample = utils.evenly_spaced(list(data.train), 6)
stack = np.stack([masks[it.key] for it in sample])
fig = vm.part_masks_grid(vm.load_thumbs([it.path for it in sample], (cfg.data.height, cfg.data.width)), stack, grid)
nb.save_figure(fig, "vge_masks")
fig

# %%
coverage = np.stack([masks[it.key] for it in data.train]).mean(axis=(0, 2))
print(f"{len(masks)} masks on a {grid[0]}x{grid[1]} grid; share of patches per part:",
      ", ".join(f"{p} {c:.4f}" for p, c in zip(("head", "upper", "legs"), coverage)))

# %% [markdown]
# ## 4. Train both stages
#
# Stage 1 learns one prompt per identity (MUVA: global + head + upper body + legs) against the
# frozen encoder's features; stage 2 fine-tunes the image encoder with the prompts' text
# features as a classifier (MUVA adds the prototype memory and the mask loss). A finished run
# of exactly this config is reused; otherwise it is trained now (`smoke`) into
# `runs/<protocol>/<method>/`.

# %%
# NBVAL_IGNORE_OUTPUT
found = {}
for m in methods:
    t0 = time.perf_counter()
    found[m] = nb.run_for(cfgs[m])
    print(f"{m}: {found[m].root} ({time.perf_counter() - t0:.0f} s)")
results = {m: train.load_run(run.root) for m, run in found.items()}

# %%
fig = vt.loss_curves({m: r.stage1 for m, r in results.items()}, title="stage 1: prompts")
nb.save_figure(fig, "stage1_losses")
fig

# %%
fig = vt.loss_curves({m: r.stage2 for m, r in results.items()}, title="stage 2: image encoder")
nb.save_figure(fig, "stage2_losses")
fig

# %%
for m, r in results.items():
    print(f"{m}: stage 1 {len(r.stage1)} epochs, loss decreased {analysis.decreased(r.stage1)}; "
          f"stage 2 {len(r.stage2)} epochs, loss decreased {analysis.decreased(r.stage2)}")

# %% [markdown]
# ## 5. Evaluate on the unseen domain
#
# Each run was evaluated on the target's query and gallery after its last epoch (Market rule:
# same id and same camera is junk). The colour-histogram baselines need no training (the LDA
# variant fits a projection on the source); the frozen CLIP row ranks the target by the pooled
# features of the CLIP the methods were initialised from, before any re-ID training. The table goes to `figures/tables/quickstart.md`
# and `.tex`. Its numbers come from training, so this cell is not compared; the next one is.

# %%
# NBVAL_IGNORE_OUTPUT
target = proto.target_datasets[0]
test = data.targets[target][0]
rows = {tables.METHOD_NAMES.get(m, m): r.metrics[target] for m, r in results.items()}
rows.update(baselines.colour_metrics(data.train, test.query, test.gallery))
FROZEN = f"frozen CLIP ({cfg.model.pretrained or 'random init'}), zero-shot"
frozen_kw = dict(weights=cfg.model.pretrained or "random", arch=cfg.model.arch, device=DEVICE,
                 image_size=(cfg.data.height, cfg.data.width))
rows[FROZEN] = zeroshot.frozen_encoder_metrics(test.query, test.gallery, **frozen_kw)
table = tables.metrics_table(rows)
caption = f"{PROTOCOL} ({PRESET} preset, seed {SEED}): {target} test set, %"
md_path, _ = nb.save_table(table, "quickstart", caption)
print(caption)
print(tables.to_markdown(table))

# %%
colour = max(rows["colour histogram"]["mAP"], rows["colour histogram + LDA"]["mAP"])
for m, r in results.items():
    print(f"{tables.METHOD_NAMES.get(m, m)} mAP above the colour baselines: {r.metrics[target]['mAP'] > colour}")

# %% [markdown]
# The same models on the source domain's own test set (in-domain: identities unseen in training,
# images of the domain they were trained on), beside the colour baselines fitted on the same
# source. The gap to the table above is the domain gap. Written to
# `figures/tables/quickstart_in_domain.md` (and `.tex`).

# %%
# NBVAL_IGNORE_OUTPUT
source = proto.source_datasets[0]
source_test = protocols.build(source).targets[source][0]
in_domain = {tables.METHOD_NAMES.get(m, m): train.evaluate_run(run.root, source)[source] for m, run in found.items()}
in_domain.update(baselines.colour_metrics(data.train, source_test.query, source_test.gallery))
in_domain[FROZEN] = zeroshot.frozen_encoder_metrics(source_test.query, source_test.gallery, **frozen_kw)
in_caption = f"{PROTOCOL} ({PRESET} preset, seed {SEED}): {source} test set (in-domain), %"
nb.save_table(tables.metrics_table(in_domain), "quickstart_in_domain", in_caption)
print(in_caption)
print(tables.to_markdown(tables.metrics_table(in_domain)))

# %%
print("every method scores higher in-domain than on the unseen domain:",
      all(in_domain[tables.METHOD_NAMES.get(m, m)]["mAP"] > r.metrics[target]["mAP"] for m, r in results.items()))

# %% [markdown]
# Target mAP and rank-1 over stage-2 epochs (every `EVAL_PERIOD` epochs, and the final one).

# %%
fig = vt.metric_curves({m: r.evals for m, r in results.items()})
nb.save_figure(fig, "target_map")
fig

# %%
print("evaluations per run:", ", ".join(f"{m} {len(r.evals)}" for m, r in results.items()))

# %% [markdown]
# ## Summary
#
# Deterministic facts of this run (the metrics themselves are in the table above and in
# `figures/tables/quickstart.md`).

# %%
print(f"{PROTOCOL}: {len(data.train)} training images of {data.num_classes} ids; "
      f"{len(test.query)} queries, {len(test.gallery)} gallery images")
print("methods trained:", ", ".join(results))
print("every method beats the colour baselines:", all(r.metrics[target]["mAP"] > colour for r in results.values()))

# %% [markdown]
# ## Explore
#
# Pick a method's run and move the query slider: the query (black), its ranked gallery (green: same
# person, red: another, grey: same person and camera, left out of the metrics) and that query's AP and
# INP. Order "worst first" starts with the hardest queries; tick re-ranking to see whether k-reciprocal
# re-ranking rescues them. In JupyterLab (`.venv/bin/jupyter lab`) the controls are live; an executed
# notebook shows the first view.

# %%
# NBVAL_IGNORE_OUTPUT
explore.retrieval_explorer([found[m].root for m in found], device=DEVICE)
