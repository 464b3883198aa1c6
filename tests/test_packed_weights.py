"""The packed weights format and the shipped ``synth`` tag: exact round trip, the hash check, the clear errors,
the optional ``logit_bias`` and the size of a packed ``muva-tiny``."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import open_clip
import pytest
import torch
from safetensors.torch import load, save_file
from test_models_common import offline, tiny_clip  # noqa: F401 (fixture)

from muva_lib.config import resolve
from muva_lib.models.clip_backbone import (ENV_PRETRAINED_DIR, WeightsNotFoundError, create_clip,
                                           load_clip_weights, load_state_dict_file, resolve_weights,
                                           save_clip_weights)
from muva_lib.models.packed_weights import (FORMAT, TOKEN_KEY, canonical_safetensors, file_sha256,
                                            init_token_table, is_packed, pack_state_dict, save_packed,
                                            unpack_state_dict)

SEED = 7
TEXTS = ["a person in a red striped shirt and blue trousers", "legs: white shoes", "head"]
MAKE = ("`python -m muva_lib pretrain --preset default`", "`python -m muva_lib pretrain ship RUN_DIR`")


def _pretrained_like(changed: int = 40, seed: int = 0) -> tuple[open_clip.CLIP, torch.Tensor]:
    """A random ``muva-tiny`` whose token table is ``init_token_table(..., SEED)`` with ``changed`` rows moved
    (what pretraining leaves: only the captions' rows differ). Returns the model and the changed row ids."""
    model = tiny_clip(seed=seed)
    table = model.token_embedding.weight
    init = init_token_table(*table.shape, SEED)
    rows = torch.randperm(table.shape[0], generator=torch.Generator().manual_seed(seed))[:changed].sort().values
    with torch.no_grad():
        table.copy_(init)
        table[rows] += 0.01 * torch.randn(changed, table.shape[1])
    return model, rows


def _ship(folder: Path, model: open_clip.CLIP, **manifest) -> Path:
    """A packed file and its manifest in ``folder``, as `pretrain ship` leaves them."""
    path = save_packed(model, folder / "muva-tiny-synth.safetensors", token_seed=SEED, quick_gelu=False,
                       arch="muva-tiny", extra_meta={"note": "test"})
    entry = {"file": path.name, "sha256": file_sha256(path), "bytes": path.stat().st_size, **manifest}
    (folder / "manifest.json").write_text(json.dumps(entry))
    return path


@pytest.fixture
def shipped(offline, monkeypatch):  # noqa: F811 (the fixture imported above)
    folder = offline / "pretrained"
    folder.mkdir()
    monkeypatch.setenv(ENV_PRETRAINED_DIR, str(folder))
    return folder


def test_pack_unpack_is_exact_up_to_float16():
    model, rows = _pretrained_like()
    sd = model.state_dict()
    tensors, meta = pack_state_dict(sd, token_seed=SEED)
    assert meta["format"] == FORMAT and (meta["vocab"], meta["width"]) == ("49408", "256")
    assert torch.equal(tensors["token_embedding.rows"], rows)  # exactly the moved rows
    out = unpack_state_dict(tensors, meta)
    assert out.keys() == sd.keys()
    table, init = out[TOKEN_KEY], init_token_table(49408, 256, SEED)
    assert table.dtype == torch.float32
    assert torch.equal(table[rows], sd[TOKEN_KEY][rows].half().float())
    kept = torch.ones(49408, dtype=torch.bool)
    kept[rows] = False
    assert torch.equal(table[kept].view(torch.int32), init[kept].view(torch.int32))  # bitwise the init
    for k, v in sd.items():
        if k != TOKEN_KEY:
            expected = v.half().float() if v.is_floating_point() else v
            assert out[k].dtype == expected.dtype and torch.equal(out[k], expected), k


def test_pack_refuses_what_it_cannot_rebuild():
    sd = tiny_clip().state_dict()
    with pytest.raises(ValueError, match="float32"):
        pack_state_dict({**sd, TOKEN_KEY: sd[TOKEN_KEY].half()}, token_seed=SEED)
    with pytest.raises(ValueError, match=TOKEN_KEY):
        pack_state_dict({k: v for k, v in sd.items() if k != TOKEN_KEY}, token_seed=SEED)
    tensors, meta = pack_state_dict(sd, token_seed=SEED)
    with pytest.raises(ValueError, match="packed_clip/9.*reads"):
        unpack_state_dict(tensors, {**meta, "format": "muva_lib.packed_clip/9"}, name="x.safetensors")


def test_synth_tag_loads_the_unpacked_model(shipped):
    model, _ = _pretrained_like()
    path = _ship(shipped, model)
    assert is_packed(path) and not is_packed(save_clip_weights(model, shipped / "plain.safetensors", False))
    synth, source, quick_gelu = create_clip("muva-tiny", "synth", (128, 64))
    assert source.kind == "synth" and source.describe() == f"synth:{path}" and quick_gelu is False
    direct = tiny_clip(seed=5)
    load_clip_weights(direct, unpack_state_dict(*pack_state_dict(model.state_dict(), token_seed=SEED)))
    assert torch.equal(load_state_dict_file(path)[TOKEN_KEY], direct.token_embedding.weight)
    synth.eval(), direct.eval()
    tokens = open_clip.tokenize(TEXTS, context_length=32)
    images = torch.randn(2, 3, 128, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(synth.encode_text(tokens), direct.encode_text(tokens))
        assert torch.equal(synth.encode_image(images), direct.encode_image(images))


def test_synth_in_the_smoke_config_builds_the_model(shipped):
    _ship(shipped, _pretrained_like()[0])
    cfg = resolve("clipreid", "smoke", overrides={"model.pretrained": "synth"})
    assert cfg.model.pretrained == "synth" and cfg.model.text_context_length == 16
    from muva_lib.models.factory import create_model

    model = create_model(cfg, num_classes=3)
    assert model.meta["weights"].startswith("synth:")


def test_synth_in_the_zeroshot_encoder(shipped):
    from muva_lib.eval.zeroshot import load_zeroshot_model

    path = _ship(shipped, _pretrained_like()[0])
    zs = load_zeroshot_model("synth")
    assert zs.weights == f"synth:{path}" and zs.context_length == 32


def test_synth_is_muva_tiny_only(shipped):
    with pytest.raises(ValueError, match="shipped weights are muva-tiny's"):
        resolve_weights("ViT-B-16", "synth")


def test_missing_shipped_weights_name_the_commands(shipped):
    with pytest.raises(WeightsNotFoundError) as err:
        create_clip("muva-tiny", "synth", (128, 64))
    assert all(c in str(err.value) for c in MAKE) and "manifest.json" in str(err.value)
    path = _ship(shipped, tiny_clip())
    path.unlink()
    with pytest.raises(WeightsNotFoundError) as err:
        resolve_weights("muva-tiny", "synth")
    assert all(c in str(err.value) for c in MAKE) and str(path) in str(err.value)


def test_a_changed_file_names_both_hashes(shipped):
    path = _ship(shipped, tiny_clip())
    expected = file_sha256(path)
    with open(path, "r+b") as fh:  # one byte of the last tensor's data
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 1]))
    with pytest.raises(ValueError) as err:
        resolve_weights("muva-tiny", "synth")
    msg = str(err.value)
    assert str(path) in msg and expected in msg and file_sha256(path) in msg


def test_logit_bias_is_optional_both_ways(offline, caplog):  # noqa: F811
    with_bias = tiny_clip(seed=1, init_logit_bias=-10.0)
    assert "logit_bias" in with_bias.state_dict()
    caplog.set_level("INFO", logger="muva_lib.models.clip_backbone")
    file = save_clip_weights(with_bias, offline / "bias.safetensors", quick_gelu=False)
    plain, _, _ = create_clip("muva-tiny", str(file), (128, 64))
    assert "logit_bias" not in plain.state_dict() and "(-10.0) the model has none of: dropped" in caplog.text
    assert torch.equal(plain.token_embedding.weight, with_bias.token_embedding.weight)
    file = save_clip_weights(tiny_clip(seed=2), offline / "nobias.safetensors", quick_gelu=False)
    model, _, _ = create_clip("muva-tiny", str(file), (128, 64), init_logit_bias=-3.0)
    assert model.logit_bias.item() == -3.0 and "keeps its own (-3.0)" in caplog.text
    sd = tiny_clip().state_dict()
    save_file({k: v for k, v in sd.items() if k != "logit_scale"}, str(offline / "noscale.safetensors"))
    with pytest.raises(ValueError, match="missing.*logit_scale"):  # every other key stays strict
        create_clip("muva-tiny", str(offline / "noscale.safetensors"), (128, 64))


def test_packed_muva_tiny_fits_the_budget(tmp_path):
    """~1000 caption tokens moved, text context 40: 10,969,450 bytes measured (the limit is 15 MB)."""
    model = tiny_clip(context_length=40)
    with torch.no_grad():
        model.token_embedding.weight.copy_(init_token_table(49408, 256, SEED))
        model.token_embedding.weight[:1000] += 0.01
    path = save_packed(model, tmp_path / "m.safetensors", token_seed=SEED, quick_gelu=False, arch="muva-tiny")
    assert path.stat().st_size < 11.5e6
    with pytest.raises(ValueError, match="may not redefine grid"):
        save_packed(model, tmp_path / "n.safetensors", token_seed=SEED, quick_gelu=False, arch="muva-tiny",
                    extra_meta={"grid": "1x1"})


def _raw_safetensors(header: str, data: bytes) -> bytes:
    """A safetensors file by hand: the 8-byte length, the JSON header as given, the tensor bytes."""
    return struct.pack("<Q", len(header)) + header.encode() + data


def test_canonical_safetensors_is_one_byte_form_for_any_header_order():
    # the same two tensors and metadata, the header written in two orders and spacings (as safetensors'
    # per-process HashMap order does for the metadata): one canonical file, which loads to the same content
    data = torch.arange(6, dtype=torch.float32).numpy().tobytes() + bytes([1, 2])
    a = _raw_safetensors('{"__metadata__":{"b":"2","a":"1"},"x":{"dtype":"F32","shape":[2,3],'
                         '"data_offsets":[0,24]},"y":{"dtype":"U8","shape":[2],"data_offsets":[24,26]}}', data)
    b = _raw_safetensors('{"y": {"data_offsets": [24, 26], "shape": [2], "dtype": "U8"}, "__metadata__": '
                         '{"a": "1", "b": "2"}, "x": {"shape": [2, 3], "dtype": "F32", "data_offsets": [0, 24]}}  ',
                         data)
    assert a != b and canonical_safetensors(a) == canonical_safetensors(b)
    c = canonical_safetensors(a)
    assert canonical_safetensors(c) == c and c.endswith(data)
    (n,) = struct.unpack("<Q", c[:8])
    assert n % 8 == 0 and c[8:8 + n].rstrip(b" ").decode() == (
        '{"__metadata__":{"a":"1","b":"2"},"x":{"data_offsets":[0,24],"dtype":"F32","shape":[2,3]},'
        '"y":{"data_offsets":[24,26],"dtype":"U8","shape":[2]}}')
    loaded = load(c)
    assert torch.equal(loaded["x"], torch.arange(6, dtype=torch.float32).reshape(2, 3))
    assert loaded["y"].tolist() == [1, 2]
    with pytest.raises(ValueError, match="not a safetensors file"):
        canonical_safetensors(b"\x00" * 5)
    with pytest.raises(ValueError, match="header"):
        canonical_safetensors(struct.pack("<Q", 100) + b"{}")


def test_weights_files_are_written_canonical(tmp_path):
    model, _ = _pretrained_like()
    for path in (save_packed(model, tmp_path / "p.safetensors", token_seed=SEED, quick_gelu=False, arch="muva-tiny",
                             extra_meta={"z": 1, "a": 2}),
                 save_clip_weights(model, tmp_path / "w.safetensors", quick_gelu=False, arch="muva-tiny")):
        raw = path.read_bytes()
        assert canonical_safetensors(raw) == raw, path.name


def test_the_shipped_file_is_canonical_so_a_reproduction_matches_its_hash():
    # `pretrain ship` of a re-run writes canonical bytes; the committed file must be in the same form
    folder = Path(__file__).resolve().parents[1] / "muva_lib" / "assets" / "pretrained"
    raw = (folder / "muva-tiny-synth.safetensors").read_bytes()
    assert canonical_safetensors(raw) == raw
