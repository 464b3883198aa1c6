"""FeatureExtractor (muva_lib.extract): the features of a finished run equal the evaluator's, bit for bit, for every
input form (paths, Items, PIL images, uint8 / float tensors); flip and the feature choice follow the config; bad
inputs, missing files and folders that are no run are refused with the path named."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torchvision.transforms.functional import pil_to_tensor, to_tensor

import muva_lib
import muva_lib.eval.evaluator as evaluator
from muva_lib.batches.loaders import read_image
from muva_lib.config import apply_overrides, resolve
from muva_lib.data.protocols import build
from muva_lib.extract import FeatureExtractor, normalize
from muva_lib.train import evaluate_run, train

PROTOCOL = "synth-a->synth-b"
#: one epoch per stage: the weights only have to be trained ones, not good ones
TINY = ["threads=1", "stage1.epochs=1", "stage2.epochs=1", "data.batch_size=16", "stage1.batch_size=16",
        "data.test_batch_size=8"]  # several test batches per set


@pytest.fixture(scope="module", params=["muva", "clipreid"])
def finished(request, synth_small, train_data_root, tmp_path_factory) -> SimpleNamespace:
    """A finished tiny run per method (MUVA: BN feature; CLIP-ReID: CLS concatenated before BN), the query items
    of its target and the evaluator's own query features, captured inside ``evaluate_run``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUVA_SYNTH", str(synth_small.root))
        mp.setenv("MUVA_DATA", str(train_data_root))
        mp.setenv("MUVA_RUNS", str(tmp_path_factory.mktemp("extract_runs")))
        torch.set_num_threads(1)
        result = train(resolve(request.param, "smoke", PROTOCOL, overrides=TINY), progress=False, evaluate=False)
        split = build(PROTOCOL).targets["synth-b"][0]
        evals = {flip: _evaluator_query_features(mp, result.run_dir, flip) for flip in (False, True)}
    return SimpleNamespace(run=Path(result.run_dir), cfg=result.cfg, query=list(split.query),
                           gallery=list(split.gallery), evals=evals)


def _evaluator_query_features(mp: pytest.MonkeyPatch, run: Path, flip: bool) -> torch.Tensor:
    """The (query, gallery) features ``evaluate_run`` ranks with (``eval.flip`` set to ``flip``)."""
    seen = []
    original = evaluator.evaluate_features

    def capture(qf, gf, *args, **kwargs):
        seen.append((qf.clone(), gf.clone()))
        return original(qf, gf, *args, **kwargs)

    mp.setattr(evaluator, "evaluate_features", capture)
    evaluate_run(run, overrides=[f"eval.flip={str(flip).lower()}"], device="cpu")
    mp.setattr(evaluator, "evaluate_features", original)
    assert len(seen) == 1
    return seen[0]


@pytest.mark.slow  # the module's two tiny runs: about 25 s together on 2 cores
def test_features_equal_the_evaluators_bit_for_bit(finished):
    # Bit for bit, not to a tolerance: the extractor reads, transforms and batches the images as the test loader
    # does (same read_image, same transform, batches of data.test_batch_size in the same order) and runs the
    # same encoder through the same feature loop, so the same float operations happen in the same order.
    ext = FeatureExtractor.from_run(finished.run, device="cpu")
    assert ext.batch_size == finished.cfg.data.test_batch_size < len(finished.query)  # several batches
    got = ext(finished.query)
    want, gallery = finished.evals[False]
    assert got.dtype == torch.float32 and got.device.type == "cpu" and got.shape == want.shape
    assert torch.equal(got, want)
    assert torch.equal(ext([it.path for it in finished.query]), want)  # file paths (str) ...
    assert torch.equal(ext([Path(it.path) for it in finished.query]), want)  # ... and Path
    assert torch.equal(ext(finished.gallery), gallery)
    # MUVA ranks BN(f); CLIP-ReID concat(CLS hidden, f) before BN (the recipes' eval.after_bn / with_hidden)
    assert ext.feature_name == {"muva": "bn", "clipreid": "pre-bn+cls"}[finished.cfg.method]


@pytest.mark.slow  # the module's two tiny runs: about 25 s together on 2 cores
def test_flip_follows_the_config(finished):
    ext = FeatureExtractor.from_run(finished.run, device="cpu")
    flipped = replace(ext, cfg=apply_overrides(ext.cfg, {"eval.flip": True}))
    got = flipped(finished.query)
    assert torch.equal(got, finished.evals[True][0])
    assert not torch.equal(got, finished.evals[False][0])


@pytest.mark.slow  # the module's two tiny runs: about 25 s together on 2 cores
def test_every_input_form_gives_the_same_feature(finished):
    ext = FeatureExtractor.from_run(finished.run / "checkpoints" / "final.pt", device="cpu", batch_size=4)
    items = finished.query[:5]
    pil = [read_image(it.path) for it in items]
    want = ext(items)
    # a different batch size than the evaluator's: the same rows to float rounding (batched matmuls may sum
    # in another order), hence 1e-5 here and bit-for-bit only in the test above
    torch.testing.assert_close(want, finished.evals[False][0][:5], rtol=0, atol=1e-5)
    assert torch.equal(ext(pil), want)
    assert torch.equal(ext([pil_to_tensor(p) for p in pil]), want)  # uint8 [3, H, W]
    assert torch.equal(ext([to_tensor(p) for p in pil]), want)  # float in [0, 1]
    same_size = torch.stack([pil_to_tensor(p) for p in pil])  # the synthetic images share one size
    assert torch.equal(ext(same_size), want)  # uint8 [B, 3, H, W]
    assert torch.equal(ext([items[0], pil[1], pil_to_tensor(pil[2]), items[3].path, same_size[4:]]), want)  # mixed
    torch.testing.assert_close(ext(items[0]), want[:1], rtol=0, atol=1e-5)  # one image (a batch of 1: rounding)
    assert torch.equal(ext.encode(torch.stack([ext.transform(p) for p in pil[:4]])), want[:4])  # the same batch of 4
    torch.testing.assert_close(normalize(want).norm(dim=1), torch.ones(5))


def test_lazy_export():
    assert muva_lib.FeatureExtractor is FeatureExtractor


@pytest.mark.slow  # the module's two tiny runs: about 25 s together on 2 cores
def test_bad_inputs_are_refused_with_what_to_give(finished, tmp_path):
    ext = FeatureExtractor.from_run(finished.run, device="cpu")
    with pytest.raises(TypeError, match=r"input 1: cannot make an image of a int"):
        ext([finished.query[0], 3])
    with pytest.raises(TypeError, match="cannot read images from a dict"):
        ext({"a": 1})
    missing = tmp_path / "nope.jpg"
    with pytest.raises(FileNotFoundError, match=f"input 0: no image file {missing}"):
        ext([str(missing)])
    with pytest.raises(ValueError, match=r"pixels in \[0, 1\].*FeatureExtractor.encode"):
        ext(torch.full((3, 8, 4), 2.0))
    with pytest.raises(ValueError, match=r"\[3, H, W\]"):
        ext(torch.zeros(1, 8, 4))
    with pytest.raises(ValueError, match="no images given"):
        ext([])
    with pytest.raises(ValueError, match="encode takes transformed images"):
        ext.encode(torch.zeros(1, 3, 8, 4))


@pytest.mark.slow  # the module's two tiny runs: about 25 s together on 2 cores
def test_paths_that_are_no_run_are_named(finished, tmp_path):
    with pytest.raises(FileNotFoundError, match=f"no run folder or checkpoint at {tmp_path / 'missing'}"):
        FeatureExtractor.from_run(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match=f"{tmp_path} is no run folder"):
        FeatureExtractor.from_run(tmp_path)
    unfinished = tmp_path / "run"
    unfinished.mkdir()
    (unfinished / "config.json").write_text((finished.run / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="the run has not finished"):
        FeatureExtractor.from_run(unfinished)
    with pytest.raises(ValueError, match="batch_size=0"):
        FeatureExtractor.from_run(finished.run, device="cpu", batch_size=0)
