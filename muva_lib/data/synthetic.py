"""The embedded default dataset: a deterministic, procedurally drawn multi-domain pedestrian benchmark.

Each domain (``synth-a``, ``synth-b``, ``synth-c``; see :data:`DOMAINS`) is written in the
Market-1501 layout, so the ordinary reader reads it, with its ground truth beside the images::

    <out>/<domain>/bounding_box_train/PPPP_cCsS_FFFFFF_00.jpg    query/...    bounding_box_test/...
    <out>/<domain>/gt/parts.jsonl          one record per image, sorted by relpath (see GtRecord)
    <out>/<domain>/gt/parsing/<subset>/<stem>.png   uint8 class map, indices into PARSING_CLASSES
    <out>/<domain>/meta.json               version, seed, arguments, style, cameras, counts, classes

Part boxes (``head``, ``upper``, ``legs``) are the bounding boxes, in saved-image pixels with
x1/y1 exclusive, of the parsing classes in :data:`PART_CLASSES` (head = hair + face, hats count
as hair; upper = arms + upper clothes + bag; legs = lower clothes + legs + shoes) drawn before
occluders and clipped to the frame; ``visible`` is the fraction of each part left after the
frame and the occluders; a part with nothing visible has a null box.

Identities come in families sharing one outfit and differing in the attributes of one part
only, so a global look cannot tell them apart. Everything is a function of the seed: every
image has its own RNG keyed by (seed, domain, pid, image index).

The pretraining corpus (``python -m muva_lib synth-pretrain``) comes from the same generator with
identities disjoint from the benchmark's and randomised domains: :mod:`muva_lib.data.synth.corpus`.
"""
from __future__ import annotations

from .synth.captions import Caption, image_captions
from .synth.corpus import CorpusCfg, CorpusRecord, corpus_captions, generate_corpus, load_corpus
from .synth.domains import DOMAINS, CameraScene, DomainStyle
from .synth.generate import (GENERATOR_VERSION, SUBSETS, GtRecord, SynthCfg, SynthError, generate, load_gt,
                             load_parsing, plan_domain)
from .synth.identity import ATTRIBUTE_KEYS, PART_KEYS, Priors, caption, differing_parts
from .synth.render import PARSING_CLASSES, PART_CLASSES, Rendered, part_boxes, render_person
from .synth.twins import benchmark_identities, count_twins

__all__ = ["DOMAINS", "DomainStyle", "CameraScene", "Priors", "SynthCfg", "SynthError", "GtRecord",
           "GENERATOR_VERSION", "SUBSETS", "PARSING_CLASSES", "PART_CLASSES", "PART_KEYS", "ATTRIBUTE_KEYS",
           "generate", "load_gt", "load_parsing", "plan_domain", "render_person", "Rendered", "part_boxes",
           "caption", "differing_parts",
           # the pretraining corpus (synth-pretrain): muva_lib.data.synth.corpus
           "CorpusCfg", "CorpusRecord", "Caption", "generate_corpus", "load_corpus", "corpus_captions",
           "image_captions", "count_twins", "benchmark_identities"]
