"""Answers from a local vision-language model (SmolVLM, Qwen2.5-VL, Idefics3, ...) run
in-process with ``transformers``.

The model is named like on the Hugging Face Hub or given as a local directory. Nothing is
downloaded at answer time: weights must already be in the HF cache or on disk, and when
they are not the error says exactly how to put them there. ``transformers`` and ``torch``
objects never leave this module; callers get :class:`~rag.types.Answer` and our events.
"""

from __future__ import annotations

import base64
import io
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from rag.errors import ConfigError, ModelUnavailable
from rag.generate.base import Delta, Done, GenerationEvent, Prepared, finish, prepare
from rag.media import MediaStore
from rag.settings import GeneratorSettings
from rag.types import Answer, Hit

log = logging.getLogger(__name__)


def unavailable_message(name: str, reason: str) -> str:
    """What to do when the weights are missing; this machine has no model hub."""
    return (
        f"generator model {name!r} is not available locally ({reason}). mmrag does not "
        "download models here: on a connected machine run "
        f"`huggingface-cli download {name}` and copy the Hugging Face cache "
        "(~/.cache/huggingface/hub, or $HF_HOME) to this machine, then set "
        "HF_HUB_OFFLINE=1 so transformers uses it without trying the network; or point "
        "generator.transformers.model (MMRAG_GENERATOR__TRANSFORMERS__MODEL) at a local "
        "directory that holds the model and its processor files"
    )


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line[:limit]


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or Path(name).expanduser().exists()


def decode_data_url(url: str) -> Image.Image | None:
    """A PIL image from a ``data:image/...;base64,`` URL; None for anything else
    (remote URLs are never fetched from here)."""
    if not url.startswith("data:image/") or ";base64," not in url:
        return None
    try:
        raw = base64.b64decode(url.split(";base64,", 1)[1], validate=True)
        image = Image.open(io.BytesIO(raw))
        image.load()
        return image.convert("RGB")
    except (ValueError, OSError):
        return None


def to_hf_messages(
    messages: list[dict[str, Any]], images: dict[str, Image.Image]
) -> list[dict[str, Any]]:
    """OpenAI-format messages to the content-part form HF chat templates expect.

    ``image_url`` parts become ``{"type": "image", "image": PIL}`` (our attached images
    by their data URL, data URLs from history decoded); other image URLs are dropped.
    Text parts followed by another part get a newline so templates that concatenate
    parts ("Image [2]:<image>") keep them apart.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        parts: list[dict[str, Any]] = []
        if isinstance(content, str):
            parts.append({"type": "text", "text": content})
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    parts.append({"type": "text", "text": str(part.get("text", ""))})
                elif part.get("type") == "image_url":
                    url = str((part.get("image_url") or {}).get("url", ""))
                    image = images.get(url) or decode_data_url(url)
                    if image is None:
                        log.info("dropping non-data image URL from the local VLM prompt")
                        continue
                    parts.append({"type": "image", "image": image})
        for i, part in enumerate(parts[:-1]):
            if part["type"] == "text":
                parts[i] = {"type": "text", "text": part["text"] + "\n"}
        if parts:
            out.append({"role": message["role"], "content": parts})
    return out


class TransformersGenerator:
    """A local VLM through ``AutoProcessor`` + ``AutoModelForImageTextToText``."""

    def __init__(
        self,
        settings: GeneratorSettings,
        media: MediaStore | None = None,
        *,
        offline: bool = False,
    ) -> None:
        self.settings = settings
        self.media = media
        # Offline: never let transformers try the hub (it would wait on the network).
        self.offline = offline
        self._model: Any = None
        self._processor: Any = None
        self._load_lock = threading.Lock()
        # One generation at a time: a second concurrent one would double peak memory
        # and run no faster on the same device.
        self._run_lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self.settings.transformers.model

    def load(self) -> None:
        """Load processor and weights once. Raises ``ModelUnavailable`` with the steps
        to provide the weights, or ``ConfigError`` if they are not a VLM."""
        with self._load_lock:
            if self._model is not None:
                return
            name = self.model_name
            is_path = _looks_like_path(name)
            where = str(Path(name).expanduser()) if is_path else name
            if is_path and not Path(where).is_dir():
                raise ModelUnavailable(
                    unavailable_message(name, f"{where} is not a directory")
                )
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor

            kwargs: dict[str, Any] = {"local_files_only": self.offline or is_path}
            device = self.settings.transformers.device
            dtype = torch.float32 if device == "cpu" else "auto"
            try:
                processor = AutoProcessor.from_pretrained(where, **kwargs)
                model: Any = AutoModelForImageTextToText.from_pretrained(
                    where, dtype=dtype, **kwargs
                )
            except OSError as exc:  # missing files, no cache, hub unreachable
                raise ModelUnavailable(unavailable_message(name, _first_line(exc))) from exc
            except (ValueError, KeyError) as exc:  # loaded, but not an image-text model
                raise ConfigError(
                    f"generator.transformers.model {name!r} cannot be loaded as an "
                    f"image-text-to-text model ({_first_line(exc)}): choose a "
                    "vision-language model such as HuggingFaceTB/SmolVLM-256M-Instruct "
                    "or Qwen/Qwen2.5-VL-3B-Instruct"
                ) from exc
            if not hasattr(processor, "apply_chat_template") or not getattr(
                processor, "chat_template", None
            ):
                raise ConfigError(
                    f"generator.transformers.model {name!r} has no chat template: use "
                    "an instruction-tuned VLM (an '-Instruct' checkpoint)"
                )
            model.to(device)
            model.eval()
            self._processor, self._model = processor, model

    # ------------------------------------------------------------------ generation

    def _inputs(self, prepared: Prepared) -> Any:
        images = {img.data_url: img.image for img in prepared.images}
        messages = to_hf_messages(prepared.messages, images)
        inputs = self._processor.apply_chat_template(
            messages,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
        )
        return inputs.to(self._model.device)

    def _generate_kwargs(self) -> dict[str, Any]:
        tok = getattr(self._processor, "tokenizer", None)
        pad = getattr(tok, "pad_token_id", None)
        if pad is None:
            pad = getattr(tok, "eos_token_id", None)
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.settings.transformers.max_new_tokens,
            "do_sample": False,  # answers from sources: no creativity wanted
        }
        if pad is not None:
            kwargs["pad_token_id"] = pad
        return kwargs

    def _usage(self, prompt_tokens: int, total_ids: int) -> dict[str, int]:
        completion = max(0, total_ids - prompt_tokens)
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        }

    def generate(
        self,
        question: str,
        hits: list[Hit],
        history: list[dict[str, Any]] | None = None,
        image: Image.Image | None = None,
    ) -> Answer:
        import torch

        self.load()
        prepared = prepare(question, hits, history, self.settings, self.media, image)
        with self._run_lock:
            inputs = self._inputs(prepared)
            prompt_len = int(inputs["input_ids"].shape[1])
            with torch.inference_mode():
                output = self._model.generate(**inputs, **self._generate_kwargs())
        new_tokens = output[:, prompt_len:]
        text = self._processor.batch_decode(new_tokens, skip_special_tokens=True)[0].strip()
        return finish(
            text, prepared, self.model_name, self._usage(prompt_len, int(output.shape[1]))
        )

    def stream(
        self,
        question: str,
        hits: list[Hit],
        history: list[dict[str, Any]] | None = None,
        image: Image.Image | None = None,
    ) -> Iterator[GenerationEvent]:
        """Text as the model produces it (``TextIteratorStreamer`` on a worker thread).

        If the consumer stops early, a stopping criterion ends generation at the next
        token instead of running to ``max_new_tokens`` in the background.
        """
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        self.load()
        prepared = prepare(question, hits, history, self.settings, self.media, image)
        stop = threading.Event()

        class _StopWhenAsked(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full(
                    (input_ids.shape[0],), stop.is_set(), dtype=torch.bool,
                    device=input_ids.device,
                )

        with self._run_lock:
            inputs = self._inputs(prepared)
            prompt_len = int(inputs["input_ids"].shape[1])
            streamer = TextIteratorStreamer(
                self._processor.tokenizer, skip_prompt=True, skip_special_tokens=True
            )
            result: dict[str, Any] = {}

            def work() -> None:
                try:
                    with torch.inference_mode():
                        result["output"] = self._model.generate(
                            **inputs,
                            **self._generate_kwargs(),
                            streamer=streamer,
                            stopping_criteria=StoppingCriteriaList([_StopWhenAsked()]),
                        )
                except BaseException as exc:  # re-raised on the caller's thread
                    result["error"] = exc
                    streamer.end()

            worker = threading.Thread(target=work, name="mmrag-vlm-generate", daemon=True)
            worker.start()
            parts: list[str] = []
            try:
                for piece in streamer:
                    if piece:
                        parts.append(piece)
                        yield Delta(piece)
            finally:
                stop.set()
                worker.join()
        if "error" in result:
            raise result["error"]
        text = "".join(parts)
        total = int(result["output"].shape[1]) if "output" in result else prompt_len
        yield Done(finish(text, prepared, self.model_name, self._usage(prompt_len, total)))
