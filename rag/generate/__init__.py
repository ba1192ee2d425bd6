"""Answer generation, chosen by ``settings.generator.backend`` from :data:`BACKENDS`.

``extractive`` quotes the best passages without a model (works offline), ``openai`` calls
any OpenAI-compatible VLM endpoint with the retrieved images attached, ``transformers``
runs a local VLM in-process. All share the prompt, the image handling and the citation
parser in this package, so the same hits get the same numbered sources whichever
backend answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rag.errors import ConfigError
from rag.generate.base import Delta, Done, GenerationEvent, Generator, collect, condense_query

if TYPE_CHECKING:
    from rag.media import MediaStore
    from rag.settings import Settings


# Backend modules are imported inside the factories so that choosing ``extractive``
# never imports the openai SDK or transformers/torch.
def _extractive(settings: Settings, media: MediaStore) -> Generator:
    from rag.generate.extractive import ExtractiveGenerator

    return ExtractiveGenerator(settings.generator, media)


def _openai(settings: Settings, media: MediaStore) -> Generator:
    from rag.generate.openai_chat import OpenAIGenerator

    return OpenAIGenerator(settings.generator, media)


def _transformers(settings: Settings, media: MediaStore) -> Generator:
    from rag.generate.hf_transformers import TransformersGenerator

    return TransformersGenerator(settings.generator, media, offline=settings.offline)


BACKENDS: dict[str, Callable[[Settings, MediaStore], Generator]] = {
    "extractive": _extractive,
    "openai": _openai,
    "transformers": _transformers,
}


def build_generator(settings: Settings, media: MediaStore) -> Generator:
    """The configured generator. Cheap: models load in ``load()`` or on first use."""
    try:
        factory = BACKENDS[settings.generator.backend]
    except KeyError:
        raise ConfigError(
            f"unknown generator backend {settings.generator.backend!r}; "
            f"choose one of {sorted(BACKENDS)} (generator.backend / MMRAG_GENERATOR__BACKEND)"
        ) from None
    return factory(settings, media)


__all__ = [
    "BACKENDS",
    "Delta",
    "Done",
    "GenerationEvent",
    "Generator",
    "build_generator",
    "collect",
    "condense_query",
]
