"""Video and audio retrieval eval: made media, questions on what is shown and said.

    python eval/av_eval.py                 # make the media, ingest, report dev
    python eval/av_eval.py --split test    # the held-out split (report only, never tune)

Everything is made deterministically here (tests/av_media.py): per topic a rendered
slide video narrated by espeak-ng, a screen-recording-like terminal video, an
audio-only memo, and a distractor Markdown document on the same topic with different
values. Questions ask about what a slide shows (``shown``), what the narration says
(``said``), what the terminal shows (``screen``) and what the memo says (``audio``);
each knows its target file and the time range where the answer is. Questions are split
dev/test by a hash of their text before any tuning. Reported: R@1/R@5/MRR per kind
(rag/evaluate.py, distinct sources) and ``time@1``: how often the best hit from the
target file has a time range that overlaps the answer's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pipeline import Pipeline  # noqa: E402
from rag.evaluate import EvalQuery, evaluate  # noqa: E402
from rag.settings import load_settings  # noqa: E402
from rag.types import Hit  # noqa: E402
from tests.av_media import (  # noqa: E402
    Shot,
    make_audio,
    make_video,
    silence,
    slide,
    speech,
)

CACHE = HERE / ".cache" / "av"
COLLECTION = "av"

# topic: (slide facts, narration facts, terminal lines, memo facts, distractor)
TOPICS: dict[str, dict[str, Any]] = {
    "certificates": {
        "slides": [["TLS certificate rotation", "Rotate every 90 days"],
                   ["Certificate authority", "Internal CA: vault-pki"]],
        "said": ["Expired certificates caused the outage in March.",
                 "Alice owns the renewal calendar."],
        "screen": ["$ openssl x509 -enddate -noout -in api.pem", "notAfter=Jun 30 2027 GMT"],
        "memo": ["Reminder: the wildcard certificate renewal needs two approvals."],
        "distractor": "Certificates used to be rotated every 365 days under the old policy.",
    },
    "backups": {
        "slides": [["Nightly backups", "Start at 02:00 UTC"],
                   ["Retention", "Keep 35 daily snapshots"]],
        "said": ["Restores are tested every Friday afternoon.",
                 "The backup bucket lives in the Frankfurt region."],
        "screen": ["$ restic snapshots --latest 1", "ID 4f3a9c  host db01  size 212 GiB"],
        "memo": ["The tape archive is shipped offsite every Monday."],
        "distractor": "Backups were weekly before the storage migration.",
    },
    "database": {
        "slides": [["Postgres cluster", "Primary on port 5432"],
                   ["Connection pooling", "PgBouncer max 400 clients"]],
        "said": ["Vacuum runs on Sunday nights.", "Replication lag alerts fire at thirty seconds."],
        "screen": ["$ psql -c 'select version()'", "PostgreSQL 16.4 on x86_64"],
        "memo": ["The analytics replica is read only and rebuilt monthly."],
        "distractor": "The database used MySQL on port 3306 until 2021.",
    },
    "deploys": {
        "slides": [["Deploy windows", "Tuesday and Thursday only"],
                   ["Rollback", "Blue green switch in 2 minutes"]],
        "said": ["Friday deploys need the director's approval.",
                 "Canary traffic starts at five percent."],
        "screen": ["$ kubectl rollout status deploy/web", "deployment web successfully rolled out"],
        "memo": ["The freeze before the holidays begins on December fifteenth."],
        "distractor": "Deploys were allowed any day before the incident review.",
    },
    "oncall": {
        "slides": [["On-call rotation", "Weekly handover Monday 10:00"],
                   ["Escalation", "Page the secondary after 15 minutes"]],
        "said": ["Night pages are paid as overtime.", "The runbook index is in the wiki."],
        "screen": ["$ pagerctl whois --now", "primary: dana  secondary: omar"],
        "memo": ["Please swap shifts only through the scheduling tool."],
        "distractor": "On-call used to hand over on Fridays.",
    },
    "network": {
        "slides": [["Office VPN", "WireGuard on UDP 51820"],
                   ["DNS", "Resolvers 10.0.0.53 and 10.0.1.53"]],
        "said": ["The guest wifi is isolated from the office network.",
                 "Firewall changes need a ticket."],
        "screen": ["$ dig +short intranet.example", "10.0.4.17"],
        "memo": ["The new fibre line doubles the uplink bandwidth next quarter."],
        "distractor": "The VPN ran OpenVPN on TCP 443 in the past.",
    },
}


def _pcm_with_times(sentences: list[str], gap: float = 0.8) -> tuple[np.ndarray, list[
        tuple[float, float]]]:
    parts, spans, t = [], [], 0.5
    parts.append(silence(0.5))
    for s in sentences:
        clip = speech(s)
        spans.append((t, t + len(clip) / 16000))
        parts += [clip, silence(gap)]
        t += len(clip) / 16000 + gap
    return np.concatenate(parts), spans


def make_set(folder: Path) -> list[dict[str, Any]]:
    """Write the media and return the questions (with their answer times)."""
    folder.mkdir(parents=True, exist_ok=True)
    questions: list[dict[str, Any]] = []
    for topic, t in TOPICS.items():
        # Slide video: two slides, the narration across them.
        audio, spans = _pcm_with_times(t["said"])
        length = max(len(audio) / 16000, 12.0)
        half = length / 2
        shots = [Shot(slide(t["slides"][0], font_size=34), half),
                 Shot(slide(t["slides"][1], font_size=34), length - half)]
        audio = np.concatenate([audio, silence(length - len(audio) / 16000 + 0.2)])
        name = f"{topic}-talk.mp4"
        (folder / name).write_bytes(make_video(shots, audio=audio))
        for i, lines in enumerate(t["slides"]):
            questions.append({"query": f"{lines[0]}: {lines[1].lower()}", "kind": "shown",
                              "target": name, "span": [i * half, (i + 1) * half]})
        for sentence, span in zip(t["said"], spans, strict=True):
            questions.append({"query": sentence.rstrip("."), "kind": "said", "target": name,
                              "span": list(span)})
        # Terminal screen recording: the prompt alone, then the output appears.
        screens = [slide([t["screen"][0]], background="black", mono=True, font_size=20),
                   slide(t["screen"], background="black", mono=True, font_size=20)]
        name = f"{topic}-screen.webm"
        (folder / name).write_bytes(make_video([Shot(screens[0], 4), Shot(screens[1], 6)],
                                               fmt="webm"))
        questions.append({"query": t["screen"][1], "kind": "screen", "target": name,
                          "span": [4.0, 10.0]})
        # Audio-only memo.
        memo, mspans = _pcm_with_times(t["memo"])
        name = f"{topic}-memo.mp3"
        (folder / name).write_bytes(make_audio(memo, fmt="mp3"))
        questions.append({"query": t["memo"][0].rstrip("."), "kind": "audio", "target": name,
                          "span": list(mspans[0])})
        (folder / f"{topic}-notes.md").write_text(
            f"# {topic.title()} notes\n\n{t['distractor']}\n")
    for q in questions:
        digest = hashlib.sha256(q["query"].encode()).digest()[0]
        q["split"] = "test" if digest % 3 == 0 else "dev"
    return questions


def time_hit(hits: list[Hit], target: str, span: list[float]) -> bool:
    """Whether the best hit from the target file has a time range overlapping ``span``."""
    for h in hits:
        if Path(h.source).name == target:
            return h.start is not None and h.end is not None and \
                h.start <= span[1] and h.end >= span[0]
    return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--split", choices=["dev", "test", "all"], default="dev")
    ap.add_argument("--data-dir", type=Path, default=CACHE / "data")
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()
    media = CACHE / "media"
    qfile = CACHE / "questions.json"
    if args.rebuild or not qfile.exists():
        qfile.parent.mkdir(parents=True, exist_ok=True)
        qfile.write_text(json.dumps(make_set(media), indent=1))
    questions = json.loads(qfile.read_text())
    settings = load_settings("offline", overrides={"data_dir": args.data_dir})
    with Pipeline(settings) as pipe:
        if COLLECTION not in pipe.collection_names() or args.rebuild:
            started = time.perf_counter()
            report = pipe.ingest(COLLECTION, [str(media)])
            print(f"ingested {len(report.files)} files in {time.perf_counter() - started:.0f} s;"
                  f" failed: {[f.error for f in report.failed]}")
        chosen = [q for q in questions if args.split == "all" or q["split"] == args.split]
        result = evaluate(
            [EvalQuery(q["query"], q["target"], kind=q["kind"]) for q in chosen],
            lambda q: [h.source for h in pipe.search(COLLECTION, q.query, limit=10)])
        timed: dict[str, list[bool]] = {}
        for q in chosen:
            hits = pipe.search(COLLECTION, q["query"], limit=10)
            timed.setdefault(q["kind"], []).append(time_hit(hits, q["target"], q["span"]))
    print(result.table())
    print(f"{'kind':<14}{'time@1':>8}  (best hit of the target file overlaps the answer's time)")
    for kind, ok in sorted(timed.items()):
        print(f"{kind:<14}{sum(ok) / len(ok):>8.3f}  n={len(ok)}")


if __name__ == "__main__":
    main()
