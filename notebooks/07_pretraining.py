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
# # 07 · The pretrained CLIP: did it learn words?
#
# MUVA, CLIP-ReID and pi-VL all start from a CLIP that already ties words ("red striped shirt",
# "upper body") to what images show: the prompts, the image-text losses and the part texts mean
# something only then. No pretrained CLIP can be downloaded here, so the workbench pretrains its own
# tiny one (`muva-tiny`, open_clip) on a synthetic corpus drawn from the benchmark's generator, with
# captions of several phrasings and part captions, and ships the weights in the package
# (`model.pretrained=synth`, `--weights synth`).
#
# This notebook shows what it was trained on and whether it learned, on the test identities of a
# synthetic domain it never saw, beside the same architecture at random init (the floor):
# corpus samples with their captions, the pretraining curves of the shipped run, the zero-shot
# numbers, text-to-image retrieval for the benchmark's captions and for typed descriptions, attribute
# accuracy by prompting, the colour-binding test and patch-to-part similarity maps. There is no paper
# figure to reproduce: this is the premise the methods rest on, measured.
#
# Run time: about a minute on 2 CPU cores (two passes over the domain's test images, one per model).
#
# **Guarded numbers.** The zero-shot numbers come from float features whose last bits differ between
# CPUs: they are printed in `NBVAL_IGNORE_OUTPUT` cells. The corpus sample (same seed, same bytes), the
# shipped run's log and manifest, and the sizes are compared.

# %% tags=["parameters"]
PROTOCOL: str = "synth-a->synth-b"  # protocol name shared by all notebooks (unused here)
METHOD: str = "muva"  # shared name (unused here: no method is trained)
PRESET: str = "smoke"  # shared name (unused here: the shipped weights are the same for every preset)
SEED: int = 0  # seed of the corpus sample and of the random-init model
DEVICE: str = "auto"  # auto | cpu | cuda | cuda:N
RUN_DIR: str = ""  # output folder; empty: figures go to figures/07_pretraining/
OVERRIDES: str = ""  # shared name (unused here)
DATASET: str = "synth-b"  # synthetic domain whose test identities are checked
WEIGHTS: str = "synth"  # synth (the shipped weights) | PATH of an open_clip state dict
LIMIT: int = 0  # test identities checked, the first by id (0: all, as the manifest's numbers)
N_EXAMPLES: int = 4  # corpus samples; also the rows of the retrieval and part-map figures (half each)
TOPK: int = 5  # images per retrieved text
QUERIES: str = "a person with a red t-shirt; blue trousers and white shoes"  # typed descriptions, ';'-separated

# %%
from muva_lib.runs import check_notebook_parameters

check_notebook_parameters(globals(), "07_pretraining")  # an undeclared name (papermill -p TYPO ...) stops here

# %%
import tempfile

import numpy as np

import muva_lib
from muva_lib import explore, pretrain, tables, utils
from muva_lib.data.synth import corpus
from muva_lib.eval import zeroshot
from muva_lib.models import clip_backbone
from muva_lib.viz import masks as vm, pretraining as vp

nb = muva_lib.notebook(PROTOCOL, METHOD, PRESET, SEED, overrides="threads=2", device=DEVICE, run_dir=RUN_DIR,
                       name="07_pretraining")  # 2 threads, seeds, figure folder; no run here (nb.run is never used)
manifest = clip_backbone.shipped_manifest() if WEIGHTS == clip_backbone.SYNTH_TAG else None
print(f"checking {WEIGHTS!r} weights against random init on {DATASET} (limit {LIMIT or 'all'} identities)")

# %% [markdown]
# ## The corpus: images with captions
#
# The pretraining corpus comes from the benchmark's generator with its own identities and seeds and
# nuisances drawn over wider ranges than the three benchmark domains (backgrounds, light, colour cast,
# blur, resolution, viewpoint, occluders). Each image carries one to three captions in varied words
# (synonyms, shuffled order) and, for about half of the images, part captions (blue, marked with the
# part) that give MUVA's and pi-VL's part prompts something to align with. The sample below is drawn
# here with the same generator (a few images, seconds); the shipped corpus's arguments follow.

# %%
with tempfile.TemporaryDirectory() as tmp:
    corpus.generate_corpus(tmp, seed=SEED, cfg=corpus.CorpusCfg(ids=N_EXAMPLES, images_per_id=1, shard_size=N_EXAMPLES))
    sample = corpus.load_corpus(tmp)
    sample_images = vm.load_thumbs([f"{tmp}/{r.relpath}" for r in sample], hw=(sample[0].height, sample[0].width))
fig = vp.corpus_samples(sample_images, [[(c.text, c.part) for c in r.captions] for r in sample])
nb.save_figure(fig, "corpus_samples")
fig

# %%
print("sample:", corpus.caption_shares(sample))
if manifest is not None:
    corpus = manifest["corpus"]
    print(f"shipped corpus: seed {corpus['seed']}, {corpus['images']} images, {corpus['captions']} captions, "
          f"arguments {corpus['arguments']}")
    print("benchmark test identities with an attribute twin in the corpus:",
          {d: v["twins"] for d, v in corpus.get("leakage", {}).items()})

# %% [markdown]
# ## Pretraining curves
#
# The shipped run's log (`log.csv` beside the weights): the contrastive loss, the learned logit scale
# (the inverse temperature) and bias (the sigmoid loss has one; the softmax loss does not), and the
# learning rate (warm-up, then cosine).

# %%
log_path = clip_backbone.shipped_dir() / "log.csv"
log = pretrain.read_log(clip_backbone.shipped_dir()) if manifest is not None and log_path.is_file() else []
fig = vp.pretraining_curves(log) if log else None
if fig is not None:
    nb.save_figure(fig, "pretraining_curves")
fig if log else print(f"no pretraining log for {WEIGHTS!r} (expected {log_path.name} beside the shipped weights)")

# %%
if log:
    last = log[-1]
    print(f"{len(log)} log rows; last step {int(last['step'])}: loss {last['loss']:.4f}, "
          f"logit scale {last['logit_scale']:.4f}" + (f", logit bias {last['logit_bias']:.4f}"
                                                        if "logit_bias" in last else ""))
if manifest is not None:
    t = manifest["training"]
    print(f"steps {t['steps']}, pairs {t['pairs']}, final loss {t['final_loss']:.4f}")

# %% [markdown]
# ## The zero-shot numbers
#
# One pass over the domain's test images (query and gallery, distractors included) per model: global
# and patch features, every text once (`muva_lib.eval.zeroshot.probe`); the checks then only index the
# similarity matrix (`summarise`, what `python -m muva_lib zeroshot --json` prints). Text-to-image
# retrieval with the benchmark's captions (R@k, mAP; `t2i_r10_chance` is a random ranking's R@10),
# attribute mean accuracy by prompting (`attr_ma`, chance `attr_ma_chance`), colour binding
# (`binding_acc`, chance 0.5), part pointing (the best patch of "head" / "upper body" / "legs" inside
# the part's box; `part_pointing_chance` a random patch, `part_pointing_fixed` the best constant patch
# per part), and re-ID with the frozen image encoder. The manifest's column is what shipping measured.

# %%
# NBVAL_IGNORE_OUTPUT
cfg = zeroshot.ZeroShotCfg(dataset=DATASET, weights=WEIGHTS, limit=LIMIT, seed=SEED, device=DEVICE)
shipped = zeroshot.probe(cfg)
floor = zeroshot.probe(zeroshot.ZeroShotCfg(dataset=DATASET, weights="random", limit=LIMIT, seed=SEED, device=DEVICE))
res, res_random = zeroshot.summarise(shipped), zeroshot.summarise(floor)
listed = (manifest or {}).get("zeroshot", {}).get(DATASET, {})
print(tables.format_table([{"metric": k, "random init": round(res_random[k], 4), "pretrained": round(res[k], 4),
                            "manifest": round(listed[k], 4) if k in listed else None} for k in zeroshot.SUMMARY_KEYS]))

# %%
print("sizes:", {k: res["sizes"][k] for k in ("images", "query", "gallery", "identities", "t2i_texts", "binding_pairs",
                                              "texts")})
if listed and not LIMIT:
    print("measured here agrees with the manifest within 0.01:",
          all(abs(res[k] - listed[k]) <= 0.01 for k in zeroshot.SUMMARY_KEYS if k in listed))

# %% [markdown]
# ## Text-to-image retrieval
#
# First a few of the benchmark's test captions, each with its top images among the test images (the
# ranking of `t2i_*`), framed green for the caption's identity and red otherwise; then the typed
# descriptions of `QUERIES` (no identity: grey frames), the text-query explorer's call
# (`muva_lib.eval.zeroshot.top_images`). The number under each image is its cosine similarity.

# %%
typed = [q.strip() for q in QUERIES.split(";") if q.strip()]
picks = utils.evenly_spaced(range(len(shipped.plan.t2i_rows)), max(1, N_EXAMPLES // 2))
captions = [shipped.plan.texts[shipped.plan.t2i_rows[i]] for i in picks]
hits = zeroshot.top_images(shipped.model, shipped.feats, captions + typed, k=TOPK)
pids = np.array([r.pid for r in shipped.records])
matches = np.full(hits.index.shape, np.nan)
matches[:len(picks)] = pids[hits.index[:len(picks)]] == np.array([shipped.plan.t2i_ids[i] for i in picks])[:, None]
fig = vp.text_retrieval(hits.texts, [[shipped.items[j].path for j in row] for row in hits.index], hits.scores, matches)
nb.save_figure(fig, "text_retrieval")
fig

# %%
# NBVAL_IGNORE_OUTPUT
print("same identity among the top", TOPK, "per caption:", np.nansum(matches[:len(picks)], axis=1).astype(int).tolist())

# %% [markdown]
# ## Attribute accuracy by prompting
#
# Each part attribute of each test image is read by prompting: one prompt per value ("a person with
# long black hair", "... long brown hair", ...), the rest of the image's attributes kept, the best
# scoring value wins. Balanced accuracy per attribute (the mean of the per-value recalls: chance is one
# over the number of values, the black tick, whatever the value frequencies); hat and bag attributes
# only on images that have one.

# %%
chance = {k: 1 / len(zeroshot.prompts.ATTRIBUTE_VALUES[k]) for k in res["per_attribute"]}
fig = vp.attribute_bars({"pretrained": res["per_attribute"], "random init": res_random["per_attribute"]}, chance)
nb.save_figure(fig, "attribute_accuracy")
fig

# %%
# NBVAL_IGNORE_OUTPUT
print(tables.format_table([{"attribute": k, "chance": round(chance[k], 4),
                            "random init": round(res_random["per_attribute"][k], 4),
                            "pretrained": round(res["per_attribute"][k], 4)} for k in chance]))

# %% [markdown]
# ## The colour-binding test
#
# A bag-of-words model knows that "red" and "blue" occur, not which garment is which colour. Each test
# image whose upper and lower colours differ is scored against its caption and against the same
# caption with the two colours swapped; the histogram shows score(true) - score(swapped): right of zero
# the true caption wins. Random init sits around 50%.

# %%
margins = {name: p.binding_scores() @ np.array([1.0, -1.0]) for name, p in (("pretrained", shipped),
                                                                           ("random init", floor))}
fig = vp.binding_histogram(margins)
nb.save_figure(fig, "binding")
fig

# %%
print("pairs:", {name: len(m) for name, m in margins.items()})

# %%
# NBVAL_IGNORE_OUTPUT
print(f"binding accuracy: pretrained {res['binding_acc']:.4f}, random init {res_random['binding_acc']:.4f}")

# %% [markdown]
# ## Patch-to-part similarity
#
# The pretrained model's patch tokens (through the same projection as the pooled token) against the
# texts "head", "upper body" and "legs": one heat map per part over the patch grid, each scaled to its
# own range, the part's ground-truth box in white and the best patch marked (`part_pointing` counts how
# often it lies inside the box). Images with all three parts boxed, spread over the test images.

# %%
boxes = shipped.boxes
complete = [n for n in range(len(shipped.records)) if not np.isnan(boxes[n]).any()]
shown = utils.evenly_spaced(complete, max(1, N_EXAMPLES // 2))
maps = shipped.part_maps()
fig = vp.part_similarity_maps([shipped.items[n].path for n in shown], maps[shown], boxes[shown],
                              [zeroshot.prompts.PART_WORDS[p] for p in muva_lib.data.PARTS],
                              row_labels=[f"id {shipped.records[n].pid}" for n in shown])
nb.save_figure(fig, "part_maps")
fig

# %%
print(f"patch grid {shipped.model.grid}, images with all parts boxed: {len(complete)} of {len(shipped.records)}")

# %% [markdown]
# ## Summary
#
# The key numbers, rounded: pretrained vs random init (fractions).

# %%
# NBVAL_IGNORE_OUTPUT
for k in ("t2i_r10", "t2i_map", "attr_ma", "binding_acc", "part_pointing", "reid_map"):
    print(f"{k:14s} pretrained {res[k]:.4f}  random init {res_random[k]:.4f}")

# %% [markdown]
# ## Explore
#
# Type a description of a person (several: separate them with `;`): the test images the pretrained CLIP
# ranks first, with their cosine similarities. Try colours and garments the corpus's captions use ("a
# red t-shirt", "white shoes") and words it never saw, to see where zero-shot matching stops working.

# %%
# NBVAL_IGNORE_OUTPUT
explore.text_query_explorer(shipped.items, weights=WEIGHTS, query=QUERIES, k=TOPK, device=DEVICE)
