"""One typed Settings object, built once from a YAML profile plus ``MMRAG_*`` environment.

Priority (highest first): explicit overrides passed to :func:`load_settings`, environment
variables (``MMRAG_DATA_DIR``, nested with ``__`` as in ``MMRAG_STORE__BACKEND=qdrant``),
``configs/<profile>.yaml`` deep-merged over ``configs/default.yaml``, then the field
defaults below. This module is the only place that reads the environment or config files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

import configs as _configs
from rag.errors import ConfigError

CONFIG_DIR = _configs.CONFIG_DIR


class _Section(BaseModel):
    """A settings section: unknown keys are errors, so a typo in a profile is caught."""

    model_config = ConfigDict(extra="forbid")


class StoreSettings(_Section):
    backend: Literal["edge", "qdrant"] = "edge"
    # qdrant backend: a server URL, or ":memory:" / a local path for qdrant-client's local mode.
    url: str | None = None
    path: str | None = None
    api_key: str | None = None
    prefer_grpc: bool = False
    # edge backend: call optimize() (builds HNSW) after an ingest that adds this many points.
    optimize_after: int = 2000
    # Embedded stores are used by one process at a time: how long a command waits for
    # another one (an ingest in another terminal) before giving up with a message.
    lock_timeout_s: float = 600.0
    # After an operation a process keeps the embedded store open this long, or until
    # another process asks for it (seen within ~50 ms), so that back-to-back searches in
    # one process do not reopen it each time (loading and closing a 3k-point shard took
    # ~250 ms of a search). 0: close after every operation.
    linger_s: float = 5.0
    # Vector quantization of new collections: "int8" keeps a 4x smaller scalar-quantized
    # copy of every dense vector in RAM and searches it, then rescores the best
    # ``oversampling`` x limit candidates with the original vectors, which stay on disk
    # (1M x 384-d: 623 MB RSS against 1,696 MB, same recall; bench_quantization.py).
    quantization: Literal["none", "int8"] = "none"
    oversampling: float = 2.0
    # HNSW search breadth for dense paths. Without it the engine explores about as many
    # candidates as the limit, which gave recall@10 of 0.13-0.30 on 30k-100k random
    # 384-d vectors (benchmarks/bench_quantization.py). Raise it for million-point
    # collections: on 1M structured vectors 128 gave recall@10 0.53, 256 gave 0.70.
    hnsw_ef: int = 128
    # edge backend: points kept converted in memory per open collection, so searches read
    # their candidates from memory instead of the engine (rag/store/point_cache.py):
    # about 5 KB a text chunk, 20-30 KB a page with word boxes, so at most ~60 MB. 0: off.
    cache_points: int = 2048
    # A Qdrant cluster (qdrant backend, server mode; applied when a collection is
    # created, so existing collections keep theirs). None: the server's defaults (one
    # shard, one copy). Shards spread a collection's points and its search work over
    # nodes; replicas keep a shard readable and writable when a node is lost.
    shard_number: int | None = Field(default=None, ge=1)
    replication_factor: int | None = Field(default=None, ge=1)
    # Replicas that must acknowledge a write before it returns (<= replication_factor).
    write_consistency_factor: int | None = Field(default=None, ge=1)
    # Replicas asked on every read: a number, or "majority", "quorum", "all". None: any
    # one replica (fastest; may briefly miss a write still reaching the others).
    read_consistency: int | Literal["majority", "quorum", "all"] | None = None
    # Where page images and pictures are kept; empty: <data_dir>/media. On a cluster, a
    # folder every ingest worker and API replica sees (NFS, CephFS), or an object store
    # URL such as s3://bucket/media (`pip install 'mmrag[s3]'`; credentials and endpoint
    # from the usual AWS_* environment).
    media_dir: str = ""


# Where a model runs: "auto" picks CUDA when torch sees a GPU, else Apple's MPS, else the
# CPU; or name a torch device ("cpu", "cuda", "cuda:1", "mps").
Device = str
# Numeric precision of encoder forward passes: "auto" is bf16 autocast on a CUDA device that
# supports it (fp16 on older GPUs), fp32 elsewhere. Vectors stay within cosine 0.999 of
# fp32 (benchmarks/bench_encoders.py checks this); stored vectors are float32 either way.
Precision = Literal["auto", "fp32", "bf16", "fp16"]


class ClipSettings(_Section):
    enabled: bool = True
    backend: str = "open_clip"
    model: str = "ViT-B-32"
    pretrained: str | None = "laion2b_s34b_b79k"
    # A local checkpoint file (.pt/.bin/.safetensors) used instead of the pretrained tag.
    checkpoint: str | None = None
    # A JSON model config (open_clip format) for architectures open_clip does not ship.
    model_config_path: str | None = None
    device: Device = "auto"
    precision: Precision = "auto"
    # Images per forward pass; 0: auto, 256 on a GPU (large batches keep it busy), 16 on
    # the CPU.
    batch_size: int = 0
    # Threads that decode, resize and normalise images while the model runs (0: none,
    # the calling thread does it; -1: auto, one per core up to 16 on a GPU, none on the
    # CPU, where the model is the bottleneck). PIL releases the GIL for decoding and
    # resampling.
    preprocess_workers: int = -1
    # Decode JPEGs at a reduced scale (libjpeg's DCT scaling, PIL's draft mode) that is
    # still at least the model's input size: decoding a 1024x768 JPEG at half scale is
    # several times cheaper. Vectors move slightly (the bench reports cosine to the full
    # decode), so it is off by default.
    jpeg_draft: bool = False


class TextEncoderSettings(_Section):
    enabled: bool = True
    backend: str = "sentence_transformers"
    model: str = "all-MiniLM-L6-v2"
    # What runs the transformer: "torch" (sentence-transformers itself), "onnx"
    # (onnxruntime over an ONNX export made once and cached in export_dir), "openvino"
    # (the same export), or "auto": openvino on the CPU, onnx when OpenVINO is missing (a
    # query encodes in 1.7 / 3.5 ms instead of 27 on torch, batches ~15% faster, same
    # vectors), torch on a GPU; auto falls back to torch when the model cannot be
    # exported.
    runtime: Literal["auto", "torch", "onnx", "openvino"] = "auto"
    # Where ONNX exports are cached; empty: models/ under the data dir.
    export_dir: str = ""
    device: Device = "auto"
    # fp32 by default: on an H200, MiniLM under bf16 autocast ran slower than fp32
    # (1,124 vs 1,757 chunks/s; tokenisation dominates and autocast adds cast kernels).
    precision: Precision = "fp32"
    batch_size: int = 64
    # torch intra-op threads for CPU encoding (0: torch's default, one per core).
    threads: int = 0
    # Prepend the document title (file name) to every chunk before embedding.
    contextual_header: bool = True
    # Also prepend this many characters of the document's opening (its title or NAME
    # line) to every chunk that does not start with it; 0 turns it off.
    context_chars: int = 0


class SparseSettings(_Section):
    enabled: bool = True
    backend: str = "bm25"
    language: str = "english"


class OcrSettings(_Section):
    enabled: bool = True
    backend: str = "rapidocr"
    min_confidence: float = 0.5
    # Images are scaled down so their longer side is at most this before OCR.
    max_side: int = 2000
    # onnxruntime threads per engine; 0 = its default (all cores). Ingest workers use 1.
    threads: int = 0
    # Images whose grey levels span at most this (max - min, 0..255) are blank: no OCR.
    # -1 turns the check off.
    blank_range: int = 24
    # rapidocr_torch backend: the same PP-OCR models converted to torch, on this device.
    device: Device = "auto"
    # Text lines recognised per forward pass (RapidOCR's default is 6; larger batches pad
    # lines to a common width and can change a few characters).
    rec_batch_size: int = 6
    # Images whose longer side is under this are enlarged (up to 2x) before detection, so
    # the small text of a cropped screenshot is found and read (0: never enlarge).
    enlarge_below: int = 0
    # Horizontal stretch before OCR. The recogniser reads a line at a fixed height and
    # decodes CTC steps along x; a wider line gives repeated digits ("000") and spaces
    # enough steps not to be merged away (1.0: off; 1.3 measured in benchmarks/ocr_cer.py).
    stretch_x: float = 1.3
    # What runs the rapidocr backend's models on the CPU: "openvino" (about 1.4x faster
    # than onnxruntime on one thread, the same text; rag/ocr/openvino_session.py),
    # "onnxruntime", or "auto": OpenVINO when the package is installed (it is a dependency)
    # and it compiles the models, else onnxruntime with a warning.
    runtime: Literal["auto", "onnxruntime", "openvino"] = "auto"
    # onnxruntime only: fold PP-OCR's element-wise layer chains into its convolutions when
    # the models load (rag/ocr/fuse.py): the same text, 1.9x faster than unfused.
    fuse_layers: bool = True
    # Put back the spaces the recogniser dropped between words ("inputandwrite"): where the
    # image shows a gap, confirmed by an English word segmenter (rag/ocr/words.py). Off:
    # lines exactly as the recogniser wrote them (for text in other languages).
    word_repair: bool = True


class ChunkSettings(_Section):
    size: int = 800
    overlap: int = 120
    # A lead point per document: its opening (title, a man page's NAME line and first
    # sentences), at most this many characters, as one more text point of its own, so a
    # short question about what a document is for meets that summary undiluted by the
    # rest of the first chunk. 0: none.
    lead_chars: int = 0


class IngestSettings(_Section):
    render_dpi: int = 144
    # Pages with fewer text-layer characters than this are rendered and OCR'd.
    min_text_chars: int = 20
    store_page_images: bool = True
    max_file_bytes: int = 200 * 1024 * 1024
    max_pixels: int = 64_000_000
    max_pages: int = 2000
    # Per-file work limits: a file over one fails with a message naming the setting, so
    # one huge file cannot hold a batch for hours (the other files keep going meanwhile).
    max_chars: int = 5_000_000
    max_chunks: int = 10_000
    # Longer side of the pictures and page renders kept in the media store.
    media_max_side: int = 2048
    batch_size: int = 64
    # Processes that load, render and OCR files: -1 one per core, 0 none (in-process).
    workers: int = -1
    # A document whose write started (its record says "writing") this many seconds ago
    # and never finished is a crashed writer's leftover, and the next writer of that
    # source removes it; younger ones may be another process still writing (several
    # writers on one Qdrant server) and are left alone.
    stale_write_s: float = 3600.0
    # Who runs the stages: "local" (this process and its worker pool) or "ray" (a Ray
    # Data pipeline on a cluster: `pip install 'mmrag[ray]'`). Same report, same records.
    executor: Literal["local", "ray"] = "local"
    # The Ray cluster to join: an address ("ray://head:10001", "head:6379"), "auto" (a
    # cluster already running on this machine), or empty: $RAY_ADDRESS if set, else a
    # private single-machine Ray started for this process.
    ray_address: str = ""
    # Encoder actors (each loads the models once and embeds batches of files); 0: one per
    # GPU in the cluster, else one.
    ray_encoders: int = 0
    # GPUs each encoder actor takes; -1: one when the cluster has GPUs, else none.
    ray_encoder_gpus: float = -1.0


class CrossEncoderRerankSettings(_Section):
    """The ``cross_encoder`` reranker: a sentence-transformers CrossEncoder by name or folder
    (e.g. ``cross-encoder/ms-marco-MiniLM-L6-v2``, ``BAAI/bge-reranker-base``)."""

    model: str = "cross-encoder/ms-marco-MiniLM-L6-v2"
    device: str = "cpu"
    batch_size: int = 32
    # Tokens per (query, passage) pair; longer passages are truncated by the tokenizer.
    max_length: int = 512
    # How many of the fused candidates are re-scored (the rest keep their fused order).
    candidates: int = 30


class VlmRerankSettings(_Section):
    """The ``vlm`` reranker: an OpenAI-compatible vision endpoint scores each candidate."""

    base_url: str | None = None
    model: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    api_key: str | None = None
    timeout_s: float = 60.0
    max_tokens: int = 256
    # Candidates shown to the model in one request, and how many of them with an image.
    candidates: int = 8
    max_images: int = 4
    image_max_side: int = 768
    # Characters of each candidate's text shown to the model.
    max_chars: int = 800


class RetrievalSettings(_Section):
    fusion: Literal["rrf", "dbsf"] = "rrf"
    prefetch_limit: int = 50
    limit: int = 10
    reranker: str = "exact"
    # exact reranker: weights of each vector's cosine in the re-score, and MMR trade-off.
    # bm25 0.8: on the eval set's dev split R@1 0.895 -> 0.921 (a short purpose paraphrase
    # shares incidental words with the wrong page), the example corpus unchanged at 0.933;
    # 0.6 gave dev the same but cost the examples' option-level questions (0.900).
    weights: dict[str, float] = Field(
        default_factory=lambda: {"clip": 1.0, "text": 1.0, "bm25": 0.8}
    )
    mmr_lambda: float = 0.8
    # exact reranker: a candidate gains doc_weight x the mean relevance of the doc_top next
    # best candidates of its document (document-level evidence; 0 turns it off).
    doc_weight: float = 0.0
    doc_top: int = 2
    duplicate_threshold: float = 0.97
    cross_encoder: CrossEncoderRerankSettings = Field(default_factory=CrossEncoderRerankSettings)
    vlm: VlmRerankSettings = Field(default_factory=VlmRerankSettings)


class OpenAIGeneratorSettings(_Section):
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    api_key: str | None = None
    timeout_s: float = 120.0
    temperature: float = 0.1
    max_tokens: int = 1024


class TransformersGeneratorSettings(_Section):
    model: str = "HuggingFaceTB/SmolVLM-256M-Instruct"
    device: str = "cpu"
    max_new_tokens: int = 512


class GeneratorSettings(_Section):
    backend: str = "extractive"
    max_sources: int = 8
    max_images: int = 4
    image_max_side: int = 1024
    max_image_pixels: int = 1024 * 1024
    max_context_chars: int = 12000
    openai: OpenAIGeneratorSettings = Field(default_factory=OpenAIGeneratorSettings)
    transformers: TransformersGeneratorSettings = Field(
        default_factory=TransformersGeneratorSettings
    )


class ApiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 8080
    # API key -> collections it may use ("*" = all). Empty: no auth, loopback only.
    api_keys: dict[str, list[str]] = Field(default_factory=dict)
    max_upload_bytes: int = 100 * 1024 * 1024
    max_files_per_request: int = 32
    # Upload bytes being received at once, all requests together; over it: 429.
    max_inflight_upload_bytes: int = 1024 * 1024 * 1024
    # Pixels of a query image (chat image_url, search image), checked from its header.
    max_image_pixels: int = 25_000_000
    # Hosts allowed for http(s) image_url parts; empty means data URLs only.
    image_url_allowlist: list[str] = Field(default_factory=list)
    public_url: str | None = None
    # Host header values the server answers (DNS-rebinding defence), each "name" or
    # "name:port"; "*.example.com" for subdomains. Empty: the loopback names only
    # (localhost, 127.0.0.1, [::1]) and the bind address. "*" (any host) needs api_keys.
    allowed_hosts: list[str] = Field(default_factory=list)
    # Origins (scheme://host[:port]) whose pages may call the API from a browser (CORS).
    # Empty: CORS off, and state-changing requests from other sites are refused.
    cors_origins: list[str] = Field(default_factory=list)
    # Bytes of accepted uploads waiting in the spool (queued or running jobs) together;
    # past it new uploads get 429 with Retry-After until jobs drain it.
    max_spool_bytes: int = 4 * 1024 * 1024 * 1024
    # Finished jobs (their state files) are pruned this many seconds after they end.
    job_retention: float = 7 * 24 * 3600.0
    # Queries (searches, chats; REST and MCP together) served at once; past it a new
    # one is refused at once with 429 and Retry-After instead of making every query
    # slower. 0: no bound.
    max_queue: int = 32
    # Concurrent queries' encodes (text, CLIP, query-image OCR) and store queries are
    # merged into one call per stage of at most max_batch items; while other queries are
    # in flight a stage waits up to batch_wait_ms for more (a lone query never waits).
    max_batch: int = 32
    batch_wait_ms: float = 2.0
    # Admitted queries that run at once (the rest wait their turn, blocked, in arrival
    # order): their Python work shares the GIL. 0: auto, 8 per core; enough that while
    # some wait on the encoder or the store others have Python work to do (16 clients
    # on 2 cores: 142 searches/s with 4, 161 with 8, 212 with 16; bench_api.py).
    query_workers: int = 0
    # Where job state and spooled uploads live; empty: <data_dir>/jobs. Several API
    # replicas pointed at one shared folder (NFS, a shared volume) answer for each
    # other's jobs; a running job is claimed by its replica with a lock on that folder.
    jobs_dir: str = ""
    # Signed media links (POST /v1/media/{key}/url): how long one plays without the
    # Bearer header (a <video> cannot send it), and an optional extra secret mixed into
    # their signing keys. Links are signed with a key derived from the caller's API key,
    # so replicas with the same api_keys verify each other's links with nothing more;
    # changing this secret (32+ characters) revokes every outstanding link at once.
    media_url_ttl_s: int = Field(default=600, ge=10, le=86400)
    media_url_secret: str = ""


class VideoSettings(_Section):
    """Keyframes of videos (ingest/loaders/keyframes.py) and the limits of media files."""

    # A new keyframe at least this often, even when the picture does not change.
    max_interval_s: float = 30.0
    # At most this many keyframes per file; past it the interval between them grows.
    max_frames: int = 200
    # Longer videos and recordings fail with a message (media duration, from the header).
    max_duration_s: float = 4 * 3600.0
    # Share of the pixels of a small grey frame that changed (by more than 24 grey levels)
    # since the current keyframe that makes a new picture: a slide change, a scene cut.
    # A new slide of text changes ~5%, a terminal's new line ~1.4%, a slide whose only
    # change is a number ~0.3%; compression noise stays under the 24 levels.
    scene_threshold: float = 0.002
    # Frames that differ from the current keyframe by at most this share are
    # near-duplicates and never kept, even when max_interval_s has passed.
    duplicate_threshold: float = 0.0005
    # Longer side of the small grey frames pictures are compared on.
    analysis_side: int = 96
    # Frames are looked at this often (seconds); decoding skips the rest cheaply.
    sample_interval_s: float = 0.5
    # Width x height of the video stream, checked from the header before decoding.
    max_pixels: int = 3840 * 2160
    # Wall-clock budget for decoding, keyframes and transcription of one file.
    time_budget_s: float = 3600.0
    # Size limit of one video or recording. They are decoded and copied as streams from
    # the file, never whole in memory, so this is about disk (the original is kept for
    # playback), not RAM; documents stay under ingest.max_file_bytes.
    max_file_bytes: int = 16 * 1024 * 1024 * 1024


class TranscribeSettings(_Section):
    """What was said: the transcription stage (rag/transcribe/)."""

    enabled: bool = True
    # "pocketsphinx" (ships an English model as a package) or "whisper" (faster-whisper).
    backend: str = "pocketsphinx"
    # whisper: a CTranslate2 model folder, or a name found in the local HF cache
    # (e.g. "Systran/faster-whisper-small"); pocketsphinx: a model folder or "" (packaged).
    model: str = ""
    language: str = "en"
    device: str = "cpu"
    # whisper: CTranslate2 compute type ("int8" is fastest on CPU).
    compute_type: str = "int8"
    # Transcript chunks: windows of this many seconds of speech, overlapping by overlap_s.
    window_s: float = 30.0
    overlap_s: float = 5.0


class Settings(BaseSettings):
    """Everything mmrag can be told. Build with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="MMRAG_", env_nested_delimiter="__", extra="forbid"
    )

    profile: str = "default"
    data_dir: Path = Path("~/.mmrag")
    offline: bool = False
    store: StoreSettings = Field(default_factory=StoreSettings)
    clip: ClipSettings = Field(default_factory=ClipSettings)
    text: TextEncoderSettings = Field(default_factory=TextEncoderSettings)
    sparse: SparseSettings = Field(default_factory=SparseSettings)
    ocr: OcrSettings = Field(default_factory=OcrSettings)
    chunking: ChunkSettings = Field(default_factory=ChunkSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    generator: GeneratorSettings = Field(default_factory=GeneratorSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    video: VideoSettings = Field(default_factory=VideoSettings)
    transcribe: TranscribeSettings = Field(default_factory=TranscribeSettings)

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser()

    @property
    def media_path(self) -> Path:
        """Pictures and page renders: ``store.media_dir``, or ``media/`` in the data dir."""
        custom = self.store.media_dir
        return Path(custom).expanduser() if custom else self.data_path / "media"

    @property
    def jobs_path(self) -> Path:
        """Job state and spooled uploads: ``api.jobs_dir``, or ``jobs/`` in the data dir."""
        custom = self.api.jobs_dir
        return Path(custom).expanduser() if custom else self.data_path / "jobs"


class _DictSource(PydanticBaseSettingsSource):
    """The merged YAML profile, ranked below the environment."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Merge ``top`` into a copy of ``base``; nested dicts merge, everything else replaces."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def available_profiles(config_dir: Path = CONFIG_DIR) -> list[str]:
    return sorted(p.stem for p in config_dir.glob("*.yaml"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def load_settings(
    profile: str | None = None,
    config_dir: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Build Settings from a profile, the environment and explicit overrides.

    ``profile`` defaults to ``$MMRAG_PROFILE`` or ``default``; ``config_dir`` to
    ``$MMRAG_CONFIG_DIR`` or the repository's ``configs/``.
    """
    profile = profile or os.environ.get("MMRAG_PROFILE") or "default"
    config_dir = Path(config_dir or os.environ.get("MMRAG_CONFIG_DIR") or CONFIG_DIR)
    layers: dict[str, Any] = {}
    default_file = config_dir / "default.yaml"
    if default_file.exists():
        layers = _read_yaml(default_file)
    profile_file = config_dir / f"{profile}.yaml"
    if profile != "default":
        if not profile_file.exists():
            known = ", ".join(available_profiles(config_dir)) or "none"
            raise ConfigError(
                f"unknown profile {profile!r}: no {profile_file}. Known profiles: {known}"
            )
        layers = deep_merge(layers, _read_yaml(profile_file))
    layers["profile"] = profile

    class _Profiled(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, _DictSource(settings_cls, layers))

    clean = {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        return _Profiled(**clean)
    except Exception as exc:  # pydantic ValidationError: say which profile was bad
        raise ConfigError(f"invalid settings for profile {profile!r}: {exc}") from exc


class _Exact(Settings):
    """Settings from explicit values only: no profile, no environment."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def settings_from_dump(data: dict[str, Any]) -> Settings:
    """The same settings again from ``settings.model_dump()``: how worker processes get
    their parent's settings (the profiled class of :func:`load_settings` is local, so it
    does not pickle, and re-reading the environment there could differ)."""
    return _Exact(**data)
