"""The search filter a caller may send, as one schema for every surface (the REST
``filter`` field, MCP's ``filter`` argument), so both accept and refuse the same things."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.types import Filter

ModalityName = Literal["text", "image", "page", "frame", "transcript"]
MetadataValue = str | int | float | bool


class SearchFilter(BaseModel):
    """Restrict retrieval; ``source_prefix`` matches whole path components."""

    model_config = ConfigDict(extra="forbid")

    modality: list[ModalityName] | None = None
    source_prefix: str | None = None
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)

    def to_filter(self) -> Filter | None:
        flt = Filter(
            modality=list(self.modality) if self.modality else None,
            source_prefix=self.source_prefix or None,
            metadata=dict(self.metadata),
        )
        return None if flt.is_empty() else flt
