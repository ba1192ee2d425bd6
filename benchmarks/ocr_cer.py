"""OCR character error rate on rendered samples with numbers and punctuation.

    .venv/bin/python benchmarks/ocr_cer.py [--variants baseline,stretch] [--sizes 12,16,22]

Renders known lines ("9,000 to 61,000 queries", IPs, versions, flags, money, times) with
Pillow in several fonts and pixel sizes, three lines per image, OCRs every image with
each variant of the ``rapidocr`` backend, and prints per variant: the character error
rate (edit distance / reference length, whitespace runs counted as one space), the share
of numeric tokens read exactly, and seconds per image. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "2")

from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from rag.ocr import ocr_text  # noqa: E402
from rag.ocr.rapidocr import RapidOcr  # noqa: E402
from rag.settings import OcrSettings  # noqa: E402

LINES = [
    "expired at once, the load rose from about 9,000 to 61,000 queries per second, and",
    "retry after 30 s (HTTP 429); limit: 1,200 req/min, burst=40, 5,000 per day per key",
    "server 10.0.12.7:8443 - v2.14.1 - 99.95% uptime, $4,250.00 billed on 2026-03-01",
    "run: certctl rotate --all --days=90; the old cert expires 2026-03-01 12:30 UTC.",
    "(num-queries-per-thread: 1024) filled up [dns-a, dns-b] #incident-4471 at 09:41",
    "Invoice 000123 total 1.005,50 EUR (VAT 19%) - due in 14 days; ref. 2026/0042!",
]
FONTS = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
]
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # name: (OcrSettings fields, RapidOCR constructor options)
    "default": ({}, {}),
    "onnxruntime": ({"runtime": "onnxruntime"}, {}),
    "unfused": ({"runtime": "onnxruntime", "fuse_layers": False}, {}),
    "baseline": ({"stretch_x": 1.0}, {}),
    "unclip1.6": ({"stretch_x": 1.0}, {"det_unclip_ratio": 1.6}),
    "stretch1.3": ({"stretch_x": 1.3}, {}),
    "stretch1.5": ({"stretch_x": 1.5}, {}),
    "stretch2": ({"stretch_x": 2.0}, {}),
    "enlarge": ({"enlarge_below": 1600, "stretch_x": 1.0}, {}),
    "enlarge+stretch1.5": ({"enlarge_below": 1600, "stretch_x": 1.5}, {}),
    "box0.4": ({"stretch_x": 1.0}, {"det_box_thresh": 0.4}),
}
_NUMBER = re.compile(r"\d[\d,.:%]*\d|\d")


def render(lines: list[str], font_path: str, size: int) -> Image.Image:
    font = ImageFont.truetype(font_path, size)
    pad, gap = size, int(size * 0.6)
    width = max(int(font.getlength(line)) for line in lines) + 2 * pad
    height = pad * 2 + len(lines) * (size + gap)
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((pad, pad + i * (size + gap)), line, fill=(20, 20, 20), font=font)
    return img


def degrade(img: Image.Image, seed: int) -> Image.Image:
    """A scanner's look, as the example corpus makes its scans: a tilt under 1 degree,
    grey ink on grey paper, noise, specks and blur."""
    import numpy as np
    from PIL import ImageFilter

    rng = np.random.default_rng(seed)
    gray = img.convert("L").rotate(float(rng.uniform(-0.9, 0.9)),
                                   resample=Image.Resampling.BICUBIC, fillcolor=255)
    arr = np.asarray(gray).astype(np.float32)
    arr = 40 + arr * (232 - 40) / 255
    h, w = arr.shape
    for x, y in zip(rng.integers(0, w, 40), rng.integers(0, h, 40), strict=True):
        arr[y : y + 2, x : x + 2] = rng.uniform(60, 150)
    arr += rng.normal(0, 2.5, size=arr.shape)
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="L")
    return out.filter(ImageFilter.GaussianBlur(0.45)).convert("RGB")


def squash(text: str) -> str:
    return " ".join(text.split())


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def samples(sizes: list[int], scan_size: int) -> list[tuple[str, int, list[str], Image.Image]]:
    """Clean renders at every size in ``sizes``, plus one scan-like render per font at
    ``scan_size`` px (body text of a page scanned at 150 dpi)."""
    out = []
    fonts = [f for f in FONTS if Path(f).exists()]
    for f_i, font in enumerate(fonts):
        for s_i, size in enumerate([*sizes, scan_size]):
            start = (f_i + s_i) % len(LINES)
            lines = [LINES[(start + k) % len(LINES)] for k in range(3)]
            img = render(lines, font, size)
            if s_i == len(sizes):
                out.append((Path(font).stem, -size, lines, degrade(img, seed=f_i)))
            else:
                out.append((Path(font).stem, size, lines, img))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="default,onnxruntime,unfused")
    parser.add_argument("--sizes", default="11,16")
    parser.add_argument("--scan-size", type=int, default=22)
    parser.add_argument("--show", action="store_true", help="print every misread sample")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    data = samples(sizes, args.scan_size)
    print(f"{len(data)} images of 3 lines: {len(FONTS)} fonts x clean {sizes} px "
          f"+ scan-like {args.scan_size} px")
    print("| variant | CER all | CER clean | CER scans | numbers exact | s/image |")
    print("|---|---|---|---|---|---|")
    for name in args.variants.split(","):
        fields, options = VARIANTS[name]
        engine = RapidOcr(OcrSettings(**fields), options)
        engine.load()
        errors = chars = scan_err = scan_chars = nums = nums_ok = 0
        start = time.perf_counter()
        for _font, size, lines, img in data:
            ref = squash(" ".join(lines))
            hyp = squash(ocr_text(engine.read(img)).replace("\n", " "))
            dist = edit_distance(ref, hyp)
            errors, chars = errors + dist, chars + len(ref)
            if size < 0:
                scan_err, scan_chars = scan_err + dist, scan_chars + len(ref)
            for token in _NUMBER.findall(ref):
                nums += 1
                nums_ok += token in hyp
        secs = (time.perf_counter() - start) / len(data)
        clean = (errors - scan_err) / max(1, chars - scan_chars)
        scans = f"{scan_err / scan_chars:.3f}" if scan_chars else "-"
        print(f"| {name} | {errors / chars:.3f} | {clean:.3f} | {scans} | "
              f"{nums_ok / max(1, nums):.3f} | {secs:.2f} |", flush=True)
        if args.show:
            for _font, size, lines, img in data:
                hyp = squash(ocr_text(engine.read(img)).replace("\n", " "))
                if hyp != squash(" ".join(lines)):
                    print(f"  {_font} {size}: {hyp}")


if __name__ == "__main__":
    main()
