"""Checkpoints by component: bit-identical round trip, metadata header, every incompatibility listed."""
from __future__ import annotations

import pytest
import torch

import muva_lib
from muva_lib.config import resolve
from muva_lib.models.weights import (COMPONENTS, CheckpointMismatchError, CorruptCheckpointError, component_state,
                                        load_checkpoint, payload_sha256, read_metadata, save_checkpoint)
from muva_lib.models.factory import create_model


def _model(method="muva", num_classes=6, seed=0, **overrides):
    torch.manual_seed(seed)
    return create_model(resolve(method, "smoke", overrides=overrides), num_classes)


def test_round_trip_is_bit_identical(tmp_path):
    src = _model(seed=1)
    src.bnneck.running_mean.add_(0.5)  # buffers travel too
    path = save_checkpoint(src, tmp_path / "ck.pt", extra={"epoch": 3, "stage": "stage2"})
    dst = _model(seed=2)
    meta = load_checkpoint(dst, path)
    for name in ("image_encoder", "rmp", "heads", "prompts"):
        a, b = component_state(src, name), component_state(dst, name)
        assert a.keys() == b.keys() and a
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert meta["extra"] == {"epoch": 3, "stage": "stage2"}
    blob = torch.load(path, weights_only=True)  # plain tensors and containers only
    assert set(blob["state"]) == {"image_encoder", "rmp", "heads", "prompts"}


def test_metadata_header(tmp_path):
    model = _model()
    path = save_checkpoint(model, tmp_path / "ck.pt", components=list(COMPONENTS))
    meta = read_metadata(path)
    assert meta["code_version"] == muva_lib.__version__ and meta["method"] == "muva"
    assert meta["model"]["arch"] == "muva-tiny" and meta["model"]["num_parts"] == 3
    assert meta["num_classes"] == 6 and meta["image_size"] == [128, 64]
    assert meta["components"] == list(COMPONENTS)


def test_one_component_loads_across_datasets(tmp_path):
    src = _model(num_classes=6, seed=1)
    path = save_checkpoint(src, tmp_path / "ck.pt")
    dst = _model(num_classes=9, seed=2)  # another source dataset: other identities
    load_checkpoint(dst, path, components=["image_encoder", "rmp"])
    a, b = component_state(src, "image_encoder"), component_state(dst, "image_encoder")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_incompatible_checkpoint_lists_every_difference(tmp_path):
    path = save_checkpoint(_model(num_classes=6), tmp_path / "ck.pt", components=["image_encoder", "rmp", "heads"])
    dst = _model("clipreid", num_classes=4)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint(dst, path, components=["image_encoder", "heads", "prompts"])
    diffs = err.value.differences
    text = str(err.value)
    assert "model.num_parts: checkpoint 3, model 0" in text
    assert "num_classes: checkpoint 6, model 4" in text
    assert any("component 'prompts' missing" in d for d in diffs)
    assert any("keys the model lacks" in d and "part_tokens" in d for d in diffs)
    assert any("classifier.weight shape checkpoint (6, 1024), model (4, 256)" in d for d in diffs)
    assert all(torch.equal(before[k], v) for k, v in dst.state_dict().items())  # nothing loaded


def test_other_architecture_or_input_size_is_named(tmp_path):
    path = save_checkpoint(_model(), tmp_path / "ck.pt")
    other = _model(**{"data.height": 64, "data.width": 32, "model.rmp_num_heads": 4})
    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint(other, path, components=["image_encoder", "rmp"])
    text = str(err.value)
    assert "image_size: checkpoint [128, 64], model [64, 32]" in text
    assert "model.rmp_num_heads: checkpoint 2, model 4" in text


def test_not_a_checkpoint(tmp_path):
    torch.save({"a": torch.zeros(1)}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a muva_lib checkpoint"):
        read_metadata(tmp_path / "x.pt")


def _flip_middle_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_flipped_or_cut_bytes_are_refused_naming_the_file(tmp_path):
    path = save_checkpoint(_model(), tmp_path / "final.pt")
    good = path.read_bytes()
    _flip_middle_byte(path)
    with pytest.raises(CorruptCheckpointError, match=r"final\.pt is corrupt: .*SHA-256.*restore the file"):
        load_checkpoint(_model(), path)
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(CorruptCheckpointError, match=r"final\.pt cannot be read as a checkpoint, it is truncated"):
        read_metadata(path)
    path.write_bytes(good)
    assert read_metadata(path)["method"] == "muva"


def test_checksum_covers_the_header_and_old_files_load_with_a_warning(tmp_path):
    path = save_checkpoint(_model(), tmp_path / "ck.pt", extra={"epoch": 3})
    blob = torch.load(path, weights_only=True)
    assert blob["sha256"] == payload_sha256({"meta": blob["meta"], "state": blob["state"]})
    blob["meta"]["extra"]["epoch"] = 4  # a changed header value, same tensors
    torch.save(blob, path)
    with pytest.raises(CorruptCheckpointError):
        read_metadata(path)
    del blob["sha256"]  # as written before checksums existed
    torch.save(blob, path)
    with pytest.warns(UserWarning, match="carries no checksum"):
        assert read_metadata(path)["extra"] == {"epoch": 4}


def test_payload_digest_is_order_and_type_sensitive_but_load_stable(tmp_path):
    a = {"x": torch.arange(6).view(2, 3), "y": [1, 2.0, "s", None, (True,)]}
    assert payload_sha256(a) == payload_sha256({"y": [1, 2.0, "s", None, [True]], "x": torch.arange(6).view(2, 3)})
    assert payload_sha256(a) != payload_sha256({**a, "x": torch.arange(6).view(3, 2)})  # shape
    assert payload_sha256(a) != payload_sha256({**a, "x": torch.arange(6).view(2, 3).int()})  # dtype
    assert payload_sha256(a) != payload_sha256({**a, "y": [1, 2, "s", None, (True,)]})  # 2.0 vs 2
    torch.save(a, tmp_path / "a.pt")
    assert payload_sha256(torch.load(tmp_path / "a.pt", weights_only=True)) == payload_sha256(a)


def test_the_text_encoder_travels_with_a_random_init_run_only():
    """A random-init text encoder cannot be rebuilt from any file, so its checkpoints carry it; the smoke
    preset's shipped pretrained weights (model.pretrained=synth) rebuild it, so its checkpoints leave it out."""
    from muva_lib.models.weights import DEFAULT_COMPONENTS, self_contained

    assert self_contained(_model(**{"model.pretrained": ""})) == (*DEFAULT_COMPONENTS, "text_encoder")
    assert self_contained(_model()) == DEFAULT_COMPONENTS
