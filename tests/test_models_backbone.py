"""Where CLIP weights come from: local files round-trip, grids resize, named weights fail clearly offline."""
from __future__ import annotations

import json

import open_clip
import pytest
import torch
import torch.nn.functional as F
from open_clip.transformer import QuickGELU
from safetensors.torch import save_file
from test_models_common import offline, tiny_clip  # noqa: F401 (fixture)

from muva_lib.config import resolve
from muva_lib.models import clip_backbone as cb
from muva_lib.models.clip_backbone import (WeightsNotFoundError, choose_quick_gelu, create_clip,
                                           load_state_dict_file, resolve_weights, save_clip_weights)
from muva_lib.models.factory import create_model
from muva_lib.models.packed_weights import file_sha256


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("fmt", ["pt", "pt-wrapped", "safetensors"])
def test_local_weight_files_load_bit_identically(offline, fmt):
    src = tiny_clip(seed=3)
    sd = src.state_dict()
    path = offline / f"tiny.{fmt.split('-')[0]}"
    if fmt == "pt":
        torch.save(sd, path)
    elif fmt == "pt-wrapped":
        torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}, path)
    else:
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    model, source, quick_gelu = create_clip("muva-tiny", str(path), (128, 64))
    assert source.kind == "file" and not quick_gelu
    _same_state(model, src)


def test_local_dir_folder_loads(offline):
    src = tiny_clip(seed=4)
    folder = offline / "tiny-dir"
    folder.mkdir()
    cfg = open_clip.get_model_config("muva-tiny")
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {}}))
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    model, source, _ = create_clip("ignored", f"local-dir:{folder}", (128, 64))
    assert source.kind == "local-dir"
    _same_state(model, src)


def test_square_checkpoint_is_resized_to_the_non_square_grid(offline):
    square = tiny_clip((224, 224), seed=5)
    path = offline / "square.pt"
    torch.save(square.state_dict(), path)
    model, _, _ = create_clip("muva-tiny", str(path), (256, 128))
    pos, old = model.visual.positional_embedding, square.visual.positional_embedding
    assert pos.shape == (1 + 16 * 8, old.shape[1])
    assert torch.equal(pos[0], old[0])  # CLS position kept
    grid = old[1:].reshape(1, 14, 14, -1).permute(0, 3, 1, 2)
    want = F.interpolate(grid, size=(16, 8), mode="bilinear", align_corners=False)
    torch.testing.assert_close(pos[1:], want.permute(0, 2, 3, 1).reshape(128, -1))
    assert torch.equal(model.visual.conv1.weight, square.visual.conv1.weight)


def test_non_square_grid_needs_metadata(offline):
    src = tiny_clip((256, 128), seed=6)
    plain = offline / "nonsquare.pt"
    torch.save(src.state_dict(), plain)
    with pytest.raises(ValueError, match="grid"):
        create_clip("muva-tiny", str(plain), (128, 64))
    tagged = save_clip_weights(src, offline / "nonsquare.safetensors", quick_gelu=False, arch="muva-tiny")
    model, _, _ = create_clip("muva-tiny", str(tagged), (128, 64))
    assert model.visual.positional_embedding.shape[0] == 1 + 8 * 4
    same, _, _ = create_clip("muva-tiny", str(tagged), (256, 128))
    _same_state(same, src)


def test_longer_text_context_is_truncated_not_interpolated(offline):
    src = tiny_clip(seed=7, context_length=77)
    path = offline / "ctx77.pt"
    torch.save(src.state_dict(), path)
    model, _, _ = create_clip("muva-tiny", str(path), (128, 64), context_length=32)
    assert torch.equal(model.positional_embedding, src.positional_embedding[:32])


def test_wrong_weights_list_what_differs(offline):
    other = tiny_clip(seed=8).state_dict()
    other.pop("ln_final.weight")
    other["extra.weight"] = torch.zeros(1)
    path = offline / "broken.pt"
    torch.save(other, path)
    with pytest.raises(ValueError, match=r"missing \['ln_final.weight'\].*unexpected \['extra.weight'\]"):
        create_clip("muva-tiny", str(path), (128, 64))


def test_openai_offline_raises_a_clear_error_without_network(offline):
    with pytest.raises(WeightsNotFoundError) as err:
        create_clip("ViT-B-16", "openai", (256, 128))
    msg = str(err.value)
    assert "ViT-B-16.pt" in msg and "openaipublic" in msg and "vit_base_patch16_clip_224.openai" in msg
    assert str(offline / "data" / "weights" / "ViT-B-16.pt") in msg
    assert cb.ENV_WEIGHTS in msg and "model.pretrained" in msg


def test_openai_tag_finds_the_env_var_and_the_cache_folder(offline, monkeypatch):
    weights = offline / "data" / "weights" / "ViT-B-16.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"")
    src = resolve_weights("ViT-B-16", "openai")
    assert (src.kind, src.path, src.tag) == ("tag", weights, "openai")
    assert choose_quick_gelu("ViT-B-16", src) is True  # OpenAI weights need QuickGELU
    elsewhere = offline / "my-clip.safetensors"
    elsewhere.write_bytes(b"")
    monkeypatch.setenv(cb.ENV_WEIGHTS, str(elsewhere))
    assert resolve_weights("ViT-B-16", "openai").path == elsewhere
    monkeypatch.setenv(cb.ENV_WEIGHTS, str(offline / "missing.pt"))
    with pytest.raises(WeightsNotFoundError, match=cb.ENV_WEIGHTS):
        resolve_weights("ViT-B-16", "openai")


def test_unknown_pretrained_value_lists_the_tags(offline):
    with pytest.raises(FileNotFoundError, match="openai"):
        resolve_weights("ViT-B-16", "no-such-file.pt")
    assert resolve_weights("ViT-B-16", "").kind == "random"


def test_activation_is_chosen_from_the_weights(offline):
    unknown = offline / "weights.pt"
    torch.save({"a": torch.zeros(1)}, unknown)
    src = resolve_weights("ViT-B-16", str(unknown))
    with pytest.raises(ValueError, match="model.activation"):
        choose_quick_gelu("ViT-B-16", src)  # ViT-B-16 weights exist with both activations
    assert choose_quick_gelu("ViT-B-16", src, "quick_gelu") is True
    assert choose_quick_gelu("ViT-B-16", src, "gelu") is False
    named = offline / "clip-openai-vitb16.pt"
    torch.save({"a": torch.zeros(1)}, named)
    assert choose_quick_gelu("ViT-B-16", resolve_weights("ViT-B-16", str(named))) is True
    meta = offline / "meta.safetensors"
    save_file({"a": torch.zeros(1)}, str(meta), metadata={"quick_gelu": "false"})
    assert choose_quick_gelu("ViT-B-16", resolve_weights("ViT-B-16", str(meta))) is False
    assert choose_quick_gelu("muva-tiny", resolve_weights("muva-tiny", str(unknown))) is False
    model, _, qg = create_clip("muva-tiny", "", (128, 64), activation="quick_gelu")
    assert qg and isinstance(model.visual.transformer.resblocks[0].mlp.gelu, QuickGELU)


@pytest.mark.filterwarnings("ignore:`torch.jit.s:FutureWarning")
def test_torchscript_archives_load_only_when_trusted(offline):
    class Toy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.arange(3.0))

        def forward(self, x):
            return x * self.w

    path = offline / "ViT-toy.pt"
    torch.jit.save(torch.jit.script(Toy()), str(path))
    with pytest.raises(ValueError, match="TorchScript"):
        load_state_dict_file(path)
    sd = load_state_dict_file(path, trusted_jit_sha256={file_sha256(path)})
    assert torch.equal(sd["w"], torch.arange(3.0))


def test_vit_b16_random_builds_offline_at_256x128(offline):
    torch.manual_seed(0)
    model = create_model(resolve("muva", "paper", overrides={"model.pretrained": ""}), num_classes=751)
    enc = model.image_encoder
    assert model.meta["weights"] == "random init" and enc.grid_size == (16, 8)
    assert enc.visual.positional_embedding.shape == (129, 768) and enc.num_tokens == 132
    assert len(model.rmp) == 12 and sum(p.numel() for p in model.rmp.parameters()) == 12 * 2_479_616
    assert model.text_encoder.context_length == 77 and model.prompt_learner.ctx.shape == (751, 4, 4, 512)
    model.eval()
    assert model.encode_image_for_eval(torch.randn(1, 3, 256, 128)).shape == (1, 2048)
    with pytest.raises(ValueError, match="multiple of the patch size"):
        create_clip("muva-tiny", "", (250, 128))


def test_paper_preset_offline_says_what_to_fetch(offline):
    with pytest.raises(WeightsNotFoundError, match="ViT-B-16.pt"):
        create_model(resolve("muva", "paper"), num_classes=751)
