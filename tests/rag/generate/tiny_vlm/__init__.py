"""Build a tiny random VLM (Idefics3 architecture, as SmolVLM uses) into a directory.

There is no model hub here, so the test builds everything a real checkpoint directory
holds, locally: a byte-level BPE tokenizer (256 byte symbols plus the Idefics3 special
tokens), an image processor, the SmolVLM chat template, and random weights from
``config.json``. ``TransformersGenerator`` then loads it by path exactly as it would load
``HuggingFaceTB/SmolVLM-256M-Instruct`` from the HF cache. It checks plumbing, never
answer quality: a random model writes random bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONFIG = Path(__file__).with_name("config.json")

# SmolVLM's own chat template (system turns supported, images as <image>).
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<end_of_utterance>",
    "<fake_token_around_image>",
    "<image>",
    "<global-img>",
    *[f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6)],
]


def load_config() -> dict[str, Any]:
    return json.loads(CONFIG.read_text())


def build_tokenizer() -> Any:
    """A byte-level BPE tokenizer with no merges: any text round-trips, 1 token/byte."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<end_of_utterance>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )


def build_tiny_vlm(out_dir: Path) -> Path:
    """Write processor + random weights to ``out_dir`` and return it."""
    import torch
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
    )

    cfg = load_config()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    side = {"longest_edge": cfg["image_size"]}
    image_processor = Idefics3ImageProcessor(
        do_image_splitting=False, size=side, max_image_size=side
    )
    processor = Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=cfg["image_seq_len"],
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(out_dir)
    text_config = {
        **cfg["text_config"],
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    config = Idefics3Config(
        vision_config=cfg["vision_config"],
        text_config=text_config,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        scale_factor=cfg["scale_factor"],
    )
    torch.manual_seed(cfg["seed"])
    model = Idefics3ForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out_dir)
    return out_dir


def build_text_only_model(out_dir: Path) -> Path:
    """A tiny text-only causal LM directory: loadable, but not an image-text model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = load_config()
    tokenizer = build_tokenizer()
    tokenizer.save_pretrained(out_dir)
    torch.manual_seed(cfg["seed"])
    text = {k: v for k, v in cfg["text_config"].items() if k != "model_type"}
    LlamaForCausalLM(LlamaConfig(**text, vocab_size=len(tokenizer))).save_pretrained(out_dir)
    return Path(out_dir)
