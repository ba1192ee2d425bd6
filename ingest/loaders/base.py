"""What loaders produce, and the plumbing every format shares.

A loader turns the bytes of one file into pages: text plus, where there is one, the
image (the picture itself, or the rendered PDF page) and its OCR lines. Loaders are
split in two steps so big documents do not have to sit in memory whole:
:func:`ingest.loaders.open_document` validates eagerly (type, size, page count,
encryption), and :meth:`DocumentReader.iter_pages` renders and OCRs one page at a time.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Literal, TypeVar

from rag.errors import BadInput, FileRejected, LimitExceeded, MmragError
from rag.settings import IngestSettings, VideoSettings
from rag.types import OcrBox

if TYPE_CHECKING:
    from PIL import Image

    from ingest.blob import Blob
    from rag.ocr.base import OcrEngine
    from rag.transcribe.base import Segment, Transcriber

# ``frame``: a video keyframe; ``transcript``: everything said in a video or recording.
PageKind = Literal["text", "image", "page", "frame", "transcript"]
T = TypeVar("T")


@dataclass
class LoadedPage:
    """One page of a loaded file.

    ``page`` is 1-based (1 for pictures and text files). ``kind`` says where it came
    from: a text file, a picture file, or a PDF page. ``boxes`` are OCR lines normalised
    to ``image`` and are empty for text layers. ``ocr`` says ``text`` came from OCR, in
    which case ``text == rag.ocr.ocr_text(boxes)``.
    """

    page: int
    kind: PageKind
    text: str
    boxes: list[OcrBox] = field(default_factory=list)
    image: Image.Image | None = None
    ocr: bool = False
    # Seconds on the media's timeline (frames and transcripts); None for pages.
    start: float | None = None
    end: float | None = None
    # A transcript's words or phrases with their times.
    segments: list[Segment] = field(default_factory=list)
    # A transcript's keyframes as (page, start): which picture was on screen when.
    frames: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class LoadedDocument:
    """A whole file, loaded. ``title`` is the file name without directories."""

    name: str
    mime: str
    title: str
    pages: list[LoadedPage]


@dataclass(frozen=True)
class LoadRequest:
    """One file to load, with everything a reader needs to know about how."""

    name: str
    data: bytes
    mime: str
    ingest: IngestSettings
    ocr: OcrEngine | None
    render_pages: bool
    video: VideoSettings | None = None
    transcriber: Transcriber | None = None
    # Videos and recordings are read from here as a stream (``data`` is then empty).
    blob: Blob | None = None

    @property
    def title(self) -> str:
        return title_of(self.name)


class DocumentReader(abc.ABC):
    """An opened, validated file whose pages are produced on demand.

    Constructors validate everything that can be checked without the expensive work
    (type, limits, page count, password) so a bad file fails before any rendering or
    OCR. Both steps raise only :mod:`rag.errors` types.
    """

    def __init__(self, request: LoadRequest) -> None:
        self.request = request

    @property
    def name(self) -> str:
        return self.request.name

    @property
    def mime(self) -> str:
        return self.request.mime

    @property
    def title(self) -> str:
        return self.request.title

    @property
    @abc.abstractmethod
    def page_count(self) -> int:
        """Number of pages :meth:`iter_pages` will yield (for progress bars)."""

    def iter_pages(self) -> Iterator[LoadedPage]:
        """Pages in order, each rendered and OCR'd as it is reached."""
        pages = self._pages()
        while True:
            try:
                page = guarded(self.name, lambda: next(pages))
            except StopIteration:
                return
            yield page

    @abc.abstractmethod
    def _pages(self) -> Iterator[LoadedPage]:
        """The format-specific page generator; may raise anything, iter_pages translates."""

    def close(self) -> None:  # noqa: B027 - optional hook, most readers hold no handles
        """Release parser handles; readers also close themselves after the last page."""

    def load(self) -> LoadedDocument:
        """Every page at once."""
        try:
            pages = list(self.iter_pages())
        finally:
            self.close()
        return LoadedDocument(name=self.name, mime=self.mime, title=self.title, pages=pages)


def guarded(name: str, work: Callable[[], T]) -> T:
    """Run ``work``; a library exception that slipped through becomes FileRejected.

    Readers translate the failures they expect with precise messages; this is the net
    under them, so nothing but :mod:`rag.errors` types leaves the loaders.
    """
    try:
        return work()
    except (MmragError, StopIteration):
        raise
    except MemoryError as exc:
        raise LimitExceeded(f"{name}: the file needs more memory than is available") from exc
    except Exception as exc:
        raise FileRejected(
            f"{name}: the file cannot be read ({type(exc).__name__}: {exc})"
        ) from exc


def title_of(name: str) -> str:
    """The file name without directories; Windows separators count too (browser uploads)."""
    return PurePosixPath(name.replace("\\", "/")).name or name


def suffix_of(name: str) -> str:
    return PurePosixPath(title_of(name)).suffix.lower()


def visible_chars(text: str) -> int:
    """Characters that are not whitespace: what "enough text on a page" means."""
    return sum(1 for ch in text if not ch.isspace())


def read_ocr(request: LoadRequest, image: Image.Image, page: int) -> list[OcrBox]:
    """OCR one image, turning any failure that is the file's fault into FileRejected.

    Errors that are not about the file (a model that cannot load, bad settings) pass
    through unchanged so the API reports them as the server problem they are.
    """
    engine = request.ocr
    if engine is None:
        return []
    try:
        return list(engine.read(image))
    except BadInput as exc:
        raise FileRejected(f"{request.name}: page {page}: OCR failed: {exc}") from exc
    except MmragError:
        raise
    except Exception as exc:
        raise FileRejected(f"{request.name}: page {page}: OCR failed: {exc}") from exc
