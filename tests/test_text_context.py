"""A shorter text context is exact for the causal text encoder: weights pretrained at context 40 give the same
text features in a context-16 (or 32) model for every text that fits, and a longer text is open_clip's cut.

Why exact: the text transformer's attention mask is causal (``-inf`` above the diagonal), so no position sees a
later one; the pooled feature is the end token's (``argmax`` of the token ids) and the positions after it,
padding included, get attention weight exactly 0. The context only decides how many padding rows are
computed and how many rows of the positional embedding exist (the loader keeps the first ones). The tests
assert ``torch.equal``, not a tolerance: for the same batch of texts the features agree bitwise on this CPU
(measured, 1 and 2 threads). What does move the last bits is the batch: the same text encoded alone or among
four differs by up to 1.2e-6 (the matrix products block differently), whatever the context; so each
comparison encodes the same batch in both models. A GPU may also block differently per length: there
``atol=1e-6`` would be the check.
"""
from __future__ import annotations

import open_clip
import pytest
import torch
from test_models_common import offline, tiny_clip  # noqa: F401 (fixture)

from muva_lib.models.clip_backbone import create_clip, save_clip_weights

TEXTS = ["a person in a red shirt", "legs: blue trousers and white shoes", "head",
         "upper body: a beige backpack"]  # 3 to 9 tokens with start and end: all fit 16
LONG = ("upper body: a red striped shirt with a beige backpack, legs: blue trousers and white shoes, "
        "carrying a bag")  # 25 tokens


@pytest.fixture
def models(offline):  # noqa: F811 (the fixture imported above)
    """The context-40 model (as pretraining builds it) and its weights loaded into context-16 and -32 models."""
    long = tiny_clip(seed=11, context_length=40).eval()
    path = save_clip_weights(long, offline / "ctx40.safetensors", quick_gelu=False, arch="muva-tiny")
    short = {c: create_clip("muva-tiny", str(path), (128, 64), context_length=c)[0].eval() for c in (16, 32)}
    return long, short


@torch.no_grad()
def test_texts_that_fit_encode_identically(models):
    long, short = models
    assert max((open_clip.tokenize(TEXTS, 40) != 0).sum(1)) <= 16
    for batch in (TEXTS, TEXTS[:1]):
        ref = long.encode_text(open_clip.tokenize(batch, 40))
        for c, model in short.items():
            assert model.positional_embedding.shape[0] == c
            assert torch.equal(model.encode_text(open_clip.tokenize(batch, c)), ref), (c, len(batch))


@torch.no_grad()
def test_a_longer_text_is_cut_with_its_end_token_kept(models):
    long, short = models
    full = open_clip.tokenize([LONG], 40)
    cut = open_clip.tokenize([LONG], 16)
    assert int((full != 0).sum()) == 25
    assert cut[0, -1] == full.max() and torch.equal(cut[0, :15], full[0, :15])  # 15 tokens + the end token
    padded = torch.zeros_like(full)
    padded[:, :16] = cut
    encoded = short[16].encode_text(cut)
    assert torch.equal(encoded, long.encode_text(padded))  # the context-40 model reading the cut text
    assert not torch.allclose(encoded, long.encode_text(full), atol=1e-3)  # not what the full text says
