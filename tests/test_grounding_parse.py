"""Answer parsing: every format VLMs emit, and every kind of bad output ending as a reasoned fallback."""
from __future__ import annotations

import pytest

from muva_lib.grounding.answers import extract_boxes, parse_answer, validate_box

W, H = 128, 256  # image (width, height) as PIL reports it


def approx(box, expected, tol=1e-6):
    return box is not None and all(abs(a - b) <= tol for a, b in zip(box, expected))


@pytest.mark.parametrize("text, fmt, expected", [
    # CogVLM: thousandths of the image, three digits -> 297/1000*128 = 38.016, 11/1000*256 = 2.816
    ("[[297,011,570,171]]", "cogvlm", (38.016, 2.816, 72.96, 43.776)),
    ("The head is at [[297,011,570,171]].", "cogvlm", (38.016, 2.816, 72.96, 43.776)),
    # Qwen2.5-VL: JSON in pixels (of the image here: no frame given)
    ('```json\n[{"bbox_2d": [38, 3, 73, 44], "label": "head"}]\n```', "qwen_json", (38, 3, 73, 44)),
    ("{'bbox': [38, 3, 73, 44]}", "qwen_json", (38, 3, 73, 44)),
    # Qwen2-VL special tokens and Qwen-VL <ref>/<box> tags: thousandths
    ("<|box_start|>(297,11),(570,171)<|box_end|>", "qwen2_tags", (38.016, 2.816, 72.96, 43.776)),
    ("<ref>the head</ref><box>(297,11),(570,171)</box>", "box_tags", (38.016, 2.816, 72.96, 43.776)),
    # Florence-2 location bins: (bin + 0.5) / 1000 of the side -> (297.5/1000)*128 = 38.08
    ("head<loc_297><loc_11><loc_570><loc_171>", "florence", (38.08, 2.944, 73.024, 43.904)),
    # plain numbers: pixels, 0-1 fractions, thousandths (beyond the image and <= 1000)
    ("38, 3, 73, 44", "numbers", (38, 3, 73, 44)),
    ("[0.25, 0.5, 0.75, 1.0]", "numbers", (32, 128, 96, 256)),
    ("The legs: (500, 250), (750, 500)", "numbers", (64, 64, 96, 128)),
])
def test_formats(text, fmt, expected):
    p = parse_answer(text, (W, H))
    assert p.status == "ok" and p.fmt == fmt and p.reason == ""
    assert approx(p.box, expected)


def test_pixel_answers_are_rescaled_from_the_model_frame():
    # Qwen2.5-VL answers in its resized input (here 56 x 112 for a 128 x 256 image): x2.2857
    p = parse_answer('{"bbox_2d": [14, 28, 42, 56]}', (W, H), frame_wh=(56, 112))
    assert approx(p.box, (32, 64, 96, 128))


def test_several_boxes_are_merged_into_their_union():
    p = parse_answer("[[100,500,300,990;500,520,700,1000]]", (W, H))
    assert p.ok and approx(p.box, (12.8, 128, 89.6, 256)) and "merged 2 boxes" in p.reason


def test_slight_overshoot_is_clipped_with_a_reason():
    p = parse_answer("[[100,200,1010,600]]", (W, H))  # 1010/1000 of the width: 1 % outside
    assert p.ok and approx(p.box, (12.8, 51.2, 128, 153.6)) and p.reason == "clipped to image"


def test_valid_boxes_win_over_invalid_ones_in_the_same_answer():
    p = parse_answer("[[nan,1,2,3;100,100,200,200]]", (W, H))
    assert p.ok and approx(p.box, (12.8, 25.6, 25.6, 51.2)) and "ignored 1 invalid" in p.reason


@pytest.mark.parametrize("text, reason", [
    ("", "empty answer"),
    ("   \n", "empty answer"),
    (None, "empty answer"),
    (12345, "empty answer"),
    ("I cannot find the head of the person in this image.", "no box in answer"),
    ("\u00bf?\ufffd\x00 garbage <loc_> [[ ]]", "no box in answer"),
    ("[[12,34", "no box in answer"),  # truncated generation
    ("[[1,2,3]]", "expected 4 coordinates, got 3"),
    ("[[1,2,3,4,5]]", "expected 4 coordinates, got 5"),
    ("[[nan,nan,nan,nan]]", "non-finite coordinates (NaN or inf)"),
    ('{"bbox_2d": [NaN, 3, 73, 44]}', "non-finite coordinates (NaN or inf)"),
    ("[[100,200,inf,300]]", "non-finite coordinates (NaN or inf)"),
    ("[[620,700,380,510]]", "swapped corners (x1 < x0 or y1 < y0)"),
    ("[[100,700,300,510]]", "swapped corners (x1 < x0 or y1 < y0)"),
    ("[[400,400,400,900]]", "zero area"),
    ("[[100,200,1900,2500]]", "out of range (beyond the image by more than the tolerance)"),
    ('{"bbox_2d": [-40, 3, 73, 44]}', "out of range (beyond the image by more than the tolerance)"),
    ("<box></box>", "no box in answer"),
    ("x" * 100_000, "no box in answer"),
])
def test_bad_answers_fall_back_with_their_reason(text, reason):
    p = parse_answer(text, (W, H))
    assert p.status == "fallback" and p.box is None and p.reason == reason


def test_zero_area_after_clipping():
    box, why = validate_box((128.0, 10.0, 129.0, 20.0), (W, H))  # a 1-pixel sliver just outside
    assert box is None and why == "zero area after clipping to the image"


def test_validate_box_rejects_non_numbers():
    assert validate_box("abc", (W, H))[0] is None
    assert validate_box(None, (W, H))[0] is None
    assert validate_box([1, 2, 3], (W, H)) == (None, "expected 4 coordinates, got 3")


def test_explicit_format_only_looks_for_that_format():
    assert parse_answer("[[297,011,570,171]]", (W, H), fmt="qwen_json").reason == "no box in answer"
    with pytest.raises(ValueError, match="unknown answer format"):
        extract_boxes("x", fmt="yaml")


def test_tolerance_parameter():
    assert parse_answer("[[100,200,1050,600]]", (W, H)).status == "fallback"
    assert parse_answer("[[100,200,1050,600]]", (W, H), tolerance=0.1).ok
