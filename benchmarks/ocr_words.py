"""Are OCR words read whole? Word fidelity, CER and false splits, before/after word repair.

    .venv/bin/python benchmarks/ocr_words.py [--split tune|heldout|both] [--show]

Renders man-page text (the pages installed here, as ``eval/make_eval_set.py`` reads
them) as terminal and app screenshots, scanned pages and phone photos, in several fonts
and sizes, plus lines of tokens that must never be split (options, paths, URLs,
identifiers, hostnames, versions, numbers with units). Each image is OCR'd once by the
``rapidocr`` backend; "before" is the recogniser's lines as mmrag stored them until
OCR_TEXT_VERSION 1 (digits fixed, nothing else), "after" the repaired lines
(rag/ocr/words.py). Printed per split and kind:

- word fidelity: the share of the reference's words of 4+ letters that come back whole as
  tokens of the OCR text (punctuation around tokens ignored, case ignored); "still glued":
  the share found only inside a longer token (the other misses are misread letters);
- CER: edit distance over reference length, whitespace runs counted as one space;
- false splits: protected tokens read whole before but split after, over those read
  whole before; and the same for every reference word of any length ("prose").

The ``tune`` split (its pages, fonts and sizes) is what the thresholds were set on; the
``heldout`` split uses other pages, other fonts and other sizes. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "eval"))
os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402
from make_eval_set import render_man  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter, ImageFont  # noqa: E402
from rapidfuzz.distance import Levenshtein  # noqa: E402

from rag.ocr import ocr_text, quad_to_box, reading_order  # noqa: E402
from rag.ocr.rapidocr import RapidOcr, fix_digits  # noqa: E402
from rag.settings import OcrSettings  # noqa: E402
from rag.types import OcrBox  # noqa: E402

FONTS = Path("/usr/share/fonts/truetype")
SPLITS: dict[str, dict[str, Any]] = {
    "tune": {
        "pages": ["tee", "gzip", "sort", "grep", "tar", "chown"],
        "mono": ["dejavu/DejaVuSansMono.ttf"],
        "sans": ["dejavu/DejaVuSans.ttf"],
        "serif": ["dejavu/DejaVuSerif.ttf"],
        "screen_sizes": [12, 14, 16],
        "paper_sizes": [14, 18],
    },
    "heldout": {
        "pages": ["split", "uniq", "nice", "truncate", "shred", "cksum"],
        "mono": ["liberation/LiberationMono-Regular.ttf"],
        "sans": ["liberation/LiberationSans-Regular.ttf",
                 "dejavu/DejaVuSansCondensed.ttf"],
        "serif": ["liberation/LiberationSerif-Regular.ttf"],
        "screen_sizes": [11, 13, 15, 18],
        "paper_sizes": [15, 20],
    },
}
# Tokens that must come back whole: what a segmenter must never cut.
PROTECTED = """
--output-error --ignore-interrupts -rf --no-preserve-root --dry-run -Xmx512m
/usr/local/bin /etc/systemd/system ~/.ssh/config ./configure C:\\Windows\\System32
https://example.com/docs/index.html http://10.0.12.7:8443/health git@github.com:org/repo.git
ops@example.org camelCase getElementById HttpClient snake_case_name MAX_RETRIES __init__
api.internal.example.com db-01.prod.local localhost:5432 v2.14.1 1.4.4 python3.11
10ms 250MB 5GB 64KiB 1.5s 99.95% 2nd 3rd 100x 60fps 8443/tcp x86_64 utf-8 sha256sum
systemctl journalctl nginx Kubernetes PostgreSQL pg_basebackup tmpfiles.d resolv.conf
stdin stdout fsync unlink symlinks logrotate dmesg chmod blkid inode mkfs.ext4 nohup
OCR_TEXT_VERSION ocr.stretch_x README.md Makefile JSONDecodeError TypeError IPv6 UTF-8
""".split()  # noqa: SIM905 (reads as the list it is)


@dataclass
class Sample:
    split: str
    kind: str  # screenshot | scan | photo | protected
    name: str
    text: str  # what was rendered, lines joined with newlines
    image: Image.Image


def _font(rel: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONTS / rel), size)


def _paragraph_lines(page: str, width: int) -> list[str]:
    """The page's text re-wrapped at ``width`` columns, blank lines dropped."""
    text = render_man(page, "1", 6000)
    out = []
    for line in text.splitlines():
        line = " ".join(line.split())
        while len(line) > width:
            cut = line.rfind(" ", 0, width)
            cut = cut if cut > 0 else width
            out.append(line[:cut])
            line = line[cut:].strip()
        if line:
            out.append(line)
    return out


def _draw(lines: list[str], font: ImageFont.FreeTypeFont, bg: Any, fg: Any,
          pad: int, spacing: float) -> Image.Image:
    size = font.size
    width = int(max(font.getlength(ln) for ln in lines)) + 2 * pad
    height = 2 * pad + int(len(lines) * size * spacing)
    img = Image.new("RGB", (width, height), bg)
    d = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        d.text((pad, pad + int(i * size * spacing)), line, fill=fg, font=font)
    return img


def _noise(img: Image.Image, rng: random.Random, sigma: float) -> Image.Image:
    arr = np.asarray(img, dtype=np.float32)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, sigma, arr.shape)
    return Image.fromarray(np.clip(arr + noise, 0, 255).astype(np.uint8))


def scan_like(img: Image.Image, rng: random.Random) -> Image.Image:
    """Printed and scanned, as eval/make_eval_set.py makes its scans: grey paper, a tilt
    under 1.2 degrees, blur, noise."""
    grey = img.convert("L").point(lambda v: 30 + v * (236 - 30) / 255)
    grey = grey.rotate(rng.uniform(-1.2, 1.2), resample=Image.Resampling.BICUBIC,
                       fillcolor=236, expand=True)
    grey = grey.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.7)))
    return _noise(grey, rng, rng.uniform(4, 9)).convert("RGB")


def photo_like(img: Image.Image, rng: random.Random) -> Image.Image:
    """A phone photo of a printout: perspective, uneven light, blur, noise."""
    w, h = img.size
    cw, ch = int(w * 1.15), int(h * 1.2)
    canvas = Image.new("RGB", (cw, ch), (rng.randrange(60, 110),) * 3)
    canvas.paste(img, ((cw - w) // 2, (ch - h) // 2))
    j = [rng.randrange(0, max(2, w // 40)) for _ in range(8)]
    quad = (j[0], j[1], j[2], ch - j[3], cw - j[4], ch - j[5], cw - j[6], j[7])
    out = canvas.transform((cw, ch), Image.Transform.QUAD, quad,
                           resample=Image.Resampling.BICUBIC)
    arr = np.asarray(out, dtype=np.float32)
    arr = arr * np.linspace(rng.uniform(0.75, 0.95), 1.0, cw, dtype=np.float32)[None, :, None]
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 0.9)))
    return _noise(out, rng, 4.0)


def samples(split: str) -> list[Sample]:
    cfg = SPLITS[split]
    out: list[Sample] = []
    rng = random.Random(split)
    themes = [("#1e1e1e", "#d4d4d4"), ("#ffffff", "#222222"), ("#002b36", "#93a1a1")]
    for p_i, page in enumerate(cfg["pages"]):
        lines = _paragraph_lines(page, 88)
        # Screenshots: a terminal (mono) and an app window (sans), clean pixels.
        for kind_font in ("mono", "sans"):
            rel = cfg[kind_font][p_i % len(cfg[kind_font])]
            size = cfg["screen_sizes"][(p_i + len(kind_font)) % len(cfg["screen_sizes"])]
            start = rng.randrange(0, max(1, len(lines) - 14))
            block = lines[start : start + 12]
            bg, fg = themes[rng.randrange(len(themes))]
            img = _draw(block, _font(rel, size), bg, fg, 14, 1.3)
            out.append(Sample(split, "screenshot", f"{page}-{Path(rel).stem}-{size}",
                              "\n".join(block), img))
        # A scanned page: serif or sans body text.
        rel = (cfg["serif"] + cfg["sans"])[p_i % (len(cfg["serif"]) + len(cfg["sans"]))]
        size = cfg["paper_sizes"][p_i % len(cfg["paper_sizes"])]
        block = lines[: 22]
        img = scan_like(_draw(block, _font(rel, size), "white", "black", 60, 1.35), rng)
        out.append(Sample(split, "scan", f"{page}-{Path(rel).stem}-{size}",
                          "\n".join(block), img))
        # A phone photo of a printed screenful.
        rel = cfg["mono"][p_i % len(cfg["mono"])] if p_i % 2 else cfg["serif"][0]
        size = cfg["paper_sizes"][-1] + 2
        block = lines[22:36] or lines[:14]
        img = photo_like(_draw(block, _font(rel, size), "white", "#202020", 40, 1.35), rng)
        out.append(Sample(split, "photo", f"{page}-{Path(rel).stem}-{size}",
                          "\n".join(block), img))
    # Protected tokens, shuffled into lines, clean and scanned, in every font of the split.
    for f_i, rel in enumerate(cfg["mono"] + cfg["sans"] + cfg["serif"]):
        tokens = PROTECTED[:]
        random.Random(f"{split}{f_i}").shuffle(tokens)
        block = [" ".join(tokens[i : i + 6]) for i in range(0, len(tokens), 6)]
        size = cfg["screen_sizes"][f_i % len(cfg["screen_sizes"])]
        img = _draw(block, _font(rel, size), "white", "black", 14, 1.4)
        if f_i % 2:
            img = scan_like(img, rng)
        out.append(Sample(split, "protected", f"{Path(rel).stem}-{size}", "\n".join(block), img))
    return out


class RecordingOcr(RapidOcr):
    """The backend, also keeping each line as the recogniser wrote it (the "before")."""

    raw: list[OcrBox]

    def _to_boxes(self, result: Any, width: int, height: int) -> list[OcrBox]:
        self.raw = [
            OcrBox(fix_digits(str(item[1]).strip()), quad_to_box(item[0], width, height),
                   float(item[2]))
            for item in result or []
            if str(item[1]).strip() and float(item[2]) >= self.settings.min_confidence
        ]
        return super()._to_boxes(result, width, height)


_EDGE = re.compile(r"^[^\w/~.-]+|[^\w/%]+$")


def tokens(text: str) -> list[str]:
    """Whitespace tokens without the punctuation around them ("(FILEs," -> "FILEs")."""
    return [t for t in (_EDGE.sub("", w) for w in text.split()) if t]


def long_words(text: str) -> Counter[str]:
    return Counter(t.lower() for t in tokens(text) if re.fullmatch(r"[A-Za-z]{4,}", t))


def whole(ref: Counter[str], hyp_text: str) -> int:
    hyp = Counter(t.lower() for t in tokens(hyp_text))
    return sum(min(n, hyp[w]) for w, n in ref.items())


def glued(ref: Counter[str], hyp_text: str) -> int:
    """Reference words not read whole but present inside a longer token: still glued
    (the rest of the misses are misread letters)."""
    hyp = Counter(t.lower() for t in tokens(hyp_text))
    longer = [t for t in hyp if len(t) > 4 and t not in ref]  # "files" does not hide "file"
    return sum(
        n - min(n, hyp[w]) for w, n in ref.items()
        if n > hyp[w] and any(w in t and t != w for t in longer)
    )


def cer(ref: str, hyp: str) -> float:
    a, b = " ".join(ref.split()), " ".join(hyp.split())
    return Levenshtein.distance(a, b) / max(1, len(a))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", default="both", choices=["tune", "heldout", "both"])
    parser.add_argument("--show", action="store_true", help="print words split or lost")
    args = parser.parse_args()
    splits = ["tune", "heldout"] if args.split == "both" else [args.split]
    engine = RecordingOcr(OcrSettings())
    engine.load()
    print("| split | kind | images | ref words 4+ | fidelity before | fidelity after "
          "| still glued | CER before | CER after | false splits | s/image |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for split in splits:
        data = samples(split)
        rows: dict[str, defaultdict[str, float]] = {}
        for s in data:
            start = time.perf_counter()
            after = ocr_text(engine.read(s.image))
            before = ocr_text(reading_order(engine.raw))
            seconds = time.perf_counter() - start
            r = rows.setdefault(s.kind, defaultdict(float))
            r["images"] += 1
            r["seconds"] += seconds
            if s.kind == "protected":  # exact, case included
                ref_all = Counter(tokens(s.text))
            else:
                ref = long_words(s.text)
                r["words"] += sum(ref.values())
                r["whole_before"] += whole(ref, before)
                r["whole_after"] += whole(ref, after)
                r["glued_after"] += glued(ref, after)
                ref_all = Counter(t.lower() for t in tokens(s.text))
            r["chars"] += len(" ".join(s.text.split()))
            r["err_before"] += cer(s.text, before) * len(" ".join(s.text.split()))
            r["err_after"] += cer(s.text, after) * len(" ".join(s.text.split()))
            hyp_b = Counter(t if s.kind == "protected" else t.lower() for t in tokens(before))
            hyp_a = Counter(t if s.kind == "protected" else t.lower() for t in tokens(after))
            for w, n in ref_all.items():
                was, now = min(n, hyp_b[w]), min(n, hyp_a[w])
                r["tok_whole_before"] += was
                r["tok_split"] += max(0, was - now)
                if args.show and was > now:
                    print(f"  split: {w!r} ({s.kind} {s.name})")
            if args.show and s.kind != "protected":
                lost = long_words(s.text) - long_words(after)
                if lost:
                    print(f"  {s.kind} {s.name} not whole: {sorted(lost)[:12]}")
        for kind, r in rows.items():
            fid_b = r["whole_before"] / r["words"] if r["words"] else float("nan")
            fid_a = r["whole_after"] / r["words"] if r["words"] else float("nan")
            stuck = r["glued_after"] / r["words"] if r["words"] else float("nan")
            print(f"| {split} | {kind} | {int(r['images'])} | {int(r['words'])} | {fid_b:.3f} "
                  f"| {fid_a:.3f} | {stuck:.3f} | {r['err_before'] / r['chars']:.3f} "
                  f"| {r['err_after'] / r['chars']:.3f} "
                  f"| {int(r['tok_split'])}/{int(r['tok_whole_before'])} "
                  f"({r['tok_split'] / max(1, r['tok_whole_before']):.2%}) "
                  f"| {r['seconds'] / r['images']:.1f} |")


if __name__ == "__main__":
    main()
