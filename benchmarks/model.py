"""Per-chunk latency benchmark of :class:`~motus_policy.model.policy.MotusPolicy`.

``python -m benchmarks.model --config tiny|aloha_agilex_2|ac_one|robotwin
--device cpu|cuda [--runs 20] [--steps 10] [--force]``

Random weights. Two paths in the same process, same weights, same observation:

* ``lean``: our path (T5 cached per instruction, VLM once per observation, text K/V cached,
  no VAE decode since frames are not requested);
* ``official``: the official loop's work (T5 per call, VLM + und adapter every step, no K/V
  cache, VAE decode always; docs/motus.md §2.2, §6.2, §8).

Per path: median and p90 of the per-chunk latency over ``--runs`` runs after warm-up, per-stage
medians, peak memory (``torch.cuda.max_memory_allocated`` on GPU, process max RSS on CPU), and
the official/lean ratio. Full-size models (≈5 B + 2 B + 5.7 B parameters) are refused on CPU
without ``--force``. Full-size encoders are built from their published architectures
(Wan2.2 VAE, umt5-xxl, Qwen3-VL-2B; docs/motus.md §1.4, §7) with a byte-level tokenizer.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import torch

from motus_policy.model.configuration_motus import MotusConfig
from motus_policy.model.policy import STAGES, MotusPolicy, PolicyConfig
from motus_policy.types import Observation


def _full_size_policy(cfg: MotusConfig, device: str, dtype: torch.dtype) -> MotusPolicy:
    from transformers import UMT5Config, UMT5EncoderModel

    from motus_policy.model.encoders.text import T5TextEncoder, TextEncoderConfig
    from motus_policy.model.encoders.tiny import (
        tiny_image_processor,
        tiny_qwen_tokenizer,
        tiny_t5_tokenizer,
    )
    from motus_policy.model.encoders.vae import MotusVAE, VAEConfig
    from motus_policy.model.encoders.vlm import VLMFeatureExtractor
    from motus_policy.model.modeling_motus import MotusModel

    with torch.device(device):
        model = MotusModel(cfg).to(dtype)
        vae = MotusVAE(VAEConfig())
        t5_tok = tiny_t5_tokenizer()
        # umt5-xxl encoder architecture (docs/checkpoint-format.md §7); vocabulary shrunk to the
        # byte tokenizer.
        t5 = UMT5EncoderModel(
            UMT5Config(
                vocab_size=len(t5_tok), d_model=4096, d_kv=64, d_ff=10240, num_layers=24,
                num_heads=64, feed_forward_proj="gated-gelu",
            )
        ).to(dtype)  # fmt: skip
        q_tok = tiny_qwen_tokenizer()
        vlm = _qwen3vl_2b(q_tok).to(dtype)
    ip = tiny_image_processor()
    ip.max_pixels = ip.size["longest_edge"] = 16384 * 28 * 28
    return MotusPolicy(
        model,
        vae,
        T5TextEncoder(t5, t5_tok, TextEncoderConfig()),
        VLMFeatureExtractor(vlm, q_tok, ip),
    )


def _qwen3vl_2b(tok):
    """Random Qwen3-VL with the 2B sizes (vision numbers unverified there).

    Sizes: docs/motus.md §1.4.
    """
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>")}
    ids |= {t: tok.convert_tokens_to_ids(t) for t in ("<|vision_start|>", "<|vision_end|>")}
    big = Qwen3VLConfig(
        text_config={
            "vocab_size": len(tok), "hidden_size": 2048, "intermediate_size": 6144,
            "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
            "head_dim": 128, "rope_parameters": {
                "rope_type": "default", "rope_theta": 5e6, "mrope_section": [24, 20, 20],
                "mrope_interleaved": True,
            },
        },
        vision_config={
            "depth": 24, "hidden_size": 1024, "intermediate_size": 4096, "num_heads": 16,
            "patch_size": 16, "temporal_patch_size": 2, "spatial_merge_size": 2,
            "out_hidden_size": 2048, "deepstack_visual_indexes": [5, 11, 17],
            "num_position_embeddings": 2304,
        },
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )  # fmt: skip
    big._attn_implementation = "sdpa"
    return Qwen3VLForConditionalGeneration(big)


def _observation(cfg: MotusConfig, seed: int = 0) -> Observation:
    rng = np.random.default_rng(seed)
    # Camera sizes whose T-layout has the model's aspect (H x W = 1.2 x W for 384x320).
    w = cfg.image_width * 2
    h = round(w * 3 / 4)
    images = {
        "cam_high": rng.integers(0, 255, (h, w, 3), dtype=np.uint8),
        "cam_left_wrist": rng.integers(0, 255, (h // 2, w // 2, 3), dtype=np.uint8),
        "cam_right_wrist": rng.integers(0, 255, (h // 2, w // 2, 3), dtype=np.uint8),
    }
    return Observation(
        images=images,
        state=rng.uniform(-1, 1, 14).astype(np.float32),
        stamp_ns=0,
        instruction="pick up the red cube and place it in the blue box",
    )


def _peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_path(policy: MotusPolicy, obs: Observation, runs: int, warmup: int, steps: int) -> dict:
    """Time ``runs`` joint-mode predictions (after ``warmup``); return latency statistics in ms."""
    if policy.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(warmup):
        policy.predict(obs, mode="joint", num_steps=steps, seed=0)
    totals, stages = [], {s: [] for s in STAGES}
    for i in range(runs):
        policy.vlm.clear_cache()  # a new observation per chunk: the VLM runs once per call
        t0 = time.perf_counter()
        policy.predict(obs, mode="joint", num_steps=steps, seed=i)
        totals.append((time.perf_counter() - t0) * 1e3)
        for s in STAGES:
            stages[s].append(policy.last_timings_s[s] * 1e3)
    return {
        "median_ms": float(np.median(totals)),
        "p90_ms": float(np.percentile(totals, 90)),
        "stages_ms": {s: float(np.median(v)) for s, v in stages.items()},
        "peak_mb": _peak_memory_mb(str(policy.device)),
    }


def format_table(results: dict[str, dict], steps: int) -> str:
    """Render the two paths side by side (ms; per-step figure = denoise / steps)."""
    rows = [("total median", "median_ms"), ("total p90", "p90_ms")]
    lines = [f"{'':22}{'lean':>12}{'official':>12}{'ratio':>8}"]
    for label, key in rows:
        a, b = results["lean"][key], results["official"][key]
        lines.append(f"{label + ' [ms]':22}{a:12.2f}{b:12.2f}{b / a:8.2f}")
    for s in STAGES:
        a, b = results["lean"]["stages_ms"][s], results["official"]["stages_ms"][s]
        ratio = f"{b / a:8.2f}" if a > 0.05 else f"{'-':>8}"
        lines.append(f"{'  ' + s + ' [ms]':22}{a:12.2f}{b:12.2f}{ratio}")
    a = results["lean"]["stages_ms"]["denoise"] / steps
    b = results["official"]["stages_ms"]["denoise"] / steps
    lines.append(f"{'  per step [ms]':22}{a:12.2f}{b:12.2f}{b / a:8.2f}")
    lines.append(
        f"{'peak memory [MiB]':22}{results['lean']['peak_mb']:12.0f}"
        f"{results['official']['peak_mb']:12.0f}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=None, help="MotusConfig preset (default: tiny on CPU)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--force", action="store_true", help="allow a full-size model on CPU")
    args = ap.parse_args(argv)
    preset = args.config or ("tiny" if args.device == "cpu" else "aloha_agilex_2")
    if args.runs < 1 or args.steps < 1:
        ap.error("--runs and --steps must be >= 1")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device available")
    if preset != "tiny" and args.device == "cpu" and not args.force:
        ap.error(f"--config {preset} on CPU builds ~13 B parameters; pass --force to do it anyway")
    cfg = MotusConfig.from_preset(preset)
    torch.manual_seed(0)
    if preset == "tiny":
        from motus_policy.model.policy import build_tiny_policy

        lean = build_tiny_policy(seed=0)
        lean.model.to(args.device), lean.vae.to(args.device)
        lean.text_encoder.model.to(args.device), lean.vlm.model.to(args.device)
    else:
        dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
        lean = _full_size_policy(cfg, args.device, dtype)
    official = MotusPolicy(
        lean.model,
        lean.vae,
        lean.text_encoder,
        lean.vlm,
        lean.stats,
        PolicyConfig(use_caches=False, always_decode=True),
    )
    obs = _observation(cfg)
    print(
        f"motus benchmark: config={preset} device={args.device} runs={args.runs} "
        f"warmup={args.warmup} steps={args.steps} A={cfg.action_chunk_size} "
        f"HxW={cfg.image_height}x{cfg.image_width} torch threads={torch.get_num_threads()}",
        flush=True,
    )
    results = {}
    for name, policy in (("lean", lean), ("official", official)):
        results[name] = run_path(policy, obs, args.runs, args.warmup, args.steps)
    print(format_table(results, args.steps))
    ratio = results["official"]["median_ms"] / results["lean"]["median_ms"]
    print(f"speed-up (official / lean, median): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
