"""Stored OCR boxes as hits carry them: converted on first use, JSON made once (a cached
point is shown again and again), and never changed by what a caller does with a copy."""

from __future__ import annotations

from rag.types import Hit, OcrBox, PayloadBoxes

RAW = [{"text": "Total 42", "box": [0.1, 0.2, 0.5, 0.3], "confidence": 0.9,
        "words": [["Total", [0.1, 0.2, 0.3, 0.3]], ["42", [0.35, 0.2, 0.5, 0.3]]]},
       {"text": "ünïcödé 東京", "box": [0, 0.5, 1, 0.6], "confidence": 1.0}]


def test_boxes_read_the_same_before_and_after_conversion() -> None:
    boxes = PayloadBoxes(RAW)
    assert len(boxes) == 2  # before conversion: counted on the payload
    assert [b.text for b in boxes] == ["Total 42", "ünïcödé 東京"]
    assert len(boxes) == 2 and boxes[1].box == (0.0, 0.5, 1.0, 0.6)
    assert boxes == [OcrBox.from_payload(r) for r in RAW]


def test_json_is_made_once_and_a_callers_list_is_its_own() -> None:
    boxes = PayloadBoxes(RAW)
    first = boxes.to_payload()
    assert first == [OcrBox.from_payload(r).to_payload() for r in RAW]
    first.clear()  # a caller emptying its list
    again = boxes.to_payload()
    assert len(again) == 2 and again[0]["words"][1][0] == "42"
    hit = Hit(id="p", score=1.0, source="a.png", page=1, modality="image", boxes=boxes)
    assert hit.to_json()["boxes"] == again
    plain = Hit(id="p", score=1.0, source="a.png", page=1, modality="image",
                boxes=[OcrBox.from_payload(r) for r in RAW])
    assert plain.to_json()["boxes"] == hit.to_json()["boxes"]
