"""The generator protocol, its streaming events, and LLM-free query condensation.

Every backend (``extractive``, ``openai``, ``transformers``) answers the same two calls so
the API and the CLI never branch on which one is configured: ``generate`` for a whole
:class:`~rag.types.Answer`, ``stream`` for ``Delta`` events followed by exactly one
``Done`` carrying the same kind of ``Answer`` (citations can only be parsed once the full
text exists, so they arrive with ``Done``).

Numbering contract shared by all backends: ``Answer.hits`` are the numbered sources the
model saw, in order, so ``Citation.index == n`` refers to ``Answer.hits[n - 1]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from rag.generate.citations import extract_citations
from rag.generate.images import AttachedImage, load_images, resize_for_model, to_data_url
from rag.generate.prompt import Source, build_messages, select_sources
from rag.media import MediaStore
from rag.settings import GeneratorSettings
from rag.types import Answer, Delta, Done, GenerationEvent, Hit  # noqa: F401 (re-exported)


@runtime_checkable
class Generator(Protocol):
    """Turns a question and retrieved hits into a cited answer."""

    def load(self) -> None:
        """Load heavy resources once (model weights); a no-op for remote/LLM-free
        backends. Called from the CLI command or the FastAPI lifespan so the first
        request does not pay for it; ``generate``/``stream`` call it lazily too."""
        ...

    def generate(
        self,
        question: str,
        hits: list[Hit],
        history: list[dict[str, Any]] | None = None,
        image: Image.Image | None = None,
    ) -> Answer:
        """Answer ``question`` from ``hits`` (best first). ``history`` holds earlier
        OpenAI-format messages (``role``/``content``) for conversational context;
        ``image`` is a picture the user asked about, shown to a vision model after the
        sources (the extractive backend does not look at images)."""
        ...

    def stream(
        self,
        question: str,
        hits: list[Hit],
        history: list[dict[str, Any]] | None = None,
        image: Image.Image | None = None,
    ) -> Iterator[GenerationEvent]:
        """Like :meth:`generate`, as ``Delta`` events then exactly one ``Done``."""
        ...


def collect(events: Iterator[GenerationEvent]) -> Answer:
    """Drain a stream and return its final answer (handy for tests and the CLI)."""
    answer: Answer | None = None
    for event in events:
        if isinstance(event, Done):
            answer = event.answer
    if answer is None:
        raise RuntimeError("generator stream ended without a Done event")
    return answer


# --------------------------------------------------------------------------- condensing

# Words that point back at something said earlier. A question containing one of them
# ("what about its port?") cannot be retrieved on its own.
_ANAPHORA = frozenset(
    (
        "it", "its", "it's", "itself", "they", "them", "their", "theirs", "this", "that", "these",
        "those", "he", "him", "his", "she", "her", "hers", "one", "ones", "former", "latter",
        "same", "there", "above", "previous", "aforementioned",
    )
)
# Openers that continue the previous turn ("and the second one?", "what about X?").
# Matched against the question's words joined by single spaces, plus a trailing space.
_CONTINUATIONS = (
    "and ", "also ", "but ", "or ", "so ", "then ", "what about ", "how about ",
    "what else ", "why not ", "more ", "tell me more ", "go on ", "same for ",
)
STOPWORDS = frozenset(
    (
        "a", "an", "the", "of", "to", "in", "on", "at", "for", "by", "with", "from", "about",
        "into", "over", "is", "are", "was", "were", "be", "been", "being", "do", "does", "did",
        "has", "have", "had", "can", "could", "should", "would", "will", "shall", "may", "might",
        "must", "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "i", "me",
        "my", "we", "our", "you", "your", "please", "tell", "show", "give", "explain", "describe",
        "list", "any", "some", "all", "no", "not", "and", "or", "but", "if", "then", "so", "than",
        "as", "also", "more", "just", "only", "very", "much", "many",
    )
)
_WORD = re.compile(r"[\w'-]+", re.UNICODE)
# A short question with this many content words or fewer is treated as a follow-up.
SHORT_QUESTION_WORDS = 3
# How many user turns (including the latest) a condensed query may join at most.
MAX_CONDENSED_TURNS = 3


def message_text(message: dict[str, Any]) -> str:
    """The text of an OpenAI-format message: a string, or the ``text`` parts of a list."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        ]
        return " ".join(p for p in parts if p)
    return ""


def is_follow_up(question: str) -> bool:
    """Whether ``question`` leans on an earlier turn and cannot be retrieved alone.

    True when it contains an anaphoric word (it, its, they, this, that, one, ...), opens
    with a continuation ("and ...", "what about ...", "also ..."), or has at most
    :data:`SHORT_QUESTION_WORDS` content words (after dropping stopwords).
    """
    words = _WORD.findall(question.lower())
    if not words:
        return True
    if (" ".join(words) + " ").startswith(_CONTINUATIONS):
        return True
    if any(w in _ANAPHORA for w in words):
        return True
    content = [w for w in words if w not in STOPWORDS]
    return len(content) <= SHORT_QUESTION_WORDS


def condense_query(question: str, history: list[dict[str, Any]] | None) -> str:
    """A standalone retrieval query from the chat so far, without an LLM.

    Heuristic (cheap, predictable, and good enough for hybrid retrieval, where extra
    topic words help BM25 and dense search alike):

    - Only *user* turns are used. Assistant answers are long and would drown the
      question's terms; system messages are not about the topic.
    - If the latest question stands alone (see :func:`is_follow_up`), it is returned
      unchanged (whitespace-trimmed).
    - Otherwise walk back through earlier user turns, collecting them while they are
      themselves follow-ups, and stop at the first standalone one (the turn that named
      the subject). At most :data:`MAX_CONDENSED_TURNS` turns are joined, oldest first,
      so "Tell me about the X200 router" + "what about its port?" becomes
      "Tell me about the X200 router what about its port?".
    """
    latest = " ".join(question.split())
    if not history or not is_follow_up(latest):
        return latest
    earlier = [
        " ".join(message_text(m).split())
        for m in history
        if isinstance(m, dict) and m.get("role") == "user"
    ]
    earlier = [t for t in earlier if t]
    # The API may pass the latest question inside history too: do not repeat it.
    if earlier and earlier[-1] == latest:
        earlier.pop()
    picked: list[str] = []
    for turn in reversed(earlier):
        if len(picked) + 1 >= MAX_CONDENSED_TURNS:
            break
        picked.append(turn)
        if not is_follow_up(turn):
            break
    if not picked:
        return latest
    return " ".join([*reversed(picked), latest]).strip()


# ------------------------------------------------------------------ shared by LLM backends


@dataclass
class Prepared:
    """Everything an LLM backend sends: the numbered sources, the images attached to
    them, and the OpenAI-format messages that show both."""

    sources: list[Source]
    images: list[AttachedImage]
    messages: list[dict[str, Any]]


def prepare(
    question: str,
    hits: list[Hit],
    history: list[dict[str, Any]] | None,
    settings: GeneratorSettings,
    media: MediaStore | None,
    image: Image.Image | None = None,
) -> Prepared:
    """Number the sources, attach their images and build the messages, one way for all
    LLM backends, so the same hits give the same prompt whichever model answers."""
    sources = select_sources(hits, settings.max_sources, settings.max_context_chars)
    images = (
        load_images(
            sources,
            media,
            settings.max_images,
            settings.image_max_side,
            settings.max_image_pixels,
        )
        if media is not None
        else []
    )
    question_image = (
        to_data_url(resize_for_model(image, settings.image_max_side, settings.max_image_pixels))
        if image is not None
        else None
    )
    messages = build_messages(
        question, sources, history, [(img.index, img.data_url) for img in images], question_image
    )
    return Prepared(sources, images, messages)


def finish(
    text: str, prepared: Prepared, model: str, usage: dict[str, int] | None = None
) -> Answer:
    """The final answer: citations parsed from the model's ``[n]`` markers only."""
    return Answer(
        text=text,
        citations=extract_citations(text, prepared.sources),
        hits=[s.hit for s in prepared.sources],
        model=model,
        extractive=False,
        usage=dict(usage or {}),
    )
