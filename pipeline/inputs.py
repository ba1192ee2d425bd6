"""Reading what users hand to a surface (a query image's bytes), with the same checks
as ingest. Surfaces import these from here, not from the ingest stage."""

from ingest.loaders import decode_image
from ingest.loaders.sniff import magic_mime

__all__ = ["decode_image", "magic_mime"]
