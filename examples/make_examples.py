"""Build the bundled example corpus and the query images of its evaluation set.

Why a script and not just committed files: the corpus has to be reproducible byte for byte
(so a changed file means a changed generator, not a re-save in some editor), it must not
need a download, and a reader should be able to see exactly how each "scan" or
"screenshot" was made. Every random choice uses a fixed seed, the PDFs carry no
timestamps, and all text lives in this file, so running it twice gives identical bytes
(for the same Pillow, reportlab, numpy and font versions).

Usage::

    python examples/make_examples.py                  # examples/corpus, examples/queries
    python examples/make_examples.py --out /tmp/x/corpus
        # -> /tmp/x/corpus, /tmp/x/queries, /tmp/x/queries.jsonl

The query set itself (``queries.jsonl``) is written from ``QUERIES`` at the bottom of
this file, next to the query-image folder.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")

# --------------------------------------------------------------------------------------
# fonts and small drawing helpers
# --------------------------------------------------------------------------------------

AnyFont = ImageFont.FreeTypeFont | ImageFont.ImageFont


@functools.cache
def font(size: int, mono: bool = False, bold: bool = False) -> AnyFont:
    """DejaVu when installed; otherwise Pillow's bundled scalable default font.

    The fallback keeps the script usable on machines without DejaVu (the output then
    differs, which is fine: the committed corpus is made with DejaVu).
    """
    names = {
        (False, False): "DejaVuSans.ttf",
        (False, True): "DejaVuSans-Bold.ttf",
        (True, False): "DejaVuSansMono.ttf",
        (True, True): "DejaVuSansMono-Bold.ttf",
    }
    for name in (names[(mono, bold)], names[(mono, False)]):
        path = FONT_DIR / name
        if path.exists():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def text_width(f: AnyFont, s: str) -> float:
    return float(f.getlength(s))


def wrap_px(text: str, f: AnyFont, max_px: float) -> list[str]:
    """Greedy word wrap by pixel width, so it works for any font (mono or not)."""
    out: list[str] = []
    for para in text.split("\n"):
        words = para.split(" ")
        line = ""
        for w in words:
            cand = w if not line else f"{line} {w}"
            if text_width(f, cand) <= max_px or not line:
                line = cand
            else:
                out.append(line)
                line = w
        out.append(line)
    return out


Color = tuple[int, int, int]


@dataclass(frozen=True)
class Theme:
    bg: Color
    panel: Color
    fg: Color
    muted: Color
    accent: Color
    border: Color
    field: Color
    titlebar: Color
    prompt: Color
    warn: Color
    ok: Color


LIGHT = Theme(
    bg=(243, 244, 247),
    panel=(255, 255, 255),
    fg=(28, 30, 36),
    muted=(96, 102, 115),
    accent=(37, 99, 235),
    border=(200, 204, 212),
    field=(250, 251, 253),
    titlebar=(225, 228, 234),
    prompt=(22, 120, 60),
    warn=(180, 40, 30),
    ok=(22, 120, 60),
)
DARK = Theme(
    bg=(30, 31, 36),
    panel=(40, 42, 48),
    fg=(222, 225, 231),
    muted=(150, 156, 168),
    accent=(96, 165, 250),
    border=(70, 74, 84),
    field=(28, 29, 34),
    titlebar=(52, 54, 62),
    prompt=(110, 205, 120),
    warn=(248, 113, 113),
    ok=(110, 205, 120),
)
SOLARIZED_LIGHT = Theme(
    bg=(253, 246, 227),
    panel=(253, 246, 227),
    fg=(60, 70, 75),
    muted=(101, 123, 131),
    accent=(38, 139, 210),
    border=(200, 195, 175),
    field=(238, 232, 213),
    titlebar=(230, 224, 205),
    prompt=(133, 153, 0),
    warn=(220, 50, 47),
    ok=(133, 153, 0),
)

PROMPT_RE = re.compile(r"^(\S+@[\w.-]+:[^$#]*[$#] )(.*)$")


def window_chrome(draw: ImageDraw.ImageDraw, w: int, theme: Theme, title: str) -> int:
    """Title bar with traffic-light buttons; returns its height."""
    h = 40
    draw.rectangle([0, 0, w, h], fill=theme.titlebar)
    for i, c in enumerate([(237, 106, 94), (245, 191, 79), (98, 197, 84)]):
        draw.ellipse([16 + i * 24, 13, 30 + i * 24, 27], fill=c)
    f = font(18, bold=True)
    draw.text(((w - text_width(f, title)) / 2, 10), title, font=f, fill=theme.muted)
    return h


def render_terminal(
    lines: Sequence[str],
    theme: Theme,
    title: str,
    size: int = 22,
    pad: int = 22,
    min_width: int = 0,
) -> Image.Image:
    f = font(size, mono=True)
    fb = font(size, mono=True, bold=True)
    lh = int(size * 1.45)
    width = int(max([text_width(f, ln) for ln in lines] + [min_width])) + 2 * pad
    height = 40 + pad * 2 + lh * len(lines)
    img = Image.new("RGB", (width, height), theme.bg)
    d = ImageDraw.Draw(img)
    top = window_chrome(d, width, theme, title) + pad
    for i, ln in enumerate(lines):
        y = top + i * lh
        m = PROMPT_RE.match(ln)
        if m:
            d.text((pad, y), m.group(1), font=fb, fill=theme.prompt)
            d.text((pad + text_width(fb, m.group(1)), y), m.group(2), font=f, fill=theme.fg)
        elif ln.lstrip().startswith("#"):
            d.text((pad, y), ln, font=f, fill=theme.muted)
        else:
            d.text((pad, y), ln, font=f, fill=theme.fg)
    return img


class Form:
    """A tiny immediate-mode layout for settings dialogs and editor screens."""

    def __init__(self, width: int, theme: Theme, title: str, size: int = 22) -> None:
        self.w = width
        self.t = theme
        self.size = size
        self.items: list[tuple[int, Callable[[ImageDraw.ImageDraw, int], None]]] = []
        self.title = title
        self.pad = 32

    def _add(self, h: int, fn: Callable[[ImageDraw.ImageDraw, int], None]) -> None:
        self.items.append((h, fn))

    def heading(self, text: str, size: int | None = None) -> None:
        f = font(size or self.size + 6, bold=True)

        def draw(d: ImageDraw.ImageDraw, y: int) -> None:
            d.text((self.pad, y), text, font=f, fill=self.t.fg)

        self._add(int((size or self.size + 6) * 1.8), draw)

    def tabs(self, names: Sequence[str], active: int) -> None:
        f = font(self.size - 2)

        def draw(d: ImageDraw.ImageDraw, y: int) -> None:
            x = self.pad
            for i, n in enumerate(names):
                tw = text_width(f, n)
                col = self.t.accent if i == active else self.t.muted
                d.text((x, y), n, font=f, fill=col)
                if i == active:
                    d.rectangle([x, y + self.size + 8, x + tw, y + self.size + 11], fill=col)
                x += int(tw) + 40
            d.line(
                [self.pad, y + self.size + 12, self.w - self.pad, y + self.size + 12],
                fill=self.t.border,
                width=1,
            )

        self._add(self.size + 34, draw)

    def field(self, label: str, value: str, label_w: int = 300, mono: bool = False) -> None:
        fl = font(self.size)
        fv = font(self.size, mono=mono)
        h = int(self.size * 2.1)

        def draw(d: ImageDraw.ImageDraw, y: int) -> None:
            d.text((self.pad, y + 8), label, font=fl, fill=self.t.muted)
            x0 = self.pad + label_w
            d.rounded_rectangle(
                [x0, y, self.w - self.pad, y + h - 8],
                radius=6,
                fill=self.t.field,
                outline=self.t.border,
                width=2,
            )
            d.text((x0 + 12, y + 8), value, font=fv, fill=self.t.fg)

        self._add(h + 8, draw)

    def checkbox(self, checked: bool, text: str) -> None:
        f = font(self.size)

        def draw(d: ImageDraw.ImageDraw, y: int) -> None:
            s = self.size
            box = [self.pad, y + 3, self.pad + s, y + 3 + s]
            if checked:
                d.rounded_rectangle(box, radius=4, fill=self.t.accent)
                d.line(
                    [box[0] + 5, y + 3 + s // 2, box[0] + s // 2 - 1, y + s - 1, box[2] - 4, y + 8],
                    fill=(255, 255, 255),
                    width=3,
                )
            else:
                d.rounded_rectangle(box, radius=4, outline=self.t.border, width=2)
            d.text((self.pad + s + 14, y), text, font=f, fill=self.t.fg)

        self._add(int(self.size * 1.7), draw)

    def paragraph(
        self,
        text: str,
        muted: bool = True,
        size: int | None = None,
        mono: bool = False,
        boxed: bool = False,
    ) -> None:
        sz = size or self.size
        f = font(sz, mono=mono)
        inset = 16 if boxed else 0
        lines = wrap_px(text, f, self.w - 2 * self.pad - 2 * inset)
        lh = int(sz * 1.45)
        h = lh * len(lines) + 2 * inset

        def draw(d: ImageDraw.ImageDraw, y: int) -> None:
            if boxed:
                d.rounded_rectangle(
                    [self.pad, y, self.w - self.pad, y + h],
                    radius=6,
                    fill=self.t.field,
                    outline=self.t.border,
                    width=2,
                )
            for i, ln in enumerate(lines):
                d.text(
                    (self.pad + inset, y + inset + i * lh),
                    ln,
                    font=f,
                    fill=self.t.muted if muted else self.t.fg,
                )

        self._add(h + 14, draw)

    def code_box(self, lines: Sequence[str], size: int | None = None) -> None:
        sz = size or self.size
        f = font(sz, mono=True)
        lh = int(sz * 1.45)
        h = lh * len(lines) + 28

        def draw(d: ImageDraw.ImageDraw, y: int) -> None:
            d.rounded_rectangle(
                [self.pad, y, self.w - self.pad, y + h],
                radius=6,
                fill=self.t.field,
                outline=self.t.border,
                width=2,
            )
            for i, ln in enumerate(lines):
                d.text((self.pad + 14, y + 14 + i * lh), ln, font=f, fill=self.t.fg)

        self._add(h + 14, draw)

    def buttons(self, names: Sequence[str], primary: int) -> None:
        f = font(self.size, bold=True)

        def draw(d: ImageDraw.ImageDraw, y: int) -> None:
            x = self.w - self.pad
            for i, n in reversed(list(enumerate(names))):
                tw = int(text_width(f, n))
                x0 = x - tw - 40
                if i == primary:
                    d.rounded_rectangle(
                        [x0, y, x, y + self.size + 22], radius=8, fill=self.t.accent
                    )
                    d.text((x0 + 20, y + 10), n, font=f, fill=(255, 255, 255))
                else:
                    d.rounded_rectangle(
                        [x0, y, x, y + self.size + 22], radius=8, outline=self.t.border, width=2
                    )
                    d.text((x0 + 20, y + 10), n, font=f, fill=self.t.fg)
                x = x0 - 16

        self._add(self.size + 40, draw)

    def space(self, h: int) -> None:
        self._add(h, lambda d, y: None)

    def render(self) -> Image.Image:
        height = 40 + self.pad + sum(h for h, _ in self.items) + self.pad
        img = Image.new("RGB", (self.w, height), self.t.panel)
        d = ImageDraw.Draw(img)
        y = window_chrome(d, self.w, self.t, self.title) + self.pad
        for h, fn in self.items:
            fn(d, y)
            y += h
        return img


def render_table(
    title: str,
    subtitle: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    col_w: Sequence[int],
    footer: str,
    theme: Theme = LIGHT,
    size: int = 22,
) -> Image.Image:
    pad = 28
    f = font(size)
    fb = font(size, bold=True)
    rh = int(size * 2.0)
    width = sum(col_w) + 2 * pad
    foot = wrap_px(footer, f, width - 2 * pad)
    height = 40 + pad + 60 + 40 + rh * (len(rows) + 1) + 20 + len(foot) * int(size * 1.45) + pad
    img = Image.new("RGB", (width, height), theme.panel)
    d = ImageDraw.Draw(img)
    y = window_chrome(d, width, theme, "Data Import") + pad
    d.text((pad, y), title, font=font(size + 6, bold=True), fill=theme.fg)
    y += 44
    d.text((pad, y), subtitle, font=f, fill=theme.warn)
    y += 48
    d.rectangle([pad, y, width - pad, y + rh], fill=theme.titlebar)
    x = pad
    for h, cw in zip(header, col_w, strict=True):
        d.text((x + 10, y + 10), h, font=fb, fill=theme.fg)
        x += cw
    y += rh
    for r_i, row in enumerate(rows):
        if r_i % 2:
            d.rectangle([pad, y, width - pad, y + rh], fill=theme.field)
        x = pad
        for c_i, (cell, cw) in enumerate(zip(row, col_w, strict=True)):
            col = theme.warn if c_i == 2 else theme.fg
            d.text((x + 10, y + 10), cell, font=f, fill=col)
            x += cw
        d.line([pad, y + rh, width - pad, y + rh], fill=theme.border)
        y += rh
    y += 20
    for i, ln in enumerate(foot):
        d.text((pad, y + i * int(size * 1.45)), ln, font=f, fill=theme.muted)
    return img


def perspective_coeffs(
    src: Sequence[tuple[float, float]], dst: Sequence[tuple[float, float]]
) -> list[float]:
    """Coefficients for Image.transform(PERSPECTIVE) mapping output dst -> input src."""
    a = []
    b = []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b += [u, v]
    sol = np.linalg.solve(np.array(a, dtype=np.float64), np.array(b, dtype=np.float64))
    return [float(round(c, 10)) for c in sol]


def photo_of(
    img: Image.Image,
    seed: int,
    out_size: tuple[int, int],
    bezel: Color,
    warp: float = 0.04,
    blur: float = 0.8,
    noise: float = 5.0,
) -> Image.Image:
    """Make a 'phone photo' of an image: perspective, uneven light, blur and sensor noise."""
    rng = np.random.default_rng(seed)
    w, h = out_size
    canvas = Image.new("RGB", (w, h), bezel)
    m = int(min(w, h) * 0.06)
    inner = img.resize((w - 2 * m, h - 2 * m), Image.Resampling.LANCZOS)
    canvas.paste(inner, (m, m))
    j = rng.uniform(-warp, warp, size=8) * np.array([w, h] * 4)
    dst = [(0 + j[0], 0 + j[1]), (w + j[2], 0 + j[3]), (w + j[4], h + j[5]), (0 + j[6], h + j[7])]
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    # keep the warped content inside the frame: shrink the destination quad a little
    cx, cy = w / 2, h / 2
    dst = [(cx + (x - cx) * 0.95, cy + (y - cy) * 0.95) for x, y in dst]
    out = canvas.transform(
        (w, h),
        Image.Transform.PERSPECTIVE,
        perspective_coeffs(src, dst),
        Image.Resampling.BICUBIC,
        fillcolor=(58, 52, 47),
    )
    arr = np.asarray(out).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    lx, ly = rng.uniform(0.2, 0.8) * w, rng.uniform(0.1, 0.5) * h
    light = 1.08 - 0.25 * (((xx - lx) / w) ** 2 + ((yy - ly) / h) ** 2)
    arr = arr * light[..., None]
    arr += rng.normal(0, noise, size=arr.shape).astype(np.float32)
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return out.filter(ImageFilter.GaussianBlur(blur))


# --------------------------------------------------------------------------------------
# "scanned" pages: the same block model as the text PDFs, drawn with Pillow then degraded
# --------------------------------------------------------------------------------------

Block = tuple[Any, ...]  # ("h1", text) | ("p", text) | ("code", text) | ("bullets", [..]) ...

SCAN_DPI = 150
SCAN_SIZE = (1240, 1754)  # A4 at 150 dpi


def render_page(blocks: Sequence[Block], header: str, footer: str) -> Image.Image:
    w, h = SCAN_SIZE
    img = Image.new("L", (w, h), 255)
    d = ImageDraw.Draw(img)
    left, right = 120, w - 120
    y = 110
    small = font(20)
    d.text((left, 60), header, font=small, fill=90)
    d.text((left, h - 90), footer, font=small, fill=90)
    for blk in blocks:
        kind = blk[0]
        if kind == "h1":
            f = font(38, bold=True)
            for ln in wrap_px(blk[1], f, right - left):
                d.text((left, y), ln, font=f, fill=10)
                y += 52
            y += 14
        elif kind == "h2":
            y += 12
            f = font(29, bold=True)
            d.text((left, y), blk[1], font=f, fill=15)
            y += 46
        elif kind == "meta":
            f = font(24)
            for ln in wrap_px(blk[1], f, right - left):
                d.text((left, y), ln, font=f, fill=60)
                y += 34
            y += 10
        elif kind == "p":
            f = font(27)
            for ln in wrap_px(blk[1], f, right - left):
                d.text((left, y), ln, font=f, fill=20)
                y += 38
            y += 14
        elif kind == "bullets":
            f = font(26)
            for item in blk[1]:
                lines = wrap_px(item, f, right - left - 40)
                d.text((left + 6, y), "\u2022", font=f, fill=20)
                for ln in lines:
                    d.text((left + 40, y), ln, font=f, fill=20)
                    y += 37
                y += 6
            y += 10
        elif kind == "code":
            f = font(24, mono=True)
            lines = blk[1].split("\n")
            d.rectangle([left, y - 6, right, y + 35 * len(lines) + 8], outline=120, width=2)
            for ln in lines:
                d.text((left + 16, y + 2), ln, font=f, fill=15)
                y += 35
            y += 26
        elif kind == "rows":  # two-column rows: (left cell, right cell), first col width
            col = blk[2]
            f = font(26)
            for a, b in blk[1]:
                lines = wrap_px(b, f, right - left - col)
                d.text((left, y), a, font=font(26, bold=True), fill=15)
                for ln in lines:
                    d.text((left + col, y), ln, font=f, fill=20)
                    y += 37
                y += 8
            y += 10
        else:  # pragma: no cover - programming error
            raise ValueError(kind)
    if y > h - 110:
        raise ValueError(f"page overflow: {header} ({y}px)")
    return img


def degrade_scan(page: Image.Image, seed: int) -> Image.Image:
    """Paper tone, faint texture, specks, a tilt under 1 degree and scanner blur."""
    rng = np.random.default_rng(seed)
    angle = float(rng.uniform(-0.9, 0.9))
    img = page.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=255)
    w, h = img.size
    arr = np.asarray(img).astype(np.float32)
    # ink is never pure black, paper never pure white
    arr = (40 + arr * (232 - 40) / 255).astype(np.float32)
    tex = rng.normal(0, 1, size=(h // 32 + 1, w // 32 + 1)).astype(np.float32)
    tex_img = Image.fromarray(((tex * 20) + 128).clip(0, 255).astype(np.uint8))
    tex_big = np.asarray(tex_img.resize((w, h), Image.Resampling.BICUBIC)).astype(np.float32)
    arr += (tex_big - 128) * 0.25
    # shadow along the left edge where the page did not lie flat on the glass
    xs = np.arange(w, dtype=np.float32)
    arr -= (30 * np.exp(-xs / 18))[None, :]
    n_specks = 160
    sx = rng.integers(0, w, n_specks)
    sy = rng.integers(0, h, n_specks)
    for x, y in zip(sx, sy, strict=True):
        arr[y : y + 2, x : x + 2] = rng.uniform(60, 150)
    arr += rng.normal(0, 2.5, size=arr.shape).astype(np.float32)
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="L")
    return out.filter(ImageFilter.GaussianBlur(0.45))


def save_scanned_pdf(path: Path, pages: Sequence[Image.Image], title: str) -> None:
    """Image-only PDF (no text layer) with no creation/modification dates."""
    first, rest = pages[0], list(pages[1:])
    first.save(
        path,
        "PDF",
        save_all=True,
        append_images=rest,
        resolution=float(SCAN_DPI),
        quality=72,
        title=title,
        author="",
        creationDate=None,
        modDate=None,
    )


# --------------------------------------------------------------------------------------
# text PDFs with reportlab
# --------------------------------------------------------------------------------------


def rl_inline(text: str) -> str:
    """Escape for reportlab Paragraph markup and turn `code` spans into Courier."""
    esc = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"`([^`]+)`", r'<font face="Courier">\1</font>', esc)


def save_text_pdf(path: Path, pages: Sequence[Sequence[Block]], title: str) -> None:
    from reportlab import rl_config
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import (
        ListFlowable,
        ListItem,
        PageBreak,
        Paragraph,
        Preformatted,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    rl_config.invariant = 1
    ss = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=ss["BodyText"], fontSize=10.5, leading=14.5)
    code = ParagraphStyle(
        "code",
        parent=ss["Code"],
        fontSize=8.8,
        leading=11.5,
        backColor=colors.HexColor("#f3f4f6"),
        borderPadding=5,
    )
    meta = ParagraphStyle("meta", parent=body, textColor=colors.HexColor("#555555"))
    story: list[Any] = []
    for p_i, blocks in enumerate(pages):
        if p_i:
            story.append(PageBreak())
        for blk in blocks:
            kind = blk[0]
            if kind == "h1":
                story.append(Paragraph(rl_inline(blk[1]), ss["Title"]))
            elif kind == "h2":
                story.append(Paragraph(rl_inline(blk[1]), ss["Heading2"]))
            elif kind == "meta":
                story.append(Paragraph(rl_inline(blk[1]), meta))
                story.append(Spacer(1, 6))
            elif kind == "p":
                story.append(Paragraph(rl_inline(blk[1]), body))
            elif kind == "bullets":
                story.append(
                    ListFlowable(
                        [ListItem(Paragraph(rl_inline(t), body), leftIndent=12) for t in blk[1]],
                        bulletType="bullet",
                        start="\u2022",
                        leftIndent=12,
                    )
                )
            elif kind == "numbered":
                story.append(
                    ListFlowable(
                        [ListItem(Paragraph(rl_inline(t), body)) for t in blk[1]],
                        bulletType="1",
                        leftIndent=16,
                    )
                )
            elif kind == "code":
                story.append(Spacer(1, 4))
                story.append(Preformatted(blk[1], code))
                story.append(Spacer(1, 8))
            elif kind == "table":
                rows = [[Paragraph(rl_inline(c), body) for c in r] for r in blk[1]]
                t = Table(rows, colWidths=[w * cm for w in blk[2]], hAlign="LEFT")
                t.setStyle(
                    TableStyle(
                        [
                            ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#999999")),
                            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e5e7eb")),
                            ("VALIGN", (0, 0), (-1, -1), "TOP"),
                        ]
                    )
                )
                story.append(Spacer(1, 4))
                story.append(t)
                story.append(Spacer(1, 8))
            else:  # pragma: no cover - programming error
                raise ValueError(kind)

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(2 * cm, 1.2 * cm, f"{title}  -  page {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        invariant=1,
        title=title,
        author="Acme Engineering",
        subject=title,
        creator="mmrag examples/make_examples.py",
        producer="reportlab",
        leftMargin=2 * cm,
        rightMargin=2 * cm,
        topMargin=2 * cm,
        bottomMargin=2 * cm,
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)


# --------------------------------------------------------------------------------------
# the documents
# --------------------------------------------------------------------------------------

MD_DOCS: dict[str, str] = {}
TXT_DOCS: dict[str, str] = {}

MD_DOCS["k8s_liveness_probe_runbook.md"] = """\
# Runbook: payments-api pods restarting on failed liveness probes

**Service:** payments-api (namespace `payments`) · **Owner:** platform-sre ·
**Reviewed:** 2024-05-02

## Symptoms

- `kubectl get pods -n payments` shows the RESTARTS column climbing (10 or more per hour)
  while the pods look `Running` most of the time.
- Events contain `Liveness probe failed: Get "http://10.42.3.17:8080/healthz": context
  deadline exceeded (Client.Timeout exceeded while awaiting headers)`.
- The previous container's last log lines show a JVM full GC or a slow Flyway migration,
  not an application error.

## Why it happens

The kubelet kills a container after `failureThreshold` consecutive failed liveness checks.
The old spec used `timeoutSeconds: 1`, `periodSeconds: 5` and `failureThreshold: 3`, so a
1.8 s GC pause during warm-up, three times within 15 seconds, was enough to restart a
perfectly healthy pod. Each restart means another cold start, and the loop feeds itself
until the pod lands in `CrashLoopBackOff`.

## Diagnose

    kubectl get events -n payments --field-selector reason=Unhealthy --sort-by=.lastTimestamp
    kubectl describe pod <pod> -n payments | sed -n '/Liveness/,/Events/p'
    kubectl logs <pod> -n payments --previous --tail=50

Exit code 137 in `Last State: Terminated` means the container got SIGKILL, from the
kubelet or from the OOM killer: check for `Reason: OOMKilled` before blaming the probe.

## Fix

1. Add a `startupProbe` so slow boots are not judged by the liveness probe:
   `failureThreshold: 30` with `periodSeconds: 10` gives the app up to 300 seconds to start.
2. Relax the liveness probe: `timeoutSeconds: 3`, `periodSeconds: 10`, `failureThreshold: 3`.
3. Keep dependency checks (database, Kafka) in the readiness probe on `/ready`. The
   liveness endpoint `/healthz` must only answer "is this process wedged?"; if it checks
   the database, a database blip restarts every pod at once.

```yaml
startupProbe:
  httpGet: {path: /healthz, port: 8080}
  failureThreshold: 30
  periodSeconds: 10
livenessProbe:
  httpGet: {path: /healthz, port: 8080}
  timeoutSeconds: 3
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /ready, port: 8080}
  periodSeconds: 5
```

Roll out with `kubectl rollout restart deploy/payments-api -n payments` and follow it with
`kubectl rollout status`. Do not raise the liveness `failureThreshold` above 5: a truly hung
pod would then keep its place in the Service for minutes.
"""

MD_DOCS["pg_vacuum_tuning.md"] = """\
# PostgreSQL autovacuum tuning for large, hot tables

Applies to the `orders` cluster (PostgreSQL 15, 64 GB RAM, NVMe). Written after p95 query
latency on `orders` doubled over six weeks while the table grew from 61 GB to 140 GB on
disk with an almost flat row count.

## What went wrong

Every UPDATE and DELETE leaves a dead row version behind. Autovacuum only starts on a table
when

    dead tuples > autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor * reltuples

With the defaults (threshold 50, scale factor 0.2) our 180-million-row table waited for
36 million dead tuples before anything was cleaned, and the worker was then throttled by
`autovacuum_vacuum_cost_limit = 200`, so it never caught up.

## Settings we changed

Per table, so that small tables keep the defaults:

```sql
ALTER TABLE orders SET (
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_vacuum_threshold = 10000,
  autovacuum_analyze_scale_factor = 0.005
);
```

Cluster-wide, in `postgresql.conf`:

| key                           | old   | new  |
|-------------------------------|-------|------|
| autovacuum_max_workers        | 3     | 6    |
| autovacuum_naptime            | 1min  | 15s  |
| autovacuum_vacuum_cost_limit  | 200   | 2000 |
| maintenance_work_mem          | 64MB  | 1GB  |

`autovacuum_max_workers` needs a restart; the others only need `SELECT pg_reload_conf();`.

## Monitoring

```sql
SELECT relname, n_live_tup, n_dead_tup, last_autovacuum
FROM pg_stat_user_tables ORDER BY n_dead_tup DESC LIMIT 10;
```

Alert when `n_dead_tup / n_live_tup` stays above 10 % for an hour. Also watch the
transaction-ID age with `SELECT datname, age(datfrozenxid) FROM pg_database;`:
anti-wraparound vacuums are forced at `autovacuum_freeze_max_age` (200 million) and we
page at 1.2 billion.

## Things not to do

- `VACUUM FULL orders` rewrites the table under an ACCESS EXCLUSIVE lock: every read and
  write blocks for the whole run. To give space back to the OS online, use
  `pg_repack -t orders` instead.
- Do not switch autovacuum off on a table "temporarily"; that is how every wraparound
  emergency we have had started.
"""

MD_DOCS["oauth_device_flow.md"] = """\
# How `acmectl login` works: the OAuth 2.0 device flow

`acmectl` often runs where no browser exists: an SSH session, a CI runner, a kiosk. It
therefore signs in with the Device Authorization Grant (RFC 8628) instead of redirecting
to a local web server.

## The steps

1. The CLI POSTs `client_id=acmectl&scope=openid offline_access projects:read` to
   `https://id.acme.io/oauth/device/code`.
2. The server answers with a `device_code`, a short `user_code` such as `WDJB-MJHT`, a
   `verification_uri` (`https://id.acme.io/activate`), `expires_in: 900` and `interval: 5`.
3. The CLI prints the code and the URL and, when the terminal supports it, a QR code. The
   user opens the URL on a phone or laptop, signs in with SSO and MFA, and types the code.
4. Meanwhile the CLI polls `https://id.acme.io/oauth/token` every `interval` seconds with
   `grant_type=urn:ietf:params:oauth:grant-type:device_code` and the `device_code`.

## Poll responses

| error                   | meaning                   | what the CLI does                       |
|-------------------------|---------------------------|-----------------------------------------|
| `authorization_pending` | user has not finished     | keep polling                            |
| `slow_down`             | polling too fast          | add 5 seconds to the interval, for good |
| `access_denied`         | user clicked Deny         | stop, exit code 3                       |
| `expired_token`         | the 15 minutes are over   | stop, ask the user to log in again      |

On success the token endpoint returns an access token valid for 1 hour and a refresh
token that lives for 30 days of inactivity. Both go to the OS keychain (macOS Keychain,
Windows Credential Manager, libsecret on Linux), never into `~/.acmectl/config.toml`.

## Security notes

- The user code is short and typed by hand, so the activation page is rate-limited to 10
  attempts per minute per IP address.
- Phishing is the main risk: an attacker can start a flow and send someone the code. The
  activation page therefore shows the client name, the country of the requesting IP and
  the requested scopes before the user approves.
- On a desktop, `acmectl login --no-device` uses the normal authorization-code flow with
  PKCE instead.
"""

MD_DOCS["git_branching_guide.md"] = """\
# Git branching and release guide

We use trunk-based development: `main` is always releasable, and every change reaches it
through a short-lived branch and a pull request.

## Branches

- Name branches `<type>/<ticket>-<slug>`, for example `feat/PAY-412-refund-webhook` or
  `fix/OPS-88-null-currency`. Allowed types: feat, fix, chore, docs, perf.
- A branch lives at most 3 working days. If a feature takes longer, merge it in slices
  behind a feature flag.
- Keep your branch current by rebasing, not merging: `git fetch origin && git rebase origin/main`.
- After a rebase push with `git push --force-with-lease`, never a plain `--force`, and only
  to your own branch.

## Pull requests

- `main` is protected: 2 approvals, green CI and linear history are required; direct
  pushes are rejected.
- PRs are squash-merged. The squash commit message follows Conventional Commits
  (`feat(payments): add refund webhook`); the release notes are generated from it.
- Keep PRs under about 400 changed lines; reviewers may ask you to split bigger ones.

## Releases

- The release bot cuts `release/YYYY.MM` (e.g. `release/2024.06`) from `main` every second
  Tuesday at 10:00 CET.
- Only fixes enter a release branch. Land the fix on `main` first, then bring it over with
  `git cherry-pick -x <sha>` so the original commit is recorded in the message.
- Releases are tagged `vYYYY.MM.PATCH`, e.g. `v2024.06.2`, and signed with `git tag -s`.

## Hotfixes

For a production incident, branch `hotfix/<ticket>` from the current release tag, get one
approval from the on-call lead, tag a new patch version, and cherry-pick the fix back to
`main` within 24 hours.

## Useful commands

    git log --oneline --graph origin/main..HEAD    # what your branch adds
    git rebase -i --autosquash origin/main         # fold fixup! commits
    git branch --merged origin/main | grep -v main | xargs git branch -d
"""

TXT_DOCS["redis_eviction_notes.txt"] = """\
REDIS SESSION CACHE - EVICTION NOTES
cluster: cache-sessions-prod (Redis 7.2, 3 primaries + 3 replicas, r6g.xlarge)
updated: 2024-04-18, owner: platform-data

What happened
-------------
On 2024-04-11 at 20:05 UTC logins started failing with
"OOM command not allowed when used memory > 'maxmemory'".
The cache was configured with maxmemory-policy noeviction, a leftover from the
time the same instance also held job queues. With noeviction Redis refuses every
write once used_memory reaches maxmemory, so new sessions could not be stored.
Reads kept working, which is why the health check stayed green.

Current configuration
---------------------
  maxmemory 12gb                  # node has 26 GB; leave room for fork
  maxmemory-policy allkeys-lru
  maxmemory-samples 10            # default 5; closer LRU approximation
  activedefrag yes
  lazyfree-lazy-eviction yes

Why allkeys-lru and not volatile-lru: the volatile-* policies only evict keys that
have a TTL. A few code paths wrote sessions without EXPIRE, so volatile-lru would
still have run out of candidates and fallen back to errors. We also tried
allkeys-lfu (lfu-decay-time 1) in staging; the hit rate was within 0.3% of LRU,
so we kept the simpler policy.

Headroom
--------
BGSAVE and a replica full sync fork the process. Under heavy writes copy-on-write
can need up to the size of the dataset again, so keep maxmemory at or below about
50% of RAM on nodes with persistence and about 75% on cache-only nodes.

Checking
--------
  redis-cli -h cache-sessions-prod INFO memory \\
      | grep -E 'used_memory_human|maxmemory_human|mem_fragmentation_ratio'
  redis-cli INFO stats | grep -E 'evicted_keys|keyspace_hits|keyspace_misses'
  redis-cli CONFIG SET maxmemory-policy allkeys-lru   # live change, then CONFIG REWRITE

Alerts: evicted_keys rate above 500/s for 10 minutes (cache too small), and
mem_fragmentation_ratio above 1.5 for 30 minutes (defrag not keeping up).
"""

TXT_DOCS["backup_restore_policy.txt"] = """\
BACKUP AND RESTORE POLICY   (IT-POL-007, version 3.2, effective 2024-01-15)

1. Scope
   All production databases, file shares and configuration repositories.
   Laptops are covered by the separate endpoint policy IT-POL-011.

2. Objectives
   Tier 1 (customer-facing databases): RPO 15 minutes, RTO 4 hours.
   Tier 2 (internal applications, file shares): RPO 24 hours, RTO 2 business days.
   Tier 3 (development and test): best effort, no guarantee.

3. Schedule
   - Tier 1: continuous WAL / binlog archiving plus a full backup every night at 01:30 UTC.
   - Tier 2: nightly incremental at 02:30 UTC, full backup every Sunday.
   - Backups are taken with restic into s3://acme-backups-eu-west-1 and encrypted on the
     client (AES-256); the repository password is kept in Vault at secret/backup/restic.

4. Retention
   Daily snapshots 35 days, weekly 12 weeks, monthly 13 months, yearly 7 years
   (finance data only). Applied with:
     restic forget --keep-daily 35 --keep-weekly 12 --keep-monthly 13 --prune
   The bucket has S3 Object Lock in compliance mode with a 35-day default retention,
   so nobody, administrators included, can delete or overwrite recent backups.

5. The 3-2-1 rule
   Three copies, on two kinds of storage, one of them off-site: production, the backup
   appliance in the data centre, and the S3 bucket in another region.

6. Verification
   - Weekly: restic check --read-data-subset=5%
   - Quarterly: a full restore drill of one Tier 1 database into the isolated
     restore-lab account, timed against the RTO; results go to the drill log.
   - A backup job that fails twice in a row pages the on-call engineer.

7. Restoring
     restic snapshots --tag pg-orders
     restic restore latest --tag pg-orders --target /restore
   Restores into production need approval from the service owner and a change ticket,
   except during a declared SEV-1 incident.
"""

PDF_DOCS: dict[str, tuple[str, list[list[Block]]]] = {}

PDF_DOCS["tls_certificate_rotation.pdf"] = (
    "TLS certificate rotation procedure",
    [
        [
            ("h1", "TLS certificate rotation procedure"),
            (
                "meta",
                "Public endpoints api.acme.io, app.acme.io and *.cdn.acme.io. "
                "Owner: security-engineering. Document SEC-PROC-014, revision 6.",
            ),
            ("h2", "When to rotate"),
            (
                "p",
                "Public certificates are one-year OV certificates from Sectigo; service-mesh "
                "certificates come from the internal CA through cert-manager and last 90 days. "
                "Rotate a public certificate 30 days before it expires. The blackbox exporter "
                "alert `probe_ssl_earliest_cert_expiry - time() < 14 * 86400` fires when fewer "
                "than 14 days are left, which means this procedure was missed.",
            ),
            ("h2", "Procedure"),
            (
                "numbered",
                [
                    "On the bastion, generate a new key and CSR; never reuse the old key: "
                    "`openssl req -new -newkey rsa:3072 -nodes -keyout api.acme.io.key "
                    '-out api.acme.io.csr -subj "/CN=api.acme.io"`',
                    "Submit the CSR in the Sectigo portal and complete DNS validation with the "
                    "CNAME "
                    "record it shows, created in Route 53.",
                    "Build the chain, leaf first and intermediate second: "
                    "`cat api.acme.io.crt SectigoRSAOVCA.crt > fullchain.pem`",
                    "Check that key and certificate belong together: the outputs of "
                    "`openssl x509 -noout -modulus -in fullchain.pem | sha256sum` and "
                    "`openssl rsa -noout -modulus -in api.acme.io.key | sha256sum` must match.",
                    "Load balancers: `aws acm import-certificate --certificate "
                    "fileb://api.acme.io.crt "
                    "--private-key fileb://api.acme.io.key --certificate-chain fileb://chain.pem`, "
                    "then switch the HTTPS listener on port 443 to the new ARN.",
                    "nginx hosts: copy the files to /etc/nginx/tls/ and run "
                    "`nginx -t && systemctl reload nginx`. Reload, do not restart: a reload keeps "
                    "open connections.",
                    "Verify from outside the network: `openssl s_client -connect api.acme.io:443 "
                    "-servername api.acme.io </dev/null | openssl x509 -noout -dates -issuer`",
                ],
            ),
            ("h2", "Rollback and key handling"),
            (
                "bullets",
                [
                    "Keep the previous certificate and key for 7 days in Vault under "
                    "`secret/tls/api/previous`; rolling back is step 5 or 6 with the old files.",
                    "Private keys live only in Vault and on the hosts that serve them, mode 0600, "
                    "owned by root. Never send a key by chat or e-mail.",
                    "HSTS is set with `max-age=31536000`, so a broken certificate cannot be "
                    "bypassed "
                    "by users: test in staging first.",
                    "The mobile app (v3 and later) pins the public key of the intermediate CA. If "
                    "the CA or intermediate changes, tell the mobile team at least 2 weeks ahead.",
                ],
            ),
        ]
    ],
)

PDF_DOCS["api_rate_limits.pdf"] = (
    "Acme Public API v2 - rate limits reference",
    [
        [
            ("h1", "Acme Public API v2: rate limits"),
            (
                "meta",
                "Reference for integrators. Page 1: how limits work. Page 2: limits by "
                "plan and per endpoint. Page 3: handling rejected requests.",
            ),
            ("h2", "1. How limits work"),
            (
                "p",
                "Limits are enforced per API key and added up per organization, so creating "
                "more keys does not raise the total. Each key has a token bucket: the bucket "
                "refills continuously at the per-minute rate of the plan, and its size is the "
                "burst allowance. A request takes one token; when the bucket is empty the "
                "request is rejected with HTTP 429 and nothing is executed.",
            ),
            ("p", "Every response, successful or not, carries three headers:"),
            (
                "table",
                [
                    ["header", "meaning"],
                    ["`X-RateLimit-Limit`", "requests per minute allowed for this key's plan"],
                    ["`X-RateLimit-Remaining`", "tokens left in the bucket right now"],
                    [
                        "`X-RateLimit-Reset`",
                        "Unix time (seconds) at which the bucket is full again",
                    ],
                ],
                [5.5, 10.5],
            ),
            (
                "p",
                "Sandbox keys (prefix `sk_test_`) always get the Free limits, whatever the "
                "organization's plan. Webhook deliveries from us to you do not count against "
                "your limits. Limits are evaluated in the region that serves the request; "
                "the EU and US regions keep separate buckets.",
            ),
            (
                "p",
                "Batch endpoints count each call as one request regardless of the number of "
                "items, up to 100 items per call, so batching is the cheapest way to stay "
                "under the limit.",
            ),
        ],
        [
            ("h2", "2. Limits by plan"),
            (
                "table",
                [
                    ["plan", "requests / minute", "burst", "concurrent requests", "daily cap"],
                    ["Free", "60", "10", "5", "10,000"],
                    ["Starter", "600", "100", "10", "500,000"],
                    ["Business", "3,000", "500", "25", "none"],
                    ["Enterprise", "custom, from 10,000", "custom", "100", "none"],
                ],
                [2.6, 3.6, 2.0, 3.6, 2.6],
            ),
            (
                "p",
                "The daily cap resets at 00:00 UTC. Plan changes take effect within 60 "
                "seconds of the upgrade.",
            ),
            ("h2", "Endpoint-specific limits"),
            (
                "p",
                "Some expensive endpoints have their own, lower limits. They apply in "
                "addition to the plan limits above.",
            ),
            (
                "table",
                [
                    ["endpoint", "limit", "scope"],
                    ["`POST /v2/exports`", "5 per hour", "organization"],
                    [
                        "`GET /v2/search`",
                        "30 per minute on Free, 300 per minute on paid plans",
                        "key",
                    ],
                    ["`POST /v2/webhooks/test`", "10 per minute", "key"],
                    ["`POST /v2/auth/token`", "20 per minute", "client IP address"],
                    ["`POST /v2/files` (upload)", "1 GB per hour in total", "organization"],
                ],
                [5.0, 7.0, 3.5],
            ),
        ],
        [
            ("h2", "3. Handling 429 responses"),
            (
                "p",
                "A request rejected by the bucket returns status 429 with a `Retry-After` "
                "header in seconds and this body:",
            ),
            ("code", '{"error": "rate_limited", "retry_after": 12, "limit_scope": "key"}'),
            (
                "p",
                "When the concurrent-request limit is exceeded the body says "
                '`"error": "concurrency_limited"` and there is no `Retry-After` header: '
                "retry as soon as one of your in-flight requests has finished.",
            ),
            (
                "p",
                "Recommended client behaviour: honour `Retry-After` when it is present; "
                "otherwise use exponential backoff with full jitter, base 0.5 seconds, capped "
                "at 32 seconds, and give up after 6 retries. Never retry non-idempotent POST "
                "requests without an `Idempotency-Key` header.",
            ),
            (
                "code",
                "def backoff(attempt: int) -> float:\n"
                "    return random.uniform(0, min(32.0, 0.5 * 2 ** attempt))",
            ),
            (
                "p",
                "Clients that keep sending requests after a 429 for more than 10 minutes are "
                "blocked for 1 hour with error `abusive_client`.",
            ),
            ("h2", "Asking for higher limits"),
            (
                "p",
                "Send your organization ID, the endpoints involved and your expected peak "
                "rate to api-support@acme.io. Requests are answered within 2 business days; "
                "Enterprise customers can also ask their account manager.",
            ),
        ],
    ],
)

PDF_DOCS["python_packaging_guide.pdf"] = (
    "Packaging internal Python libraries",
    [
        [
            ("h1", "Packaging internal Python libraries"),
            (
                "meta",
                "Developer-experience team guideline DX-12. Applies to every library that "
                "other teams install; applications follow the pinning rules at the end.",
            ),
            ("h2", "Layout and metadata"),
            (
                "bullets",
                [
                    "Use the src layout (`src/acme_billing/`) with `tests/` next to `src/`, so "
                    "tests "
                    "run against the installed package and not the working tree.",
                    "All metadata goes into `pyproject.toml`; no `setup.py`, no `setup.cfg`. The "
                    "build "
                    "backend is hatchling and the minimum interpreter is `requires-python = "
                    '">=3.10"`.',
                    "The version comes from git tags through hatch-vcs: tag `v1.4.0` builds "
                    "version "
                    "1.4.0. Never hard-code a version string.",
                    "Command-line tools are entry points, e.g. `[project.scripts]` "
                    '`billing-cli = "acme_billing.cli:main"`.',
                ],
            ),
            (
                "code",
                "[build-system]\n"
                'requires = ["hatchling>=1.21", "hatch-vcs>=0.4"]\n'
                'build-backend = "hatchling.build"\n\n'
                "[project]\n"
                'name = "acme-billing"\n'
                'dynamic = ["version"]\n'
                'requires-python = ">=3.10"\n'
                'dependencies = ["requests>=2.31,<3", "pydantic>=2.5,<3"]\n\n'
                "[tool.hatch.version]\n"
                'source = "vcs"',
            ),
            ("h2", "Build and publish"),
            (
                "p",
                "Build both artifacts with `python -m build` (an sdist and a wheel in `dist/`) "
                "and validate them with `twine check dist/*`. Only CI publishes: pushing a tag "
                "runs `twine upload --repository acme-internal dist/*` against our devpi index at "
                "https://pypi.internal.acme.io. Packages with C extensions build manylinux2014 "
                "x86_64 and aarch64 wheels and macOS arm64 wheels with cibuildwheel.",
            ),
            ("h2", "Dependencies"),
            (
                "p",
                "Libraries declare ranges (`requests>=2.31,<3`) so that they can be combined. "
                "Applications pin everything: write direct dependencies to `requirements.in`, "
                "run `pip-compile --generate-hashes requirements.in`, commit the resulting "
                "`requirements.txt` and install with `pip install --require-hashes -r "
                "requirements.txt`.",
            ),
            ("h2", "Installing"),
            (
                "p",
                "Consumers install with `pip install --index-url "
                "https://pypi.internal.acme.io/simple acme-billing==1.4.*`. Do not use "
                "`--extra-index-url`: pip would also look on the public PyPI, and a public "
                "package with the same name and a higher version would win (dependency "
                'confusion). For local development use `pip install -e ".[dev]"`.',
            ),
        ]
    ],
)

# Near neighbours: same technologies as other documents, different problems. They keep the
# set honest: a query about PostgreSQL, Kubernetes probes or HTTP 429 has to find the right
# one of two or three plausible files, not the only file that mentions the product.

MD_DOCS["nginx_gateway_rate_limiting.md"] = """\
# Request limiting on the internal API gateway (nginx)

The internal gateway `gw-int` (nginx 1.24) shields back-office services from runaway
scripts and retry storms. It is separate from the limits of the public API, which the API
platform enforces itself per key and plan.

## Configuration

```nginx
limit_req_zone  $binary_remote_addr   zone=per_ip:20m      rate=20r/s;
limit_req_zone  $http_x_service_name  zone=per_service:10m rate=200r/s;
limit_conn_zone $binary_remote_addr   zone=conn_ip:10m;
limit_req_status 429;

location /reports/ {
    limit_req  zone=per_ip burst=40 nodelay;
    limit_conn conn_ip 10;
    proxy_pass http://reports_backend;
}
```

- `rate=20r/s` is enforced in 50 ms slots, not per second: two requests 10 ms apart
  already exceed it. `burst=40` lets a client queue 40 extra requests, and `nodelay`
  serves the queued ones at once instead of spacing them out.
- A 20 MB zone holds about 320,000 client addresses (64 bytes of state per address).
  When a zone is full nginx evicts the oldest entries; if that fails, it rejects.
- nginx answers 503 by default when a limit is hit. `limit_req_status 429` makes it send
  429 Too Many Requests instead. nginx does not add `Retry-After` by itself; the shared
  `error_page 429` location adds `Retry-After: 1`.

## Trying a change safely

Turn on `limit_req_dry_run on;` first. nginx then only logs what it would have rejected
(`limiting requests, dry run, excess: 12.400 by zone "per_ip"`) in
`/var/log/nginx/error.log`. After a day without surprises switch dry run off and apply with
`nginx -t && systemctl reload nginx`.

## Exemptions

Health checks from the load balancers (10.0.5.0/24) and the monitoring network bypass the
limits: a `geo` block maps those addresses to an empty key, and requests with an empty key
are not counted.

## Ownership

#team-edge owns this configuration in the `edge-config` repository; every change needs one
approval from that team and goes out with the Thursday edge deploy.
"""

TXT_DOCS["pg_replication_lag.txt"] = """\
RUNBOOK: POSTGRESQL REPLICA LAG  (orders cluster)
alert:  PgReplicaLagHigh - replay lag above 30 s for 5 min on db-orders-2 or db-orders-3
owner:  dba-team            last drill: 2024-02-27

1. How big is the lag, and where does it come from?
   On the primary:
     SELECT client_addr, state, sent_lsn, replay_lsn, write_lag, flush_lag, replay_lag
       FROM pg_stat_replication;
   On the replica:
     SELECT now() - pg_last_xact_replay_timestamp() AS replay_delay;
   If write_lag and flush_lag are large, the network or the replica's disk is slow.
   If they are small but replay_lag keeps growing, replay is blocked on the replica.

2. Replay blocked by long queries (the usual cause)
   Reporting queries on a replica conflict with cleanup records coming from the primary.
   With max_standby_streaming_delay = 30s replay waits up to 30 seconds and then cancels
   the query ("canceling statement due to conflict with recovery").
   db-orders-3 serves reporting and runs with hot_standby_feedback = on: no more
   cancellations, but the primary keeps dead rows longer, which shows up as bloat there.
   To end queries older than 15 minutes on the replica:
     SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE state = 'active' AND now() - query_start > interval '15 minutes';

3. WAL piling up on the primary
   A replication slot keeps WAL until its replica has received it, so a replica that is
   down for hours can fill pg_wal on the primary. Check with:
     SELECT slot_name, active,
            pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn))
       FROM pg_replication_slots;
   max_slot_wal_keep_size = 200GB caps this. Past that the slot is invalidated and the
   replica has to be seeded again:
     pg_basebackup -h db-orders-1 -D /var/lib/postgresql/15/main -X stream -R -S replica_3

4. Failover
   Patroni promotes a replica when the primary has been unreachable for 30 s
   (ttl: 30, loop_wait: 10). Planned switchover:
     patronictl -c /etc/patroni.yml switchover --candidate db-orders-2
   Never promote by hand with pg_ctl promote while Patroni is running.
"""

PDF_DOCS["k8s_hpa_autoscaling.pdf"] = (
    "Autoscaling payments-api",
    [
        [
            ("h1", "Autoscaling payments-api with the HorizontalPodAutoscaler"),
            (
                "meta",
                "Namespace payments. Owner: platform-sre. Applies to clusters prod-eu-1 and "
                "prod-us-1 (Kubernetes 1.29, metrics-server and prometheus-adapter installed).",
            ),
            ("h2", "What scales and on what"),
            (
                "p",
                "payments-api runs between 4 and 40 replicas. The HPA (`autoscaling/v2`) looks at "
                "two metrics and follows whichever asks for more pods: average CPU utilisation, "
                "target 65 % of the CPU request, and the per-pod custom metric "
                "`http_requests_per_second`, target 120, served by prometheus-adapter.",
            ),
            (
                "p",
                "Utilisation is measured against `resources.requests.cpu` (500m per pod). A pod "
                "without a CPU request makes the HPA report `<unknown>` and stop scaling.",
            ),
            (
                "code",
                "spec:\n"
                "  minReplicas: 4\n"
                "  maxReplicas: 40\n"
                "  behavior:\n"
                "    scaleUp:\n"
                "      stabilizationWindowSeconds: 0\n"
                "      policies:\n"
                "      - {type: Percent, value: 100, periodSeconds: 60}\n"
                "      - {type: Pods, value: 8, periodSeconds: 60}\n"
                "    scaleDown:\n"
                "      stabilizationWindowSeconds: 300\n"
                "      policies:\n"
                "      - {type: Percent, value: 10, periodSeconds: 60}",
            ),
            (
                "p",
                "Scale-up reacts at once and may double the replica count (or add 8 pods, "
                "whichever is more) each minute. Scale-down waits for 5 minutes of lower load and "
                "then removes at most 10 % of the pods per minute, so a short dip does not cause a "
                "cold-start wave when traffic returns.",
            ),
            ("h2", "Interplay with readiness and nodes"),
            (
                "bullets",
                [
                    "New pods take about 90 seconds before their readiness probe passes; until "
                    "then "
                    "they get no traffic, and the HPA ignores their CPU for the first 30 seconds.",
                    "When the new pods do not fit, the cluster autoscaler adds nodes from the "
                    "`general-m6i` group; that takes 2 to 4 minutes, so keep minReplicas high "
                    "enough "
                    "for the morning ramp.",
                    "The PodDisruptionBudget keeps `minAvailable: 75%` during node drains.",
                ],
            ),
            ("h2", "Watching it"),
            (
                "p",
                "`kubectl get hpa payments-api -n payments -w` shows current and desired "
                "replicas; `kubectl describe hpa payments-api -n payments` lists the last scaling "
                "events and why a scale was refused (for example `ScalingLimited: TooManyReplicas` "
                "at 40).",
            ),
        ]
    ],
)

SCAN_DOCS: dict[str, tuple[str, list[list[Block]]]] = {}

SCAN_DOCS["dns_outage_postmortem.pdf"] = (
    "INC-2291 postmortem",
    [
        [
            ("h1", "Postmortem INC-2291: internal DNS resolution failures"),
            (
                "meta",
                "Date: 14 March 2024   Severity: SEV-1   Duration: 47 minutes "
                "(09:12 - 09:59 UTC)   Author: N. Okafor   Status: final",
            ),
            ("h2", "Summary"),
            (
                "p",
                "For 47 minutes the internal resolvers (two Unbound hosts, dns-a and dns-b) "
                "answered about 38 % of queries with SERVFAIL. Services that look up names "
                "on every request, above all checkout, inventory and the auth gateway, "
                "returned errors: 12 % of checkout attempts failed and about 4,100 orders "
                "were delayed.",
            ),
            ("h2", "Root cause"),
            (
                "p",
                "A change to the zone svc.acme.internal lowered the TTL of every record from "
                "300 seconds to 5 seconds, to make a planned migration faster. Client caches "
                "expired almost at once, the load on the resolvers rose from about 9,000 to "
                "61,000 queries per second, and the per-thread request list of Unbound "
                "(num-queries-per-thread: 1024) filled up. Queries beyond that were dropped, "
                "and clients saw SERVFAIL or timeouts.",
            ),
            ("h2", "Why we did not catch it"),
            (
                "bullets",
                [
                    "The change was reviewed as a config-only edit; nobody estimated the extra "
                    "query load.",
                    "The resolver dashboards had no alert on the SERVFAIL ratio, only on host CPU.",
                    "Staging has 40 times less traffic, so the same change looked harmless there.",
                ],
            ),
        ],
        [
            ("h2", "Timeline (UTC)"),
            (
                "rows",
                [
                    ("09:12", "Zone change with TTL 5 s deployed by the migration pipeline."),
                    ("09:19", "First alerts: checkout 5xx rate above 2 %."),
                    ("09:26", "On-call sees SERVFAIL in the auth gateway logs; DNS suspected."),
                    ("09:31", "SEV-1 declared, incident commander J. Brandt."),
                    ("09:44", "TTL rolled back to 300 s; resolver caches begin to refill."),
                    ("09:59", "SERVFAIL ratio below 0.1 %; incident mitigated."),
                ],
                140,
            ),
            ("h2", "What went well"),
            (
                "p",
                "The rollback was a one-line revert and the pipeline applied it in under two "
                "minutes. Customer support had a status page entry up by 09:35.",
            ),
            ("h2", "Action items"),
            (
                "rows",
                [
                    (
                        "AI-1",
                        "Alert when the SERVFAIL ratio exceeds 1 % for 3 minutes. "
                        "Owner: SRE, ticket DNS-311.",
                    ),
                    (
                        "AI-2",
                        "Raise num-queries-per-thread to 4096 and add a third resolver, dns-c. "
                        "Owner: NetOps, ticket DNS-312.",
                    ),
                    (
                        "AI-3",
                        "Zone TTL changes below 60 s need a load estimate and approval. "
                        "Owner: Platform, ticket DNS-315.",
                    ),
                    (
                        "AI-4",
                        "Enable local DNS caching (systemd-resolved) in all base images. "
                        "Owner: Platform, ticket DNS-318.",
                    ),
                ],
                110,
            ),
        ],
    ],
)

SCAN_DOCS["gpu_driver_install.pdf"] = (
    "GPU node driver install note",
    [
        [
            ("h1", "Install note: NVIDIA driver on Ubuntu 22.04 GPU nodes"),
            (
                "meta",
                "Hardware: 4 x NVIDIA L40S per node (gpu-node-01 to gpu-node-12). "
                "Target: driver 550.54.15 (R550 branch), CUDA 12.4. Maintainer: HPC team.",
            ),
            ("h2", "1. Disable nouveau"),
            (
                "p",
                "Create /etc/modprobe.d/blacklist-nouveau.conf with these two lines, then run "
                "sudo update-initramfs -u and reboot:",
            ),
            ("code", "blacklist nouveau\noptions nouveau modeset=0"),
            ("h2", "2. Install the driver"),
            (
                "code",
                "sudo apt install linux-headers-$(uname -r) \\\n    nvidia-driver-550-server\n"
                "sudo apt-mark hold nvidia-driver-550-server",
            ),
            (
                "p",
                "The package builds the kernel module with DKMS, so kernel updates rebuild it. "
                "The hold stops unattended upgrades from moving the driver version.",
            ),
            ("h2", "3. Secure Boot"),
            (
                "p",
                "The DKMS module must be signed. The installer asks for a one-time password; on "
                "the next boot choose Enroll MOK in the blue MOK manager and type it. If this is "
                "skipped, nvidia-smi says it couldn't communicate with the NVIDIA driver.",
            ),
            ("h2", "4. Verify and tune"),
            (
                "p",
                "nvidia-smi must list 4 GPUs with Driver Version: 550.54.15 and CUDA Version: "
                "12.4. Enable persistence mode with sudo nvidia-smi -pm 1 so the GPUs stay "
                "initialised between jobs.",
            ),
            ("h2", "5. Containers"),
            (
                "code",
                "sudo nvidia-ctk runtime configure --runtime=docker\n"
                "sudo systemctl restart docker\n"
                "docker run --rm --gpus all \\\n"
                "    nvidia/cuda:12.4.1-base-ubuntu22.04 nvidia-smi",
            ),
            ("p", "Known issue: with the 6.5 HWE kernel the 535 driver fails to build; use 550."),
        ]
    ],
)


# --------------------------------------------------------------------------------------
# pictures
# --------------------------------------------------------------------------------------

DISK_LINES = [
    "ci@build-agent-07:~$ df -h /",
    "Filesystem      Size  Used Avail Use% Mounted on",
    "/dev/nvme0n1p2  468G  468G     0 100% /",
    "ci@build-agent-07:~$ sudo du -sh /var/lib/docker/* | sort -h | tail -4",
    "1.2G    /var/lib/docker/volumes",
    "3.8G    /var/lib/docker/image",
    "39G     /var/lib/docker/buildkit",
    "412G    /var/lib/docker/overlay2",
    "ci@build-agent-07:~$ docker system df",
    "TYPE            TOTAL   ACTIVE   SIZE      RECLAIMABLE",
    "Images          214     6        97.3GB    91.8GB (94%)",
    "Containers      9       2        1.1GB     1.0GB (90%)",
    "Local Volumes   17      3        1.2GB     0.9GB (75%)",
    "Build Cache     2841    0        318.4GB   318.4GB",
    "ci@build-agent-07:~$ docker builder prune --filter until=72h -f",
    "Total reclaimed space: 318.4GB",
    "ci@build-agent-07:~$ sudo journalctl --vacuum-size=2G",
    "Vacuuming done, freed 5.6G of archived journals from /var/log/journal",
    "ci@build-agent-07:~$ df -h /",
    "Filesystem      Size  Used Avail Use% Mounted on",
    "/dev/nvme0n1p2  468G  144G  324G  31% /",
    "ci@build-agent-07:~$ # TODO weekly cron: docker builder prune --filter until=72h",
]

SSHD_LINES = [
    "admin@bastion-01:~$ sudo sshd -T | grep -E 'root|passw|tries|alive|groups|x11'",
    "permitrootlogin no",
    "passwordauthentication no",
    "maxauthtries 3",
    "clientaliveinterval 300",
    "clientalivecountmax 2",
    "x11forwarding no",
    "allowgroups ssh-users bastion-admins",
    "admin@bastion-01:~$ sudo sshd -t && sudo systemctl reload ssh",
    "admin@bastion-01:~$ sudo fail2ban-client status sshd",
    "Status for the jail: sshd",
    "|- Filter",
    "|  |- Currently failed: 4",
    "|  |- Total failed:     1873",
    "|  `- File list:        /var/log/auth.log",
    "`- Actions",
    "   |- Currently banned: 23",
    "   |- Total banned:     311",
    "   `- Banned IP list:   45.148.10.23 103.77.4.19 ...",
    "admin@bastion-01:~$ grep -c 'Accepted publickey' /var/log/auth.log",
    "142",
]

VPN_LINES = [
    "08:41:02 [corp-eu] Starting WireGuard/0.5.3 (Windows 10.0.22631)",
    "08:41:02 [corp-eu] Interface up, address 10.99.4.23/32",
    "08:41:03 [corp-eu] Sending handshake initiation to peer 1",
    "         (vpn-eu.acme.io:51820)",
    "08:41:08 [corp-eu] Handshake for peer 1 did not complete",
    "         after 5 seconds, retrying (try 2)",
    "08:41:13 [corp-eu] Handshake for peer 1 did not complete",
    "         after 5 seconds, retrying (try 3)",
]

SMTP_FIELDS = [
    ("SMTP server", "smtp-relay.acme.io"),
    ("Port", "587"),
    ("Encryption", "STARTTLS (required)"),
    ("Authentication", "LOGIN"),
    ("Username", "notify-bot@acme.io"),
    ("Password", "\u2022" * 12),
    ("From address", "Acme Alerts <alerts@acme.io>"),
    ("Reply-To", "noreply@acme.io"),
    ("Connection timeout", "30 seconds"),
    ("Send rate limit", "120 messages per minute"),
    ("Retries on failure", "3 (backoff 60 s)"),
]

CSV_HEADER = ["Row", "Column", "Code", "Problem"]
CSV_ROWS = [
    ["14", "email", "E102", 'invalid e-mail address: "anna.k@@mail"'],
    ["27", "country", "E210", 'unknown ISO 3166 code "UK" (use GB)'],
    ["31", "created_at", "E305", "date is not ISO 8601 (31/02/2024)"],
    ["58", "phone", "E118", "longer than 20 characters"],
    ["77", "customer_id", "E401", "duplicate key C-100482"],
    ["102", "vat_number", "E220", "checksum failed for DE811907980X"],
    ["140", "(row)", "E001", "wrong column count: expected 12, got 11"],
]


def make_disk_terminal() -> Image.Image:
    return render_terminal(DISK_LINES, DARK, "ci@build-agent-07: ~ (ssh)")


def make_sshd_terminal() -> Image.Image:
    return render_terminal(SSHD_LINES, SOLARIZED_LIGHT, "admin@bastion-01 - Terminal", size=27)


def make_smtp_dialog(
    theme: Theme = LIGHT,
    fields: Sequence[tuple[str, str]] = SMTP_FIELDS,
    full: bool = True,
    width: int = 1000,
) -> Image.Image:
    f = Form(width, theme, "Notification Service - Settings")
    f.heading("Outgoing Mail (SMTP)")
    if full:
        f.tabs(["General", "SMTP", "Templates", "Delivery log"], active=1)
    for label, value in fields:
        f.field(label, value)
    if full:
        f.space(6)
        f.checkbox(True, "Verify the server certificate")
        f.checkbox(False, "Allow fallback to unencrypted port 25")
        f.space(6)
        f.paragraph(
            "Port 465 uses implicit TLS; port 587 upgrades the connection with "
            "STARTTLS. The relay only accepts mail from the 10.10.0.0/16 network "
            "and from authenticated users. Messages above the rate limit are "
            "queued, not dropped.",
            size=21,
        )
        f.buttons(["Send test e-mail", "Cancel", "Save"], primary=2)
    return f.render()


def make_alert_rule() -> Image.Image:
    f = Form(1180, LIGHT, "Grafana - Alerting")
    f.heading("Alerting \u203a Edit rule")
    f.field("Rule name", "CheckoutLatencyP99High", label_w=280)
    f.field("Folder", "payments / checkout", label_w=280)
    f.paragraph("Query (PromQL, data source: prometheus-prod)", muted=False)
    f.code_box(
        [
            "histogram_quantile(0.99,",
            "  sum by (le) (rate(http_request_duration_seconds_bucket",
            '    {service="checkout"}[5m])))',
        ]
    )
    f.field("Condition", "IS ABOVE 0.75", label_w=280)
    f.field("Evaluate every", "1m", label_w=280)
    f.field("Pending period", "10m", label_w=280)
    f.field("Labels", "severity=page   team=payments", label_w=280)
    f.field("Contact point", "PagerDuty - Checkout Primary", label_w=280)
    f.field("Also notify", "Slack #oncall-checkout", label_w=280)
    f.field("No data / Error", "Alerting / Alerting", label_w=280)
    f.field("Summary", "p99 checkout latency above 750 ms for 10 minutes", label_w=280)
    f.field("Runbook URL", "https://runbooks.acme.io/checkout/latency", label_w=280)
    f.buttons(["Delete", "Save rule and exit"], primary=1)
    return f.render()


def make_vpn_window(theme: Theme = DARK, size: int = 22, width: int = 960) -> Image.Image:
    f = Form(width, theme, "WireGuard - corp-eu", size=size)
    f.heading("Tunnel corp-eu: Activating")
    f.field("Public key", "kT3u...Yv4= (rotated 2024-05-01)", label_w=220)
    f.field("Endpoint", "vpn-eu.acme.io:51820 (UDP)", label_w=220)
    f.field("Latest handshake", "(none)", label_w=220)
    f.field("Transfer", "0 B received, 1.78 KiB sent", label_w=220)
    f.paragraph("Log", muted=False)
    f.code_box(VPN_LINES, size=size - 1)
    f.paragraph(
        "No handshake usually means outgoing UDP 51820 is blocked (hotel or guest "
        "Wi-Fi) or your key is out of date. Keys were rotated on 2024-05-01: "
        "re-import corp-eu.conf from the IT portal. Still stuck? Ask in "
        "#it-helpdesk or call ext. 4410.",
        boxed=True,
    )
    f.buttons(["Deactivate"], primary=0)
    return f.render()


def make_csv_table() -> Image.Image:
    return render_table(
        "Import customers_2024-05.csv",
        "7 rows rejected, 1,493 rows imported",
        CSV_HEADER,
        CSV_ROWS,
        [90, 190, 110, 600],
        "Accepted files: UTF-8, comma-delimited, header row required, at most 50 MB or "
        "200,000 rows. Fix the listed rows and upload only those rows again; imported "
        "rows are not duplicated.",
    )


def make_whiteboard() -> Image.Image:
    """A photo of an office-network sketch on a whiteboard."""
    w, h = 1500, 1050
    rng = np.random.default_rng(11)
    board = Image.new("RGB", (w, h), (238, 240, 236))
    d = ImageDraw.Draw(board)
    blue, black, red, green = (28, 52, 150), (30, 30, 34), (185, 32, 30), (25, 110, 60)
    fb = font(30, bold=True)
    fs = font(27)

    def box(x: int, y: int, lines: Sequence[str], col: Color, bw: int = 330) -> tuple[int, int]:
        hh = 26 + 40 * len(lines)
        d.rounded_rectangle([x, y, x + bw, y + hh], radius=14, outline=col, width=5)
        for i, ln in enumerate(lines):
            d.text((x + 18, y + 14 + 40 * i), ln, font=fb if i == 0 else fs, fill=col)
        return x + bw // 2, y + hh

    d.text((60, 40), "Office network - 3rd floor", font=font(40, bold=True), fill=black)
    d.text((60, 95), "(draft, M.R. 12/03)", font=fs, fill=black)
    isp = box(660, 150, ["ISP fiber 1 Gbps", "203.0.113.8/29"], black)
    fw = box(660, 300, ["FW pfSense", "10.0.0.1"], blue)
    core = box(660, 450, ["SW-CORE-01", "48 ports, trunk"], blue)
    d.line([isp[0], isp[1], fw[0], 300], fill=black, width=5)
    d.line([fw[0], fw[1], core[0], 450], fill=blue, width=5)
    v10 = box(50, 640, ["VLAN 10 STAFF", "10.10.0.0/24", "NAS 10.10.0.50"], green, 410)
    v20 = box(545, 640, ["VLAN 20 GUEST WIFI", "10.20.0.0/24", "4x UniFi AP"], green, 410)
    v30 = box(1040, 640, ["VLAN 30 PRINTERS", "10.30.0.0/24", "DHCP off"], green, 410)
    for vx, _ in (v10, v20, v30):
        d.line([core[0], core[1], vx, 640], fill=blue, width=4)
    d.text(
        (90, 900),
        "Guest VLAN: internet only, NO route to VLAN 10 !",
        font=font(32, bold=True),
        fill=red,
    )
    d.line([90, 945, 1000, 945], fill=red, width=4)
    d.text((1080, 320), "DNS: 10.0.0.1", font=fs, fill=black)
    d.text((1080, 365), "DHCP: on FW per VLAN", font=fs, fill=black)
    # faint ghost of an old erased drawing
    ghost = Image.new("L", (w, h), 0)
    gd = ImageDraw.Draw(ghost)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, w - 300)), int(rng.integers(0, h - 200))
        gd.line(
            [x0, y0, x0 + int(rng.integers(80, 300)), y0 + int(rng.integers(-60, 60))],
            fill=40,
            width=6,
        )
    ghost = ghost.filter(ImageFilter.GaussianBlur(6))
    shade = np.asarray(ghost, dtype=np.float32)[..., None] * 0.5
    arr = np.asarray(board).astype(np.float32) - shade
    board = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return photo_of(
        board, seed=12, out_size=(1400, 980), bezel=(176, 178, 180), warp=0.035, blur=0.9, noise=4.0
    )


# --------------------------------------------------------------------------------------
# query images (for "screenshot" and "image+text" queries)
# --------------------------------------------------------------------------------------


def crop_frac(img: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    w, h = img.size
    return img.crop((int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h)))


def scale(img: Image.Image, factor: float) -> Image.Image:
    w, h = img.size
    return img.resize((round(w * factor), round(h * factor)), Image.Resampling.LANCZOS)


def make_query_images(
    corpus: Mapping[str, Image.Image], scans: dict[str, list[Image.Image]]
) -> dict[str, Image.Image]:
    q: dict[str, Image.Image] = {}
    # --- screenshot queries: crops, resizes and re-renders of corpus pictures and pages
    q["q_smtp_dark.png"] = make_smtp_dialog(
        DARK, [SMTP_FIELDS[i] for i in (0, 1, 2, 4, 9)], full=False, width=860
    )
    q["q_dns_timeline.png"] = scale(
        crop_frac(scans["dns_outage_postmortem.pdf"][1], (0.05, 0.03, 0.95, 0.36)), 0.8
    )
    q["q_gpu_scan_thumb.png"] = scale(
        crop_frac(scans["gpu_driver_install.pdf"][0], (0.05, 0.03, 0.95, 0.42)), 0.5
    )
    q["q_whiteboard_core.jpg"] = scale(
        crop_frac(corpus["office_network_whiteboard.jpg"], (0.3, 0.12, 0.9, 0.52)), 0.6
    )
    q["q_alert_contacts.png"] = crop_frac(
        corpus["latency_alert_rule.tiff"].convert("RGB"), (0, 0.40, 1, 0.78)
    )
    q["q_vpn_log_light.png"] = render_terminal(
        VPN_LINES[2:], LIGHT, "WireGuard log - corp-eu", size=24
    )
    q["q_sshd_crop.png"] = scale(
        crop_frac(corpus["sshd_hardening_terminal.png"], (0, 0.44, 1, 0.87)), 0.9
    )
    q["q_csv_photo.jpg"] = photo_of(
        crop_frac(corpus["csv_import_errors.gif"].convert("RGB"), (0, 0.1, 1, 0.8)),
        seed=21,
        out_size=(1100, 640),
        bezel=(20, 20, 22),
        warp=0.05,
        blur=1.0,
        noise=6.0,
    )
    q["q_ratelimit_table.png"] = render_table(
        "2. Limits by plan",
        "Acme Public API v2 reference, page 2",
        ["plan", "req/min", "burst", "concurrent"],
        [
            ["Free", "60", "10", "5"],
            ["Starter", "600", "100", "10"],
            ["Business", "3,000", "500", "25"],
            ["Enterprise", "10,000+", "custom", "100"],
        ],
        [220, 200, 180, 200],
        "Daily cap resets at 00:00 UTC.",
    )
    q["q_probe_yaml.png"] = render_terminal(
        [
            "startupProbe:",
            "  httpGet: {path: /healthz, port: 8080}",
            "  failureThreshold: 30",
            "  periodSeconds: 10",
            "livenessProbe:",
            "  httpGet: {path: /healthz, port: 8080}",
            "  timeoutSeconds: 3",
        ],
        DARK,
        "deployment.yaml - VS Code",
        size=23,
        min_width=640,
    )
    # --- image+text queries: the picture shows the problem, the text asks about it
    q["q_429_curl.png"] = render_terminal(
        [
            '$ curl -si https://api.acme.io/v2/search?q=invoice -H "Authorization: Bearer $KEY"',
            "HTTP/2 429",
            "retry-after: 12",
            "x-ratelimit-limit: 3000",
            "x-ratelimit-remaining: 0",
            "content-type: application/json",
            "",
            '{"error": "rate_limited", "retry_after": 12, "limit_scope": "key"}',
        ],
        DARK,
        "zsh",
        size=22,
    )
    q["q_nvidia_smi_fail.png"] = render_terminal(
        [
            "ubuntu@gpu-node-09:~$ nvidia-smi",
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA",
            "driver. Make sure that the latest NVIDIA driver is installed and running.",
            "ubuntu@gpu-node-09:~$ lsmod | grep -E 'nvidia|nouveau'",
            "nouveau              2433024  1",
        ],
        LIGHT,
        "ubuntu@gpu-node-09",
        size=22,
    )
    q["q_pg_dead_tuples.png"] = render_terminal(
        [
            "orders=# SELECT relname, n_live_tup, n_dead_tup, last_autovacuum",
            "orders-#   FROM pg_stat_user_tables ORDER BY n_dead_tup DESC LIMIT 3;",
            "  relname    | n_live_tup | n_dead_tup |  last_autovacuum",
            "-------------+------------+------------+-------------------",
            " orders      |  181204117 |   29811954 | 2024-03-02 04:11",
            " order_items |  512330876 |    8125403 | 2024-03-09 22:40",
            " customers   |    2210456 |      10233 | 2024-03-18 09:02",
            "(3 rows)",
        ],
        DARK,
        "psql - orders@db-orders-1",
        size=22,
    )
    q["q_probe_events.png"] = render_terminal(
        [
            "$ kubectl get events -n payments --field-selector reason=Unhealthy",
            "LAST SEEN  TYPE     REASON     OBJECT                        MESSAGE",
            "12s        Warning  Unhealthy  pod/payments-api-7d9f-x2kq4  Liveness probe failed:",
            '  Get "http://10.42.3.17:8080/healthz": context deadline exceeded',
            "41s        Normal   Killing    pod/payments-api-7d9f-x2kq4  Container api failed",
            "  liveness probe, will be restarted",
        ],
        DARK,
        "kubectl",
        size=22,
    )
    q["q_redis_oom.png"] = render_terminal(
        [
            'cache-sessions-prod:6379> SET session:9f2c1 "{...}" EX 3600',
            "(error) OOM command not allowed when used memory > 'maxmemory'.",
            "cache-sessions-prod:6379> CONFIG GET maxmemory-policy",
            '1) "maxmemory-policy"',
            '2) "noeviction"',
        ],
        LIGHT,
        "redis-cli",
        size=22,
    )
    q["q_csv_country_row.png"] = crop_frac(
        corpus["csv_import_errors.gif"].convert("RGB"), (0, 0.30, 1, 0.43)
    )
    q["q_cert_expired.png"] = make_cert_error()
    return q


def make_cert_error() -> Image.Image:
    f = Form(980, LIGHT, "Privacy error - api.acme.io")
    f.heading("Your connection is not private", size=30)
    f.paragraph(
        "Attackers might be trying to steal your information from api.acme.io "
        "(for example, passwords, messages or credit cards).",
        muted=False,
    )
    f.paragraph("NET::ERR_CERT_DATE_INVALID", muted=False, mono=True)
    f.paragraph(
        "This server could not prove that it is api.acme.io; its security "
        "certificate expired 2 days ago. You cannot visit api.acme.io right now "
        "because the website uses HSTS."
    )
    f.buttons(["Back to safety"], primary=0)
    return f.render()


# --------------------------------------------------------------------------------------
# the evaluation set
# --------------------------------------------------------------------------------------

# kind: paraphrase | detail | screenshot | image+text. "answer" (detail queries) is a
# string that must occur in the target, for checking answers and OCR, not for retrieval.
QUERIES: list[dict[str, str]] = [
    # ---- paraphrase: the gist, in other words
    {
        "kind": "paraphrase",
        "target": "k8s_liveness_probe_runbook.md",
        "query": "Our service containers keep getting killed and relaunched by the cluster "
        "while they are still warming up, although nothing is actually broken. "
        "How do we stop that?",
    },
    {
        "kind": "paraphrase",
        "target": "pg_vacuum_tuning.md",
        "query": "A big database table keeps growing on disk although the number of records "
        "hardly changes, and reads got slower. Which background cleanup settings "
        "should we adjust?",
    },
    {
        "kind": "paraphrase",
        "target": "oauth_device_flow.md",
        "query": "How does signing in from a terminal without a web browser work, where you "
        "type a short code on your phone?",
    },
    {
        "kind": "paraphrase",
        "target": "git_branching_guide.md",
        "query": "What are our rules for naming work branches, how long may they stay open, "
        "and how do fixes get into a shipped version?",
    },
    {
        "kind": "paraphrase",
        "target": "redis_eviction_notes.txt",
        "query": "Why could people suddenly not sign in once the in-memory store was full, "
        "and what did we change so that old entries get dropped instead?",
    },
    {
        "kind": "paraphrase",
        "target": "backup_restore_policy.txt",
        "query": "How much data may we lose at most for customer-facing databases, and how "
        "fast must they be running again after a disaster?",
    },
    {
        "kind": "paraphrase",
        "target": "tls_certificate_rotation.pdf",
        "query": "Steps for replacing the soon-to-expire HTTPS credentials on our public "
        "endpoints without dropping connections",
    },
    {
        "kind": "paraphrase",
        "target": "api_rate_limits.pdf",
        "query": "How does the public API decide to refuse a client that calls it too often, "
        "and how should a client wait before trying again?",
    },
    {
        "kind": "paraphrase",
        "target": "python_packaging_guide.pdf",
        "query": "How should a shared code library be laid out, versioned and published so "
        "other teams can install it from our own package server?",
    },
    {
        "kind": "paraphrase",
        "target": "dns_outage_postmortem.pdf",
        "query": "Write-up of the outage where internal name lookups broke for most of an "
        "hour after someone shortened how long records may be cached",
    },
    {
        "kind": "paraphrase",
        "target": "gpu_driver_install.pdf",
        "query": "Setting up graphics card support on new compute servers: what must be "
        "turned off first and how do we check that it worked?",
    },
    {
        "kind": "paraphrase",
        "target": "disk_full_terminal.png",
        "query": "What filled up the build server, and how did we get the room back?",
    },
    {
        "kind": "paraphrase",
        "target": "office_network_whiteboard.jpg",
        "query": "How is the office network divided so that visitors cannot reach the "
        "machines of employees?",
    },
    {
        "kind": "paraphrase",
        "target": "smtp_relay_settings.webp",
        "query": "Which server and account does the notification service use to send its "
        "messages out?",
    },
    {
        "kind": "paraphrase",
        "target": "csv_import_errors.gif",
        "query": "Some lines of the client list I uploaded did not make it in; what was "
        "wrong with them?",
    },
    {
        "kind": "paraphrase",
        "target": "latency_alert_rule.tiff",
        "query": "What condition wakes the on-call engineer when paying for an order becomes slow?",
    },
    {
        "kind": "paraphrase",
        "target": "vpn_client_error.bmp",
        "query": "My laptop cannot set up the remote-access tunnel into the corporate network; "
        "the client just keeps retrying.",
    },
    {
        "kind": "paraphrase",
        "target": "sshd_hardening_terminal.png",
        "query": "What login restrictions are enforced on the jump box, and is anyone being "
        "blocked for guessing passwords?",
    },
    {
        "kind": "paraphrase",
        "target": "pg_replication_lag.txt",
        "query": "The read-only copies of the orders database fall behind the main server. "
        "How do we find out why and get them caught up?",
    },
    {
        "kind": "paraphrase",
        "target": "nginx_gateway_rate_limiting.md",
        "query": "How do we keep back-office scripts from hammering internal services, and how "
        "can a new throttle be tried out without blocking anybody?",
    },
    {
        "kind": "paraphrase",
        "target": "k8s_hpa_autoscaling.pdf",
        "query": "How does the payments service add and remove copies of itself as traffic "
        "goes up and down?",
    },
    # ---- detail: a number, command or key; some only in pixels
    {
        "kind": "detail",
        "target": "k8s_liveness_probe_runbook.md",
        "answer": "300 seconds",
        "query": "How long may the payments service take to boot before the startup check "
        "gives up on it?",
    },
    {
        "kind": "detail",
        "target": "pg_vacuum_tuning.md",
        "answer": "1.2 billion",
        "query": "At what transaction ID age do we get paged?",
    },
    {
        "kind": "detail",
        "target": "oauth_device_flow.md",
        "answer": "expires_in: 900",
        "query": "How long is the code shown by the CLI login valid, and how often does the "
        "tool ask whether the user has approved?",
    },
    {
        "kind": "detail",
        "target": "git_branching_guide.md",
        "answer": "git cherry-pick -x",
        "query": "Which command brings a fix from main over to a release branch?",
    },
    {
        "kind": "detail",
        "target": "redis_eviction_notes.txt",
        "answer": "maxmemory 12gb",
        "query": "What memory limit is configured on the session cache nodes?",
    },
    {
        "kind": "detail",
        "target": "backup_restore_policy.txt",
        "answer": "35-day",
        "query": "Which bucket holds the backups and how long does object lock protect them?",
    },
    {
        "kind": "detail",
        "target": "tls_certificate_rotation.pdf",
        "answer": "rsa:3072",
        "query": "What RSA key size do we use for a new CSR for api.acme.io?",
    },
    {
        "kind": "detail",
        "target": "api_rate_limits.pdf",
        "answer": "6 retries",
        "query": "What maximum delay and how many attempts are recommended when retrying "
        "after HTTP 429?",
    },
    {
        "kind": "detail",
        "target": "python_packaging_guide.pdf",
        "answer": "hatch-vcs",
        "query": "Which build backend and which plugin for versions from git tags do our "
        "internal Python libraries use?",
    },
    {
        "kind": "detail",
        "target": "dns_outage_postmortem.pdf",
        "answer": "61,000",
        "query": "How many queries per second hit the resolvers at the peak of INC-2291?",
    },
    {
        "kind": "detail",
        "target": "dns_outage_postmortem.pdf",
        "answer": "09:44",
        "query": "At what time UTC was the TTL change rolled back during the DNS incident?",
    },
    {
        "kind": "detail",
        "target": "gpu_driver_install.pdf",
        "answer": "550.54.15",
        "query": "Which exact NVIDIA driver version goes on the L40S nodes?",
    },
    {
        "kind": "detail",
        "target": "disk_full_terminal.png",
        "answer": "318.4GB",
        "query": "How much space did pruning the Docker build cache reclaim on build-agent-07?",
    },
    {
        "kind": "detail",
        "target": "office_network_whiteboard.jpg",
        "answer": "10.20.0.0/24",
        "query": "Which subnet is the guest Wi-Fi on?",
    },
    {
        "kind": "detail",
        "target": "smtp_relay_settings.webp",
        "answer": "587",
        "query": "Which port and which encryption does the notification mailer use for the relay?",
    },
    {
        "kind": "detail",
        "target": "csv_import_errors.gif",
        "answer": "E210",
        "query": "Which error code does the customer import give for an unknown country code?",
    },
    {
        "kind": "detail",
        "target": "latency_alert_rule.tiff",
        "answer": "0.75",
        "query": "Above what p99 latency, and for how long, does the checkout alert fire?",
    },
    {
        "kind": "detail",
        "target": "vpn_client_error.bmp",
        "answer": "51820",
        "query": "Which UDP port does the corp-eu tunnel need, and when were the keys rotated?",
    },
    {
        "kind": "detail",
        "target": "sshd_hardening_terminal.png",
        "answer": "clientaliveinterval 300",
        "query": "What is the SSH client alive interval on bastion-01?",
    },
    {
        "kind": "detail",
        "target": "pg_replication_lag.txt",
        "answer": "200GB",
        "query": "How much WAL may a replication slot hold back on the orders primary before "
        "it is invalidated?",
    },
    {
        "kind": "detail",
        "target": "nginx_gateway_rate_limiting.md",
        "answer": "rate=20r/s",
        "query": "What per-client request rate and burst does the internal gateway allow on "
        "the reports path?",
    },
    {
        "kind": "detail",
        "target": "k8s_hpa_autoscaling.pdf",
        "answer": "maxReplicas: 40",
        "query": "What is the largest number of payments-api pods, and how long does it wait "
        "before scaling down?",
    },
    # ---- screenshot: an image only (crop, resize or re-render of part of the target)
    {
        "kind": "screenshot",
        "target": "smtp_relay_settings.webp",
        "query": "",
        "image": "q_smtp_dark.png",
    },
    {
        "kind": "screenshot",
        "target": "dns_outage_postmortem.pdf",
        "query": "",
        "image": "q_dns_timeline.png",
    },
    {
        "kind": "screenshot",
        "target": "gpu_driver_install.pdf",
        "query": "",
        "image": "q_gpu_scan_thumb.png",
    },
    {
        "kind": "screenshot",
        "target": "office_network_whiteboard.jpg",
        "query": "",
        "image": "q_whiteboard_core.jpg",
    },
    {
        "kind": "screenshot",
        "target": "latency_alert_rule.tiff",
        "query": "",
        "image": "q_alert_contacts.png",
    },
    {
        "kind": "screenshot",
        "target": "vpn_client_error.bmp",
        "query": "",
        "image": "q_vpn_log_light.png",
    },
    {
        "kind": "screenshot",
        "target": "sshd_hardening_terminal.png",
        "query": "",
        "image": "q_sshd_crop.png",
    },
    {
        "kind": "screenshot",
        "target": "csv_import_errors.gif",
        "query": "where is this from?",
        "image": "q_csv_photo.jpg",
    },
    {
        "kind": "screenshot",
        "target": "api_rate_limits.pdf",
        "query": "",
        "image": "q_ratelimit_table.png",
    },
    {
        "kind": "screenshot",
        "target": "k8s_liveness_probe_runbook.md",
        "query": "",
        "image": "q_probe_yaml.png",
    },
    # ---- image+text: the picture shows a situation, the text asks about it
    {
        "kind": "image+text",
        "target": "api_rate_limits.pdf",
        "image": "q_429_curl.png",
        "query": "what are we allowed on our plan and when can we try again?",
    },
    {
        "kind": "image+text",
        "target": "gpu_driver_install.pdf",
        "image": "q_nvidia_smi_fail.png",
        "query": "how do I get the graphics cards working on this box?",
    },
    {
        "kind": "image+text",
        "target": "pg_vacuum_tuning.md",
        "image": "q_pg_dead_tuples.png",
        "query": "how should we tune cleanup for the first table here?",
    },
    {
        "kind": "image+text",
        "target": "k8s_liveness_probe_runbook.md",
        "image": "q_probe_events.png",
        "query": "why do these keep restarting?",
    },
    {
        "kind": "image+text",
        "target": "redis_eviction_notes.txt",
        "image": "q_redis_oom.png",
        "query": "what should this setting be instead?",
    },
    {
        "kind": "image+text",
        "target": "csv_import_errors.gif",
        "image": "q_csv_country_row.png",
        "query": "what value do I use instead in that column?",
    },
    {
        "kind": "image+text",
        "target": "tls_certificate_rotation.pdf",
        "image": "q_cert_expired.png",
        "query": "what is our procedure to fix this?",
    },
]


# --------------------------------------------------------------------------------------
# writing everything
# --------------------------------------------------------------------------------------


def build_pictures() -> dict[str, Image.Image]:
    pics: dict[str, Image.Image] = {
        "disk_full_terminal.png": make_disk_terminal(),
        "sshd_hardening_terminal.png": make_sshd_terminal(),
        "office_network_whiteboard.jpg": make_whiteboard(),
        "smtp_relay_settings.webp": make_smtp_dialog(),
        "csv_import_errors.gif": make_csv_table().quantize(
            colors=32, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        ),
        "latency_alert_rule.tiff": make_alert_rule().quantize(
            colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        ),
        "vpn_client_error.bmp": make_vpn_window().quantize(
            colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        ),
    }
    return pics


def save_picture(img: Image.Image, path: Path) -> None:
    ext = path.suffix.lower()
    if ext == ".png":
        img.save(path, "PNG", optimize=True)
    elif ext in (".jpg", ".jpeg"):
        img.convert("RGB").save(path, "JPEG", quality=84, subsampling=2, optimize=True)
    elif ext == ".webp":
        img.save(path, "WEBP", lossless=True, quality=80, method=4, exact=False)
    elif ext == ".gif":
        img.save(path, "GIF", optimize=False)
    elif ext in (".tif", ".tiff"):
        try:
            img.save(path, "TIFF", compression="tiff_adobe_deflate")
        except (OSError, KeyError):  # Pillow built without libtiff
            img.save(path, "TIFF")
    elif ext == ".bmp":
        img.save(path, "BMP")
    else:  # pragma: no cover - programming error
        raise ValueError(path)


def build(out: Path, queries_out: Path) -> list[Path]:
    random.seed(0)
    out.mkdir(parents=True, exist_ok=True)
    queries_out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    for name, text in {**MD_DOCS, **TXT_DOCS}.items():
        p = out / name
        p.write_bytes(text.encode("utf-8"))
        written.append(p)

    for name, (title, pages) in PDF_DOCS.items():
        p = out / name
        save_text_pdf(p, pages, title)
        written.append(p)

    scans: dict[str, list[Image.Image]] = {}
    for s_i, (name, (title, pages)) in enumerate(SCAN_DOCS.items()):
        imgs = []
        for p_i, blocks in enumerate(pages):
            page = render_page(blocks, header=f"{title}", footer=f"page {p_i + 1} of {len(pages)}")
            imgs.append(degrade_scan(page, seed=100 + 10 * s_i + p_i))
        scans[name] = imgs
        p = out / name
        save_scanned_pdf(p, imgs, title)
        written.append(p)

    pics = build_pictures()
    for name, img in pics.items():
        p = out / name
        save_picture(img, p)
        written.append(p)

    # query images are made from what a user would actually have: the saved pictures
    saved = {name: Image.open(out / name) for name in pics}
    for img in saved.values():
        img.load()
    qimgs = make_query_images(saved, scans)
    for name, img in qimgs.items():
        p = queries_out / name
        save_picture(img, p)
        written.append(p)

    used = {q["image"] for q in QUERIES if "image" in q}
    missing = used - set(qimgs)
    if missing:
        raise ValueError(f"queries refer to missing images: {sorted(missing)}")
    names = {p.name for p in written if p.parent == out}
    bad_targets = {q["target"] for q in QUERIES} - names
    if bad_targets:
        raise ValueError(f"queries target unknown files: {sorted(bad_targets)}")

    jsonl = queries_out.parent / "queries.jsonl"
    rel = queries_out.name
    with jsonl.open("w", encoding="utf-8", newline="\n") as fh:
        for q in QUERIES:
            rec: dict[str, str] = {"query": q["query"], "target": q["target"], "kind": q["kind"]}
            if "image" in q:
                rec["image"] = f"{rel}/{q['image']}"
            if "answer" in q:
                rec["answer"] = q["answer"]
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    written.append(jsonl)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument(
        "--out", type=Path, default=HERE / "corpus", help="corpus folder (default: examples/corpus)"
    )
    ap.add_argument(
        "--queries-out",
        type=Path,
        default=None,
        help="query-image folder (default: 'queries' next to --out); "
        "queries.jsonl is written into its parent folder",
    )
    args = ap.parse_args(argv)
    out: Path = args.out
    queries_out: Path = args.queries_out or out.parent / "queries"
    written = build(out, queries_out)
    total = sum(p.stat().st_size for p in written)
    for p in written:
        print(f"{p.stat().st_size:>9,d}  {p}")
    print(
        textwrap.dedent(f"""\
        {len(written)} files, {total / 1e6:.2f} MB in total
        corpus: {out}
        queries: {queries_out.parent / "queries.jsonl"} ({len(QUERIES)} queries)""")
    )


if __name__ == "__main__":
    main()
