"""create_model per method, the gradient census of both training stages, the test-time feature."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from muva_lib.config import ModelCfg, resolve
from muva_lib.models import bench_encoder as bench
from muva_lib.models.factory import create_model, list_methods


def _model(method="muva", num_classes=6, **overrides):
    torch.manual_seed(0)
    return create_model(resolve(method, "smoke", overrides=overrides), num_classes, device="cpu")


def _batch(model, b=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w = model.meta["image_size"]
    images = torch.randn(b, 3, h, w, generator=g)
    labels = torch.arange(b) % model.meta["num_classes"]
    masks = torch.rand(b, model.num_parts, model.image_encoder.num_patches, generator=g) > 0.5
    return images, labels, masks


def _named(model, names):
    params = dict(model.named_parameters())
    return {n: params[n] for n in names}


def test_methods_and_shapes():
    assert list_methods() == ["muva", "clipreid", "pivl"]
    muva, clipreid = _model("muva"), _model("clipreid", num_classes=5)
    d = muva.image_encoder.output_dim
    assert muva.num_parts == 3 and len(muva.rmp) == 4 and muva.image_encoder.feat_dim == 4 * d
    assert clipreid.num_parts == 0 and len(clipreid.rmp) == 0 and clipreid.part_tokens == []
    assert clipreid.prompt_learner.templates == ["A photo of a X X X X person."]
    images, labels, _ = _batch(muva)
    out = muva(images)
    assert out.bn_feat.shape == (4, 4 * d) and out.logits.shape == (4, 6)
    assert muva.encode_text(labels).shape == (4, 4, d)
    assert clipreid.encode_text(labels[:2]).shape == (2, 1, d)
    assert clipreid(images).logits.shape == (4, 5)
    assert muva.all_text_features(chunk_size=4).shape == (6, 4, d)
    torch.testing.assert_close(muva.text_features(torch.tensor([2, 0, 2])),
                               muva.encode_text(torch.tensor([2, 0, 2])))


def test_create_model_from_a_model_config():
    cfg = ModelCfg(arch="muva-tiny", pretrained="", num_parts=2, text_context_length=32)
    model = create_model(cfg, 3, "cpu", image_size=(64, 32))
    assert model.meta["method"] == "muva" and model.meta["image_size"] == [64, 32]
    assert model.image_encoder.num_patches == 8 and model.prompt_learner.num_prompts == 3
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_heads_init():
    model = _model()
    bn, fc = model.bnneck, model.classifier
    assert (bn.weight == 1).all() and (bn.bias == 0).all() and not bn.bias.requires_grad
    assert fc.bias is None and abs(fc.weight.std().item() - 0.001) < 3e-4
    assert not model.image_encoder.visual.conv1.weight.requires_grad  # frozen patch projection
    assert not any(p.requires_grad for p in model.text_encoder.parameters())


def test_stage2_gradient_census():
    model = _model()
    model.prompt_learner.requires_grad_(False)  # stage 2 freezes the prompts
    images, labels, masks = _batch(model)
    with torch.no_grad():
        text = model.all_text_features().flatten(1)  # TPM: fixed text features
    out = model(images)
    loss = F.cross_entropy(out.logits, labels, label_smoothing=0.1)
    loss = loss + F.cross_entropy(out.feat @ text.t(), labels, label_smoothing=0.1)
    loss = loss + sum(F.binary_cross_entropy_with_logits(a, masks.float()) for a in out.mask_logits)
    loss.backward()
    enc = model.image_encoder
    should = {n for n, p in model.named_parameters() if p.requires_grad}
    frozen = {"image_encoder.visual.conv1.weight", "bnneck.bias"}
    assert frozen.isdisjoint(should) and not any(n.startswith(("text_encoder", "prompt_learner")) for n in should)
    must = {"image_encoder.visual.positional_embedding", "image_encoder.visual.class_embedding",
            "image_encoder.visual.proj", "image_encoder.part_tokens", "image_encoder.part_pos_embed",
            "bnneck.weight", "classifier.weight"}
    assert must <= should
    assert {f"image_encoder.{n}" for n, _ in enc.named_parameters() if n.startswith("rmp.")} <= should
    for n, p in model.named_parameters():
        if n in should:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reached {n}"
        else:
            assert p.grad is None, f"{n} is frozen but got a gradient"


def test_stage1_gradient_census():
    model = _model()
    labels = torch.tensor([0, 0, 3, 5])
    feats = F.normalize(model.text_features(labels).flatten(1), dim=-1)
    protos = F.normalize(torch.randn(6, feats.shape[1]), dim=-1)  # fixed visual prototypes
    F.cross_entropy(feats @ protos.t(), labels).backward()
    got = {n for n, p in model.named_parameters() if p.grad is not None}
    assert got == {"prompt_learner.ctx"}
    ctx_grad = model.prompt_learner.ctx.grad
    assert ctx_grad[[0, 3, 5]].abs().sum(dim=(1, 2, 3)).gt(0).all() and (ctx_grad[[1, 2, 4]] == 0).all()


def test_eval_feature():
    model = _model()
    images, _, masks = _batch(model)
    with pytest.raises(RuntimeError, match="eval"):
        model.encode_image_for_eval(images)
    model.eval()
    out = model(images)
    torch.testing.assert_close(model.encode_image_for_eval(images), out.bn_feat)
    torch.testing.assert_close(model.encode_image_for_eval(images, after_bn=False), out.feat)
    teacher = model.encode_image_for_eval(images, part_masks=masks)
    assert teacher.shape == out.bn_feat.shape and not torch.allclose(teacher, out.bn_feat)
    clipreid = _model("clipreid").eval()
    feat = clipreid.encode_image_for_eval(images, after_bn=False, with_hidden=True)  # CLIP-ReID's 768+512
    assert feat.shape == (4, clipreid.image_encoder.width + clipreid.image_encoder.output_dim)


def test_encoder_benchmark_runs(capsys):
    assert bench.main(["--arch", "muva-tiny", "--size", "64x32", "--batch", "2", "--repeats", "1"]) == 0
    text = capsys.readouterr().out
    assert "fwd+bwd" in text and "RMPs" in text and "x" in text.splitlines()[-1]
