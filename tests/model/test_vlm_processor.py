"""Qwen3-VL prompt inputs: the model's own processor and the hand path give identical tensors
(issue #16 §3).

The tokenizer and image processor are saved to disk and read back as a user's Qwen3-VL folder
would be. ``Qwen3VLProcessor`` refuses to be built without a video processor, and its video
processor needs torchvision, which does not import beside the CPU build of torch here
(docs/platform.md). The fixture therefore builds it with ``video_processor=None`` past the
class check that needs torchvision; no video is ever passed, and every step that shapes an
image prompt (chat template, image processor, ``<|image_pad|>`` expansion, padding,
``mm_token_type_ids``) is the library's own.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motus_policy.model.encoders.tiny import (
    tiny_image_processor,
    tiny_qwen3vl,
    tiny_qwen_tokenizer,
)
from motus_policy.model.encoders.vlm import VLMConfig, VLMFeatureExtractor, make_processor

INSTRUCTIONS = ["pick up the cube", "hand the red cube over to the other arm, then put it down"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(tokenizer, image processor) read back from folders written with save_pretrained."""
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    d = tmp_path_factory.mktemp("qwen")
    tiny_qwen_tokenizer().save_pretrained(d / "tokenizer")
    tiny_image_processor().save_pretrained(d / "image_processor")
    return (
        AutoTokenizer.from_pretrained(d / "tokenizer"),
        Qwen2VLImageProcessorPil.from_pretrained(d / "image_processor"),
    )


def _processor(tokenizer, image_processor, monkeypatch):
    from transformers import Qwen3VLProcessor
    from transformers.processing_utils import ProcessorMixin

    real = make_processor(tokenizer, image_processor)
    if real is not None:  # torchvision present: the processor exactly as users get it
        return real
    check = ProcessorMixin.check_argument_for_proper_class

    def no_video_check(self, name, arg):
        return None if name == "video_processor" and arg is None else check(self, name, arg)

    monkeypatch.setattr(ProcessorMixin, "check_argument_for_proper_class", no_video_check)
    return Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=None,
        chat_template=tokenizer.chat_template,
    )


@pytest.mark.parametrize("order", ["text_image", "image_text"])
@pytest.mark.parametrize("generation_prompt", [False, True])
def test_processor_and_hand_path_give_identical_inputs(
    saved, monkeypatch, order, generation_prompt
):
    tokenizer, images = saved
    vlm = tiny_qwen3vl(tokenizer)
    config = VLMConfig(content_order=order, add_generation_prompt=generation_prompt)
    by_hand = VLMFeatureExtractor(vlm, tokenizer, images, config)
    proc = _processor(tokenizer, images, monkeypatch)
    by_processor = VLMFeatureExtractor(vlm, tokenizer, images, config, processor=proc)
    rng = np.random.default_rng(0)
    batch = [rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) for _ in INSTRUCTIONS]

    a = by_hand.build_inputs(batch, INSTRUCTIONS)
    b = by_processor.build_inputs(batch, INSTRUCTIONS)

    assert set(a) == set(b)
    for key in a:
        assert a[key].shape == b[key].shape, key
        assert torch.equal(a[key], b[key]), key
    assert a["attention_mask"][0, -1] == 0, "the shorter prompt is right-padded"
    assert int(a["mm_token_type_ids"].sum()) == int(
        (a["input_ids"] == vlm.config.image_token_id).sum()
    )
    fa, ma = by_hand.features(batch, INSTRUCTIONS)
    fb, mb = by_processor.features(batch, INSTRUCTIONS)
    assert torch.equal(ma, mb) and torch.equal(fa, fb)


def test_processor_is_none_exactly_when_torchvision_cannot_load(saved):
    tokenizer, images = saved
    try:
        import torchvision  # noqa: F401

        usable = True
    except Exception:  # noqa: BLE001 - ImportError, or built for another torch
        usable = False
    proc = make_processor(tokenizer, images)
    assert (proc is not None) == usable
