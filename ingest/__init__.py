"""Ingest: loaders per format, OCR, chunking, content hashing, and the job runner."""
