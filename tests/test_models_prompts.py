"""Prompts: template strings, fixed embeddings computed once, EOT pooling, shapes, variants."""
from __future__ import annotations

import open_clip
import pytest
import torch
from test_models_common import tiny_clip

from muva_lib.models.prompt_learner import PromptLearner, TextEncoder, build_templates

EOT = 49407


@pytest.fixture(scope="module")
def clip():
    return tiny_clip()


def test_template_strings():
    assert build_templates(0) == ["A photo of a X X X X person."]
    assert build_templates(3) == [
        "A photo of a X X X X person",
        "A photo of a X X X X head of a person",
        "A photo of a X X X X upper body of a person",
        "A photo of a X X X X legs of a person",
    ]
    assert build_templates(2, "part-agnostic") == ["A photo of a X X X X"] * 3
    assert build_templates(1, domain_context="in a mall")[1] == "A photo of a X X X X head of a person, in a mall"
    assert build_templates(0, domain_context="at night") == ["A photo of a X X X X person, at night."]
    assert build_templates(0, ctx_num=2) == ["A photo of a X X person."]
    with pytest.raises(ValueError, match="part names"):
        build_templates(4)
    with pytest.raises(ValueError, match="template_type"):
        build_templates(3, "fine-grained")


def test_text_encoder_is_frozen(clip):
    text = TextEncoder(clip)
    assert not any(p.requires_grad for p in text.parameters())
    assert text.context_length == 32 and text.width == 256


def test_fixed_template_embeddings_are_computed_once(clip):
    text = TextEncoder(clip)
    calls = []
    handle = text.token_embedding.register_forward_hook(lambda *a: calls.append(1))
    try:
        learner = PromptLearner(7, build_templates(3), text)
        assert len(calls) == 1
        for _ in range(3):
            labels = torch.tensor([0, 3, 3, 6])
            out = text(learner(labels).flatten(0, 1), learner.eot_index.repeat(4))
        assert len(calls) == 1
    finally:
        handle.remove()
    assert out.shape == (16, clip.text_projection.shape[1])
    assert learner.prefix.shape == (4, 5, 256) and learner.suffix.shape == (4, 32 - 9, 256)
    assert learner.ctx.shape == (7, 4, 4, 256) and learner.ctx.requires_grad


def test_prompt_shapes_and_context_splice(clip):
    text = TextEncoder(clip)
    learner = PromptLearner(5, build_templates(3), text, ctx_num=4, init_std=0.002)
    assert 0.0015 < learner.ctx.std().item() < 0.0025
    prompts = learner(torch.tensor([1, 4]))
    assert prompts.shape == (2, 4, 32, 256)
    assert torch.equal(prompts[1, 2, 5:9], learner.ctx[4, 2])  # after SOT, "a", "photo", "of", "a"
    emb = text.embed_tokens(learner.token_ids)
    assert torch.equal(prompts[0, :, :5], emb[:, :5]) and torch.equal(prompts[0, :, 9:], emb[:, 9:])


def test_eot_pooling_matches_open_clip_encode_text(clip):
    """With every context vector set to the embedding of 'x', the learner + encoder is CLIP's encode_text."""
    text = TextEncoder(clip)
    templates = build_templates(3)
    learner = PromptLearner(2, templates, text)
    ids = open_clip.tokenize(templates, context_length=32)
    assert torch.equal(learner.eot_index, (ids == EOT).int().argmax(dim=-1))
    with torch.no_grad():
        learner.ctx.copy_(text.embed_tokens(ids[:, 5:9]).expand(2, -1, -1, -1))
        ours = text(learner(torch.tensor([1])).flatten(0, 1), learner.eot_index)
        ref = clip.encode_text(ids)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_eot_pooling_reads_the_eot_position_only(clip):
    text = TextEncoder(clip)
    learner = PromptLearner(1, build_templates(0), text)
    prompts = learner(torch.tensor([0]))[0]  # [1, n, w]
    eot = int(learner.eot_index[0])
    base = text(prompts, learner.eot_index)
    after = prompts.clone()
    noise = torch.randn(prompts.shape[1:], generator=torch.Generator().manual_seed(0))
    after[:, eot + 1:] += noise[eot + 1:]  # causal mask: positions after EOT cannot matter
    at = prompts.clone()
    at[:, eot] += noise[eot]
    torch.testing.assert_close(text(after, learner.eot_index), base)
    assert (text(at, learner.eot_index) - base).abs().max() > 1e-3


def test_variants_change_the_tokens_as_expected(clip):
    text = TextEncoder(clip)
    multi = PromptLearner(1, build_templates(3), text)
    agnostic = PromptLearner(1, build_templates(3, "part-agnostic"), text)
    domain = PromptLearner(1, build_templates(3, domain_context="rainy street"), text)
    assert (agnostic.token_ids == agnostic.token_ids[0]).all()  # one template for every granularity
    assert len({tuple(r) for r in multi.token_ids.tolist()}) == 4
    assert torch.equal(domain.prefix, multi.prefix)
    extra = len(open_clip.tokenize([", rainy street"], context_length=32)[0].nonzero()) - 2
    assert torch.equal(domain.eot_index, multi.eot_index + extra)


def test_a_template_longer_than_the_context_is_refused(clip):
    text = TextEncoder(clip)
    with pytest.raises(ValueError, match="text context is 32"):
        PromptLearner(1, build_templates(3, domain_context=" ".join(["word"] * 30)), text)
