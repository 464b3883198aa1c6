"""Tiny random-weight VLMs and detectors built from transformers configs, for offline tests and demos.

Nothing is downloaded: tokenizers are built from a byte-level alphabet (or a few words), image
processors and model configs are written out with small sizes, and everything is saved with
``save_pretrained`` into a folder the ``mllm`` / ``detector`` backends load like any local
model. The answers of these models are random text and random boxes: they exercise the code
path, not grounding quality.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["TINY_MLLMS", "TINY_DETECTORS", "build_tiny_mllm", "build_tiny_detector"]

TINY_MLLMS: tuple[str, ...] = ("qwen2_vl", "llava")
TINY_DETECTORS: tuple[str, ...] = ("owlv2", "grounding_dino")

_CHAT = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
         "{% if c['type'] == 'image' %}{IMAGE}{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
         "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _byte_tokenizer(specials: list[str], **kwargs: Any) -> Any:
    """A fast tokenizer over the 256 byte symbols (no merges) plus ``specials``: encodes any text."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(specials + sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(s, special=True) for s in specials])
    return PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)


def _qwen2_vl(seed: int) -> tuple[Any, Any]:
    import torch
    from transformers import (Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor,
                              Qwen2VLProcessor, Qwen2VLVideoProcessor)

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>", "<|box_start|>", "<|box_end|>"]
    tok = _byte_tokenizer(specials, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = {s: tok.convert_tokens_to_ids(s) for s in specials}
    images = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=56 * 112, patch_size=14, merge_size=2,
                                   temporal_patch_size=2)
    chat = _CHAT.replace("{IMAGE}", "<|vision_start|><|image_pad|><|vision_end|>")
    processor = Qwen2VLProcessor(image_processor=images, tokenizer=tok, video_processor=Qwen2VLVideoProcessor(),
                                 chat_template=chat)
    cfg = Qwen2VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=ids["<|im_start|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"],
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}),
        vision_config=dict(depth=2, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"], bos_token_id=ids["<|im_start|>"])
    torch.manual_seed(seed)
    return processor, Qwen2VLForConditionalGeneration(cfg)


def _llava(seed: int) -> tuple[Any, Any]:
    import torch
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)

    specials = ["<pad>", "<s>", "</s>", "<image>", "<|im_start|>", "<|im_end|>"]
    tok = _byte_tokenizer(specials, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                          extra_special_tokens={"image_token": "<image>"})
    ids = {s: tok.convert_tokens_to_ids(s) for s in specials}
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(image_processor=images, tokenizer=tok, patch_size=8,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=_CHAT.replace("{IMAGE}", "<image>"))
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, image_size=32, patch_size=8, projection_dim=32),
        text_config=LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                                pad_token_id=ids["<pad>"], bos_token_id=ids["<s>"], eos_token_id=ids["</s>"]),
        image_token_index=ids["<image>"], vision_feature_select_strategy="default", vision_feature_layer=-1)
    torch.manual_seed(seed)
    return processor, LlavaForConditionalGeneration(cfg)


def _owlv2(seed: int) -> tuple[Any, Any]:
    import torch
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer, Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    tok = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=48)
    processor = Owlv2Processor(image_processor=Owlv2ImageProcessor(size={"height": 64, "width": 64}), tokenizer=tok)
    cfg = Owlv2Config(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=48, bos_token_id=vocab["<|startoftext|>"],
                         eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"]),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=64, patch_size=16),
        projection_dim=32)
    torch.manual_seed(seed)
    return processor, Owlv2ForObjectDetection(cfg)


def _grounding_dino(seed: int) -> tuple[Any, Any]:
    import torch
    from transformers import (BertConfig, BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig)

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "'", "a", "s", "person", "head", "upper", "body",
             "legs", "the", "of"]
    tok = BertTokenizer(vocab={w: i for i, w in enumerate(words)}, model_max_length=32)
    images = GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 128})
    processor = GroundingDinoProcessor(image_processor=images, tokenizer=tok)
    cfg = GroundingDinoConfig(
        backbone_config=SwinConfig(embed_dim=16, depths=[1, 1, 1], num_heads=[1, 1, 1], window_size=4, image_size=64,
                                   out_features=["stage1", "stage2", "stage3"]),
        text_config=BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=64),
        d_model=32, num_queries=10, encoder_layers=1, decoder_layers=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        encoder_attention_heads=2, decoder_attention_heads=2, num_feature_levels=3, encoder_n_points=2,
        decoder_n_points=2, max_text_len=32)
    torch.manual_seed(seed)
    return processor, GroundingDinoForObjectDetection(cfg)


_BUILDERS = {"qwen2_vl": _qwen2_vl, "llava": _llava, "owlv2": _owlv2, "grounding_dino": _grounding_dino}


def _build(family: str, out_dir: str | Path, seed: int, known: tuple[str, ...]) -> Path:
    if family not in known:
        raise ValueError(f"unknown tiny model family {family!r}; known: {', '.join(known)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    processor, model = _BUILDERS[family](seed)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_tiny_mllm(out_dir: str | Path, family: str = "qwen2_vl", seed: int = 0) -> Path:
    """Save a tiny random image-text-to-text model + processor (``qwen2_vl`` or ``llava``) to ``out_dir``."""
    return _build(family, out_dir, seed, TINY_MLLMS)


def build_tiny_detector(out_dir: str | Path, family: str = "owlv2", seed: int = 0) -> Path:
    """Save a tiny random zero-shot detector + processor (``owlv2`` or ``grounding_dino``) to ``out_dir``."""
    return _build(family, out_dir, seed, TINY_DETECTORS)
