"""The naive baseline of issue 9: OCR + MiniLM dense vectors + numpy, no BM25, no fusion.

It takes the chunk texts mmrag stored for the eval corpus (text layer or OCR, as
ingested; no file-name header), embeds them with the same packaged MiniLM, and ranks
documents by their best chunk's cosine to the query. An image query is its OCR text.
This is what a first RAG prototype does; mmrag has to beat it.

    python eval/naive_baseline.py [--split dev|test|both] [--data-dir eval/.cache/base]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

from rag.encoders.text import resolve_model_path  # noqa: E402
from rag.evaluate import evaluate, read_queries  # noqa: E402
from rag.ocr import build_ocr, ocr_text  # noqa: E402
from rag.settings import load_settings  # noqa: E402
from rag.store import build_store  # noqa: E402


def chunk_texts(data_dir: Path, collection: str = "eval") -> tuple[list[str], list[str]]:
    """(source, text) of every stored chunk: text chunks, or the whole OCR text of a
    picture that has no separate text chunks."""
    settings = load_settings("offline", overrides={"data_dir": data_dir})
    store = build_store(settings)
    by_source: dict[str, list[Any]] = defaultdict(list)
    try:
        for hit in store.scroll(collection):
            if hit.text.strip():
                by_source[hit.source].append(hit)
    finally:
        store.close()
    sources, texts = [], []
    for source, hits in sorted(by_source.items()):
        chunks = [h for h in hits if h.chunk >= 0] or hits
        for h in sorted(chunks, key=lambda h: (h.page, h.chunk)):
            sources.append(source)
            texts.append(h.text)
    return sources, texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=HERE / ".cache" / "base")
    ap.add_argument("--split", choices=["dev", "test", "both"], default="dev")
    args = ap.parse_args()
    sources, texts = chunk_texts(args.data_dir)
    model = SentenceTransformer(resolve_model_path("all-MiniLM-L6-v2"), device="cpu")
    cache = args.data_dir / "naive-chunks.npy"
    if cache.exists() and len(np.load(cache)) == len(texts):
        mat = np.load(cache)
    else:
        mat = model.encode(texts, batch_size=64, normalize_embeddings=True,
                           show_progress_bar=True)
        np.save(cache, mat)
    ocr = build_ocr(load_settings("offline").ocr)
    src = np.array(sources)
    names = sorted(set(sources))
    index = {s: i for i, s in enumerate(names)}
    doc_of = np.array([index[s] for s in sources])

    def search(q: Any) -> list[str]:
        text = q.query
        if q.image is not None:
            assert ocr is not None
            text = f"{text}\n{ocr_text(ocr.read(Image.open(q.image).convert('RGB')))}".strip()
        qv = model.encode([text], normalize_embeddings=True)[0]
        sims = mat @ qv
        best = np.full(len(names), -np.inf)
        np.maximum.at(best, doc_of, sims)
        return [names[i] for i in np.argsort(-best)[:20]]

    _ = src
    for split in (["dev", "test"] if args.split == "both" else [args.split]):
        result = evaluate(read_queries(HERE / f"queries.{split}.jsonl"), search)
        print(f"\n[{split}] naive OCR + MiniLM dense, numpy\n{result.table()}")


if __name__ == "__main__":
    main()
