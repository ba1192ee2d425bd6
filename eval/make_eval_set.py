"""Build the retrieval evaluation corpus from the manual pages installed on this machine.

Why man pages: they are real technical documents, hundreds of them sit on any Debian or
Ubuntu machine, and they come in families that share vocabulary (a dozen compressors,
forty networking tools, the whole of coreutils), so every question has plausible
confusers. ``eval/sources.tsv`` (committed) lists each document: the man page, its
cluster, and the form it takes in the corpus:

- ``txt`` / ``md``: the rendered page as plain text or Markdown (sections as headings);
- ``pdf``: a text-layer PDF of the page (reportlab, DejaVu Sans Mono);
- ``png``: a terminal screenshot of one screen of the page (several themes and font
  sizes, some small), named ``screenshot-NNN.png`` as screenshots are;
- ``scan``: an image-only PDF of the first page or two, printed and scanned: grey paper,
  noise, a slight rotation; named ``scan-NNN.pdf``;
- ``jpg``: a phone photo of a printed screenful: perspective, shading, blur, JPEG.

Every random choice is seeded by the file name and PDFs carry no timestamps, so the
output depends only on the installed man pages, fonts and library versions. Pages are
rendered with ``man`` at 100 columns and cut at the source's character limit (8000 for
most, 36000 for a few long pages whose questions sit deep inside): the whole set must
ingest in minutes on two busy cores, and embedding time grows with the text.

Usage::

    python eval/make_eval_set.py                 # -> eval/corpus/ (ignored by git)
    python eval/make_eval_set.py --only 40       # the first 40 sources (a quick slice)
    python eval/make_eval_set.py --out /tmp/c --files gzip.txt screenshot-001.png
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import os
import random
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources.tsv"
QUERY_IMAGES = HERE / "query_images.tsv"
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
MAN_WIDTH = 100
MAX_CHARS = 50_000  # the most any document keeps; sources.tsv sets each one's limit
SCREEN_LINES = 44
SCAN_LINES = 70
PHOTO_LINES = 34
KINDS = ("txt", "md", "pdf", "png", "scan", "jpg")


@dataclass(frozen=True)
class Source:
    file: str
    page: str
    section: str
    cluster: str
    kind: str
    max_chars: int = 8000


class MissingManPage(RuntimeError):
    pass


def read_sources(path: Path = SOURCES) -> list[Source]:
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 6 or parts[4] not in KINDS:
            raise ValueError(
                f"{path}:{lineno}: expected file, page, section, cluster, kind, max characters"
            )
        out.append(Source(*parts[:5], max_chars=int(parts[5])))
    return out


@functools.cache
def man_available() -> bool:
    return shutil.which("man") is not None and shutil.which("col") is not None


def render_man(page: str, section: str, max_chars: int = MAX_CHARS) -> str:
    """The page as ``man`` shows it at 100 columns, without overstrike formatting, cut at
    a paragraph break before ``max_chars``."""
    if not man_available():
        raise MissingManPage("`man` and `col` are needed to render the corpus (apt install man-db)")
    env = {**os.environ, "MANWIDTH": str(MAN_WIDTH), "LC_ALL": "C.UTF-8", "MANPAGER": "cat"}
    found = subprocess.run(["man", "-w", section, page], capture_output=True, text=True, env=env)
    if found.returncode != 0 or not found.stdout.strip():
        raise MissingManPage(f"man page {page}({section}) is not installed here")
    path = found.stdout.split()[0]
    rendered = subprocess.run(
        f"man -E UTF-8 -P cat -l {path!s} | col -bx",
        shell=True, capture_output=True, text=True, env=env, check=True,
    ).stdout
    lines = [ln.rstrip() for ln in rendered.splitlines()]
    text = "\n".join(lines).strip("\n") + "\n"
    if len(text) > max_chars:
        cut = text.rfind("\n\n", 0, max_chars)
        text = text[: cut if cut > max_chars // 2 else max_chars].rstrip() + "\n"
    return text


def rng_for(name: str) -> random.Random:
    return random.Random(int(hashlib.sha256(name.encode()).hexdigest()[:16], 16))


@functools.cache
def font(size: int, mono: bool = True) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = FONT_DIR / ("DejaVuSansMono.ttf" if mono else "DejaVuSerif.ttf")
    return ImageFont.truetype(str(path), size) if path.exists() else ImageFont.load_default(size)


# ---- text forms ---------------------------------------------------------------------

_HEADING = re.compile(r"^[A-Z][A-Z0-9 ,/&()'-]+$")


def to_markdown(page: str, section: str, text: str) -> str:
    """Man text as Markdown: the page name as title, section headings as ``##``, body
    paragraphs de-indented, option lists kept as indented code-free lines."""
    out = [f"# {page}({section})", ""]
    for line in text.splitlines()[1:]:
        if _HEADING.match(line) and not line.startswith(" "):
            out += ["", f"## {line.title()}", ""]
        elif line.startswith("   ") and line.strip():
            body = line[7:] if line.startswith("       ") else line.strip()
            out.append(body)
        else:
            out.append(line.strip())
    md = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", md).strip() + "\n"


def text_pdf(text: str, title: str) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    face = "Courier"
    mono = FONT_DIR / "DejaVuSansMono.ttf"
    if mono.exists():
        if "DejaVuMono" not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont("DejaVuMono", str(mono)))
        face = "DejaVuMono"
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1)
    c.setTitle(title)
    width, height = A4
    size, leading, margin = 7.8, 10.0, 36
    per_page = int((height - 2 * margin) // leading)
    lines = text.splitlines()
    for start in range(0, max(1, len(lines)), per_page):
        c.setFont(face, size)
        y = height - margin
        for line in lines[start : start + per_page]:
            c.drawString(margin, y, line if face != "Courier" else _latin1(line))
            y -= leading
        c.showPage()
    c.save()
    return buf.getvalue()


def _latin1(s: str) -> str:
    return s.replace("\u2010", "-").encode("latin-1", "replace").decode("latin-1")


# ---- image forms --------------------------------------------------------------------

THEMES = [
    ("#1e1e1e", "#d4d4d4", "#3c3c3c"),  # dark
    ("#ffffff", "#202020", "#e0e0e0"),  # light
    ("#002b36", "#93a1a1", "#073642"),  # solarized dark
    ("#000000", "#33ff66", "#202020"),  # green phosphor
    ("#fdf6e3", "#586e75", "#eee8d5"),  # solarized light
]
SCREEN_FONTS = [12, 13, 14, 15, 16, 18]


def window(text: str, rng: random.Random, lines: int) -> list[str]:
    """One screenful: the top of the page, or the screen starting at its option list."""
    all_lines = text.splitlines()
    starts = [0]
    for i, line in enumerate(all_lines):
        if line.strip() in ("OPTIONS", "COMMAND OPTIONS", "DESCRIPTION") and i > 0:
            starts.append(i)
    start = starts[rng.randrange(len(starts))]
    return [ln[:MAN_WIDTH] for ln in all_lines[start : start + lines]]


def screenshot(src: Source, text: str) -> Image.Image:
    rng = rng_for(src.file)
    bg, fg, bar = THEMES[rng.randrange(len(THEMES))]
    size = SCREEN_FONTS[rng.randrange(len(SCREEN_FONTS))]
    f = font(size)
    lines = window(text, rng, SCREEN_LINES)
    cw = f.getlength("M")
    lh = int(size * 1.25)
    w = int(cw * MAN_WIDTH) + 24
    h = lh * len(lines) + 44
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, w, 26], fill=bar)
    for i, col in enumerate(("#ff5f56", "#ffbd2e", "#27c93f")):
        d.ellipse([10 + i * 20, 8, 22 + i * 20, 20], fill=col)
    d.text((80, 6), f"user@build-{rng.randrange(2, 40):02d}: ~ - man {src.page}",
           fill=fg, font=font(12))
    y = 36
    for line in lines:
        d.text((12, y), line, fill=fg, font=f)
        y += lh
    return img


def paper_page(lines: list[str], rng: random.Random, size: tuple[int, int], fsize: int,
               margin: int) -> Image.Image:
    shade = rng.randrange(228, 246)
    img = Image.new("L", size, shade)
    d = ImageDraw.Draw(img)
    f = font(fsize)
    y = margin
    for line in lines:
        d.text((margin, y), line, fill=rng.randrange(15, 50), font=f)
        y += int(fsize * 1.3)
    return img


def _noise(img: Image.Image, rng: random.Random, sigma: float) -> Image.Image:
    arr = np.asarray(img, dtype=np.float32)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, sigma, arr.shape)
    return Image.fromarray(np.clip(arr + noise, 0, 255).astype(np.uint8))


def scan_pdf(src: Source, text: str) -> bytes:
    rng = rng_for(src.file)
    lines = text.splitlines()
    pages = []
    count = 2 if rng.random() < 0.4 else 1  # most scans are one page, some two
    for start in range(0, min(len(lines), count * SCAN_LINES), SCAN_LINES):
        page = paper_page(lines[start : start + SCAN_LINES], rng, (1240, 1754), 14, 90)
        page = page.rotate(rng.uniform(-1.2, 1.2), resample=Image.BICUBIC, fillcolor=235)
        page = page.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.7)))
        pages.append(_noise(page, rng, rng.uniform(4, 9)).convert("RGB"))
    buf = io.BytesIO()
    pages[0].save(buf, "PDF", resolution=150.0, save_all=True, append_images=pages[1:],
                  title=src.file, creationDate=None, modDate=None)
    return buf.getvalue()


def photo(src: Source, text: str) -> Image.Image:
    rng = rng_for(src.file)
    lines = window(text, rng, PHOTO_LINES)
    paper = paper_page(lines, rng, (1300, 1000), 16, 50).convert("RGB")
    w, h = 1600, 1200
    canvas = Image.new("RGB", (w, h), (rng.randrange(60, 110),) * 3)
    ox, oy = 150 + rng.randrange(-30, 30), 100 + rng.randrange(-30, 30)
    canvas.paste(paper, (ox, oy))
    # Perspective: the quad in the canvas that maps to the output corners.
    j = [rng.randrange(0, 60) for _ in range(8)]
    quad = (j[0], j[1], j[2], h - j[3], w - j[4], h - j[5], w - j[6], j[7])
    img = canvas.transform((w, h), Image.QUAD, quad, resample=Image.BICUBIC)
    arr = np.asarray(img, dtype=np.float32)
    xs = np.linspace(rng.uniform(0.75, 0.95), 1.0, w, dtype=np.float32)
    arr = arr * xs[None, :, None]
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.1)))
    return _noise(img, rng, 5.0)


# ---- query images -------------------------------------------------------------------


def read_query_images(path: Path = QUERY_IMAGES) -> list[tuple[str, str, str, str, int]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, page, section, anchor, lines = line.split("\t")
            rows.append((name, page, section, anchor, int(lines)))
    return rows


def query_image(name: str, page: str, section: str, anchor: str, lines: int) -> Image.Image:
    """A user's own screenshot of a few lines of a page: a crop starting at ``anchor``,
    in a theme and size of its own (not the corpus copy's), as a query by image."""
    text = render_man(page, section).splitlines()
    start = next(i for i, ln in enumerate(text) if re.search(anchor, ln))
    crop = [ln[:MAN_WIDTH] for ln in text[start : start + lines]]
    rng = rng_for(name)
    bg, fg, _ = THEMES[rng.randrange(len(THEMES))]
    f = font(SCREEN_FONTS[rng.randrange(len(SCREEN_FONTS))] + 2)
    lh = int(f.size * 1.3)
    width = int(f.getlength("M") * max(len(ln) for ln in crop)) + 30
    img = Image.new("RGB", (width, lh * len(crop) + 24), bg)
    d = ImageDraw.Draw(img)
    for i, line in enumerate(crop):
        d.text((15, 12 + i * lh), line, fill=fg, font=f)
    return img


def build_query_images(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, page, section, anchor, lines in read_query_images():
        path = out / name
        query_image(name, page, section, anchor, lines).save(path)
        paths.append(path)
    return paths


# ---- driver -------------------------------------------------------------------------


def build_one(src: Source, out: Path) -> Path:
    text = render_man(src.page, src.section, src.max_chars)
    path = out / src.file
    if src.kind == "txt":
        path.write_text(text)
    elif src.kind == "md":
        path.write_text(to_markdown(src.page, src.section, text))
    elif src.kind == "pdf":
        path.write_bytes(text_pdf(text, f"{src.page}({src.section})"))
    elif src.kind == "png":
        screenshot(src, text).save(path, optimize=False)
    elif src.kind == "scan":
        path.write_bytes(scan_pdf(src, text))
    else:
        photo(src, text).save(path, quality=85)
    return path


def build(out: Path, sources: list[Source]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [build_one(s, out) for s in sources]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "corpus")
    ap.add_argument("--queries", type=Path, default=HERE / "queries",
                    help="where the query images go (the .jsonl files refer to queries/)")
    ap.add_argument("--only", type=int, default=None, help="build only the first N sources")
    ap.add_argument("--files", nargs="*", default=None, help="build only these files")
    args = ap.parse_args(argv)
    sources = read_sources()
    if args.files:
        sources = [s for s in sources if s.file in set(args.files)]
    if args.only:
        sources = sources[: args.only]
    paths = build(args.out, sources)
    print(f"{len(paths)} documents in {args.out}")
    queries = build_query_images(args.queries)
    print(f"{len(queries)} query images in {args.queries}")


if __name__ == "__main__":
    main()
