"""The real ``mllm`` and ``detector`` code paths on tiny random-weight transformers models built offline.

Each model is built from a config, saved with ``save_pretrained`` into a temporary folder and
loaded back by the backend from that local directory, as a user's downloaded model would be.
"""
from __future__ import annotations

import pytest
from PIL import Image

from muva_lib.config import VgeCfg
from muva_lib.grounding import backend_from_cfg, get_backend, ground_items, part_masks_for
from muva_lib.grounding.tiny import build_tiny_detector, build_tiny_mllm

pytestmark = pytest.mark.slow


@pytest.fixture
def images_and_items(fake_items):
    items = fake_items(3)
    return [Image.open(it.path) for it in items], items


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    return build_tiny_mllm(tmp_path_factory.mktemp("qwen2_vl"), "qwen2_vl")


@pytest.fixture(scope="module")
def qwen(qwen_dir):
    """One loaded backend (loading costs seconds); tests set ``generate_kwargs`` and restore it."""
    backend = get_backend("mllm", model=str(qwen_dir), device="cpu", max_new_tokens=40)
    backend.load()
    yield backend
    backend.generate_kwargs = {}


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory):
    return build_tiny_mllm(tmp_path_factory.mktemp("llava"), "llava")


def forced(tokenizer, answer: str):
    """A ``prefix_allowed_tokens_fn`` that makes any model say ``answer`` then stop (greedy, batched)."""
    target = tokenizer.encode(answer, add_special_tokens=False) + [tokenizer.eos_token_id]
    start: dict[int, int] = {}

    def allowed(batch_id, ids):
        n = int(ids.shape[-1])
        if batch_id not in start or n <= start[batch_id]:
            start[batch_id] = n
        step = n - start[batch_id]
        return [target[min(step, len(target) - 1)]]
    return allowed


@pytest.mark.parametrize("family", ["qwen2_vl", "llava"])
def test_random_model_garbage_ends_as_fallbacks(family, qwen_dir, llava_dir, images_and_items, tmp_path):
    model = qwen_dir if family == "qwen2_vl" else llava_dir
    backend = backend_from_cfg(VgeCfg(backend="mllm", model=str(model), max_new_tokens=16, batch_size=2),
                               device="cpu")
    assert backend.tag == f"mllm-{model.name}"
    report = ground_items(images_and_items[1], backend, root=tmp_path, progress=False)[0]
    assert report.grounded == 3 and report.totals()["failed"] == 0
    assert sum(report.totals().values()) == 9  # 3 images x 3 parts, whatever the model said
    masks = part_masks_for(images_and_items[1], VgeCfg(backend="mllm", model=str(model), max_new_tokens=16),
                           (8, 4), device="cpu", root=tmp_path)
    assert len(masks) == 3 and all(m.shape == (3, 32) for m in masks.values())


def test_prompts_chat_template_and_batching(qwen, images_and_items):
    images, items = images_and_items
    processor, _ = qwen.load()
    assert processor.tokenizer.padding_side == "left"
    text = qwen._text(processor, qwen.prompts["legs"])
    assert "Guide me to the location of the legs of the person within the image" in text
    assert text.startswith("<|im_start|>user") and text.endswith("<|im_start|>assistant\n")
    answers = qwen.generate(images[:2], [qwen.prompts["head"], qwen.prompts["legs"]])
    assert len(answers) == 2 and all(isinstance(t, str) for t, _ in answers)
    assert answers[0][1] == (56.0, 112.0)  # Qwen2-VL's resized input frame (image_grid_thw x patch 14)


@pytest.mark.parametrize("answer, expected", [
    ("[[250,125,750,500]]", (16.0, 16.0, 48.0, 64.0)),  # CogVLM thousandths of the 64 x 128 image
    ('{"bbox_2d": [14, 28, 42, 56]}', (16.0, 32.0, 48.0, 64.0)),  # pixels of the 56 x 112 input frame
])
def test_a_well_formed_answer_goes_through_the_whole_chain(answer, expected, qwen, images_and_items):
    qwen.generate_kwargs = {"prefix_allowed_tokens_fn": forced(qwen.load()[0].tokenizer, answer)}
    images, items = images_and_items
    res = qwen.ground(images[:2], items[:2])
    for r in res:
        for part, a in r.items():
            assert a.raw == answer and a.status == "ok"
            assert a.box == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("answer, reason", [
    ("[[900,100,100,900]]", "swapped corners"), ("[[nan,1,2,3]]", "non-finite"), ("[[100,100,100,900]]", "zero area"),
    ("[[100,100,5000,900]]", "out of range"), ("I see no legs", "no box in answer"), ("[[12,", "no box in answer"),
])
def test_forced_garbage_answers_each_get_their_reason(answer, reason, qwen, images_and_items):
    qwen.generate_kwargs = {"prefix_allowed_tokens_fn": forced(qwen.load()[0].tokenizer, answer)}
    images, items = images_and_items
    a = qwen.ground(images[:1], items[:1])[0]["legs"]
    assert a.raw == answer and a.status == "fallback" and a.reason.startswith(reason), a


def test_missing_model_directory_is_a_clear_error(tmp_path):
    backend = get_backend("mllm", model=str(tmp_path / "nowhere"), device="cpu")
    with pytest.raises(FileNotFoundError, match="model directory not found"):
        backend.load()
    with pytest.raises(ValueError, match="no model given"):
        get_backend("detector", model="", device="cpu").load()


@pytest.mark.parametrize("family", ["owlv2", "grounding_dino"])
def test_detectors(family, images_and_items, tmp_path):
    model = build_tiny_detector(tmp_path / family, family)
    backend = backend_from_cfg(VgeCfg(backend="detector", model=str(model)), device="cpu")
    images, items = images_and_items
    best = backend.detect(images)
    assert len(best) == 3 and set(best[0]) == {"head", "upper", "legs"}
    assert all(len(box) == 4 and 0.0 <= score <= 1.0 for r in best for box, score in r.values())
    report = ground_items(items, backend, root=tmp_path / "store", progress=False)[0]
    assert report.totals()["failed"] == 0 and sum(report.totals().values()) == 9
    strict = get_backend("detector", model=str(model), device="cpu", min_score=1.01)
    assert all(a.status == "fallback" and "below min_score" in a.reason or "zero area" in a.reason
               or "out of range" in a.reason for r in strict.ground(images, items) for a in r.values())
