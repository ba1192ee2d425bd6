"""Fixtures for the generation tests: realistic hits with real media, settings, the fake
OpenAI-compatible server and the tiny local VLM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from rag.media import MediaStore, media_key
from rag.settings import GeneratorSettings, OpenAIGeneratorSettings
from rag.types import Hit, OcrBox
from tests.rag.generate.fake_vlm import FakeVLM

GUIDE_DOC = "3f1a9c0e5b7d2a4c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f"
LABEL_DOC = "a0b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5061728394a5b6c7d8e9f"
SCAN_DOC = "5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"

LABEL_BOXES = [
    OcrBox("ADMIN: http://192.168.1.1", (0.12, 0.20, 0.78, 0.31), 0.97),
    OcrBox("Default password: printed on card", (0.12, 0.36, 0.86, 0.46), 0.93),
]


def _label_photo() -> Image.Image:
    """A 1600x1000 'photo' of a device label: gradient background, text, a barcode."""
    img = Image.new("RGB", (1600, 1000))
    draw = ImageDraw.Draw(img)
    for y in range(0, 1000, 4):
        shade = 80 + y * 120 // 1000
        draw.rectangle([0, y, 1600, y + 4], fill=(shade, shade, shade + 20))
    draw.rectangle([180, 180, 1400, 480], fill=(250, 250, 245))
    draw.text((200, 210), "ADMIN: http://192.168.1.1", fill=(0, 0, 0))
    draw.text((200, 370), "Default password: printed on card", fill=(0, 0, 0))
    for x in range(200, 1300, 14):
        draw.rectangle([x, 560, x + (x % 3) + 3, 820], fill=(10, 10, 10))
    return img


def _scanned_page() -> Image.Image:
    """An A4-ish page scan, 1700x2200 (the store keeps at most 2048 on the long side)."""
    img = Image.new("RGB", (1700, 2200), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for i, y in enumerate(range(150, 2000, 60)):
        draw.text((140, y), f"Warranty clause {i + 1}: the device is covered for two years.",
                  fill=(20, 20, 20))
    return img


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaStore:
    """Written once per session (WebP encoding is the slow part); tests only read it."""
    store = MediaStore(tmp_path_factory.mktemp("media"))
    store.put(media_key(LABEL_DOC, 1), _label_photo())
    store.put(media_key(SCAN_DOC, 2), _scanned_page())
    return store


@pytest.fixture
def hits() -> list[Hit]:
    """Four hits as retrieval returns them, best first: two PDF text chunks, a photo
    with OCR lines, and a scanned page."""
    return [
        Hit(
            id="7c9e6679-7425-40de-944b-e07fc1f90ae7",
            score=0.91,
            source="docs/guide.pdf",
            page=3,
            modality="text",
            text=(
                "Connecting the X200. The X200 router has four gigabit Ethernet ports "
                "on the back panel.\nThe WAN port is marked in yellow. Use a Cat6 cable "
                "for best results."
            ),
            chunk=2,
            doc_id=GUIDE_DOC,
            mime="application/pdf",
        ),
        Hit(
            id="16fd2706-8baf-433b-82eb-8c7fada847da",
            score=0.84,
            source="photos/router-label.jpg",
            page=1,
            modality="image",
            text="ADMIN: http://192.168.1.1\nDefault password: printed on card",
            chunk=0,
            doc_id=LABEL_DOC,
            mime="image/jpeg",
            boxes=list(LABEL_BOXES),
            media=media_key(LABEL_DOC, 1),
        ),
        Hit(
            id="886313e1-3b8a-5372-9b90-0c9aee199e5d",
            score=0.55,
            source="docs/guide.pdf",
            page=7,
            modality="text",
            text=(
                "Firmware updates. Download the latest firmware from the support site. "
                "Never switch the router off while the update runs."
            ),
            chunk=0,
            doc_id=GUIDE_DOC,
            mime="application/pdf",
        ),
        Hit(
            id="c56a4180-65aa-42ec-a945-5fd21dec0538",
            score=0.62,
            source="scans/warranty.pdf",
            page=2,
            modality="page",
            text="Warranty clause 1: the device is covered for two years.",
            chunk=0,
            doc_id=SCAN_DOC,
            mime="application/pdf",
            boxes=[OcrBox("Warranty clause 1: the device is covered for two years.",
                          (0.08, 0.07, 0.9, 0.09), 0.9)],
            media=media_key(SCAN_DOC, 2),
        ),
    ]


@pytest.fixture
def gen_settings() -> GeneratorSettings:
    """Small image limits so resizing is exercised; other values as shipped."""
    return GeneratorSettings(
        backend="openai",
        max_sources=8,
        max_images=4,
        image_max_side=512,
        max_image_pixels=200_000,
        max_context_chars=12000,
        openai=OpenAIGeneratorSettings(
            base_url="http://127.0.0.1:9/v1",  # replaced by the fake server's URL
            model="Qwen/Qwen2.5-VL-7B-Instruct",
            temperature=0.1,
            max_tokens=256,
            timeout_s=10.0,
        ),
    )


@pytest.fixture
def fake_vlm() -> Iterator[FakeVLM]:
    with FakeVLM() as server:
        yield server


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from tests.rag.generate.tiny_vlm import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"))
