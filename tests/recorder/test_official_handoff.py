"""Handing a recorded dataset to the official trainer (issue #16 §4), on real files.

A tiny UMT5 encoder (umt5-xxl's width 4096, 2 small layers) and the byte-level tiny tokenizer
are saved to disk as Hugging Face folders; ``motus-dataset embed`` / ``stats --export-official``
/ ``validate --official`` then run on datasets written by the real writer and recorder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from motus_recorder.cli import main
from motus_recorder.dataset import (
    OFFICIAL_STAT_FILE,
    TaskFolder,
    official_language_files,
    validate_report,
)
from motus_recorder.recorder import Recorder, RecorderConfig
from motus_recorder.writers import torch_io
from motus_recorder.writers.motus_format import MotusFormatWriter, WriterConfig
from tests.fakes.recordings import frame_at, image_at, qpos_at


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory) -> Path:
    """A random UMT5 encoder of width 4096 with the tiny byte-level tokenizer, on disk."""
    from motus_policy.model.encoders.tiny import tiny_t5_tokenizer, tiny_umt5

    d = tmp_path_factory.mktemp("umt5")
    tok = tiny_t5_tokenizer()
    torch.manual_seed(0)
    tiny_umt5(len(tok), d_model=torch_io.UMT5_WIDTH).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def _write(root: Path, profile, texts, n_frames=6, task="pick", variant="v1") -> Path:
    w = MotusFormatWriter(WriterConfig(root=str(root), task=task, variant=variant), profile)
    for text in texts:
        w.start_episode(text)
        for k in range(n_frames):
            w.add_frame(frame_at(profile, k))
        w.save_episode()
    w.close()
    return root / task / variant


def _reference_embeddings(t5_dir: Path, texts: list[str]) -> list[np.ndarray]:
    """What Wan's T5EncoderModel computes: padded to 512, masked, real-token rows, bf16."""
    from transformers import AutoTokenizer, UMT5EncoderModel

    tok = AutoTokenizer.from_pretrained(t5_dir)
    model = UMT5EncoderModel.from_pretrained(t5_dir, torch_dtype=torch.bfloat16).eval()
    out = []
    for text in texts:
        enc = tok([" ".join(text.split())], padding="max_length", max_length=512,
                  truncation=True, return_tensors="pt")  # fmt: skip
        with torch.no_grad():
            h = model(**enc).last_hidden_state
        out.append(h[0, : int(enc["attention_mask"].sum())].float().numpy())
    return out


def test_embed_writes_bf16_embeddings_where_the_official_loader_looks(
    tmp_path, small_profile, t5_dir, capsys
):
    root = tmp_path / "ds"
    variant = _write(root, small_profile, ["pick the cube", "pick  the cube ", "place it"])
    assert main(["embed", str(root), "--t5", str(t5_dir), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "3 embedding file(s) written (2 distinct instruction(s) encoded" in out

    found = official_language_files(variant)
    texts = ["pick the cube", "pick the cube", "place it"]
    refs = _reference_embeddings(t5_dir, texts)
    for i, text in enumerate(texts):
        lang, txt = found[str(i)]
        assert lang == variant / "instructions" / f"{i}.pt"
        assert txt == variant / "instructions" / f"{i}.txt"
        raw = torch.load(lang, map_location="cpu", weights_only=True)
        # byte-level tokenizer: one token per byte plus EOS
        assert raw.dtype == torch.bfloat16 and tuple(raw.shape) == (len(text) + 1, 4096)
        want = torch.from_numpy(refs[i]).to(torch.bfloat16)
        torch.testing.assert_close(raw, want, atol=0, rtol=0)
        meta = json.loads((variant / "meta" / f"{i}.json").read_text())
        assert meta["embedding_shape"] == [len(text) + 1, 4096]
    ep = TaskFolder(variant).read_episode(2)
    assert ep.embedding.shape == (9, 4096)
    assert not [p for p in variant.rglob("*.tmp")]

    assert main(["embed", str(root), "--t5", str(t5_dir), "--device", "cpu"]) == 0
    assert "0 embedding file(s) written" in capsys.readouterr().out  # already there: skipped


def test_embed_refuses_while_a_recorder_writes_and_names_a_missing_tokenizer(
    tmp_path, small_profile, t5_dir, capsys
):
    root = tmp_path / "ds"
    _write(root, small_profile, ["a"])
    w = MotusFormatWriter(WriterConfig(root=str(root), task="pick", variant="v1"), small_profile)
    try:
        assert main(["embed", str(root), "--t5", str(t5_dir), "--device", "cpu"]) == 1
        assert "a recorder is writing here" in capsys.readouterr().err
    finally:
        w.close()
    bare = tmp_path / "weights_only"
    bare.mkdir()
    (bare / "config.json").write_text((t5_dir / "config.json").read_text())
    assert main(["embed", str(root), "--t5", str(bare)]) == 2
    err = capsys.readouterr().err
    assert f"{bare}/tokenizer: expected the UMT5 tokenizer files" in err


def test_official_handoff_validate_export_and_stale_stats(tmp_path, small_profile, t5_dir, capsys):
    root = tmp_path / "ds"
    variant = _write(root, small_profile, ["pick the cube", "pick the cube"], n_frames=7)
    # before: plain validate is happy, the official check names every missing piece
    assert main(["validate", str(root)]) == 0
    capsys.readouterr()
    assert main(["validate", str(root), "--official", "aloha_agilex_2"]) == 1
    out = capsys.readouterr().out
    for i in (0, 1):
        assert f"{variant}/instructions/{i}.pt: missing UMT5 embedding" in out
    assert f"{root / OFFICIAL_STAT_FILE}: missing; run `motus-dataset stats" in out

    assert main(["embed", str(root), "--t5", str(t5_dir), "--device", "cpu"]) == 0
    # the official stats file of a Motus checkout: other entries must survive
    official = tmp_path / "Motus" / "data" / "utils" / "stat.json"
    official.parent.mkdir(parents=True)
    official.write_text(json.dumps({"aloha_agilex_1": {"min": [0.0] * 14, "max": [1.0] * 14}}))
    args = ["--official-stat", str(official)]
    assert main(["stats", str(root), "--export-official", "aloha_agilex_2", *args]) == 0
    data = json.loads(official.read_text())
    assert set(data) == {"aloha_agilex_1", "aloha_agilex_2"}
    q = np.stack([qpos_at(k) for k in range(7)])
    np.testing.assert_allclose(data["aloha_agilex_2"]["min"], q.min(axis=0))
    np.testing.assert_allclose(data["aloha_agilex_2"]["max"], q.max(axis=0))
    assert data["aloha_agilex_2"]["file_count"] == 2 and data["aloha_agilex_2"]["action_dim"] == 14
    capsys.readouterr()

    assert main(["validate", str(root), "--official", "aloha_agilex_2", *args]) == 0
    out = capsys.readouterr().out
    assert "OK: 2 episode(s) in 1 task folder(s)" in out and "official aloha_agilex_2" in out
    # the sim profile records at 25 Hz: a note, not an error
    assert "recorded at 25.0 Hz" in out and "spans 1.92 s instead of 1.60 s" in out

    # a later, wider episode makes the export stale
    w = MotusFormatWriter(WriterConfig(root=str(root), task="pick", variant="v1"), small_profile)
    w.start_episode("pick the cube")
    for k in range(7):
        f = frame_at(small_profile, k)
        f.qpos[3] = 1.0 if k == 3 else f.qpos[3]
        w.add_frame(f)
    w.save_episode()
    w.close()
    assert main(["embed", str(root), "--t5", str(t5_dir), "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["validate", str(root), "--official", "aloha_agilex_2", *args]) == 1
    assert "entry 'aloha_agilex_2' dim 3" in capsys.readouterr().out


def test_official_validate_rate_names_and_bad_embeddings(tmp_path, small_profile, t5_dir):
    root = tmp_path / "ds"
    variant = _write(root, small_profile, ["x", "y"])
    main(["embed", str(root), "--t5", str(t5_dir), "--device", "cpu"])
    main(["stats", str(root), "--export-official", "ac_one"])
    assert validate_report(root, official="ac_one").ok
    # an episode of a real-robot profile recorded at another rate than 30 Hz
    meta_path = variant / "meta" / "1.json"
    meta = json.loads(meta_path.read_text())
    meta.update(profile="aloha_agilex_2", normalization_key="aloha_agilex_2")
    meta_path.write_text(json.dumps(meta))
    # a file the official loader would read as an episode and ours would not
    (variant / "videos" / "0_retake.mp4").write_bytes((variant / "videos" / "0.mp4").read_bytes())
    (variant / "qpos" / "0_retake.pt").write_bytes((variant / "qpos" / "0.pt").read_bytes())
    torch_io.save_tensor(variant / "instructions" / "0.pt", np.zeros((3, 64)), "bfloat16")
    rep = validate_report(root, official="ac_one", decode=False)
    text = "\n".join(rep.problems)
    assert "recorded at 25.0 Hz with real-robot profile 'aloha_agilex_2'" in text
    assert f"{variant}/videos/0_retake.mp4: not a numeric episode name" in text
    assert f"{variant}/qpos/0_retake.pt: not a numeric episode name" in text
    assert f"{variant}/instructions/0.pt: expected [L, 4096], got [3, 64]" in text


def test_validate_of_a_folder_without_episodes_fails(tmp_path, small_profile, capsys):
    w = MotusFormatWriter(WriterConfig(root=str(tmp_path), task="pick"), small_profile)
    w.close()  # the task folder exists, no episode was ever saved
    assert main(["validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "no complete episode" in out and "INVALID" in out and "OK" not in out
    assert main(["validate", str(tmp_path / "nothing")]) == 1


def test_recorder_embeds_at_save_time_encoding_each_text_once(
    tmp_path, small_profile, small_profile_path, fake_clock, t5_dir, monkeypatch
):
    calls = []
    real_call = torch_io.UMT5Embedder.__call__

    def counting(self, text):
        calls.append(text)
        return real_call(self, text)

    monkeypatch.setattr(torch_io.UMT5Embedder, "__call__", counting)
    cfg = RecorderConfig(
        profile=str(small_profile_path), root=str(tmp_path), task="t", instruction="stack it",
        t5_path=str(t5_dir),
    )  # fmt: skip
    rec = Recorder(cfg, small_profile, fake_clock)
    try:
        for _ in range(2):
            assert rec.start()[0]
            for k in range(5):
                t = fake_clock()
                for i, name in enumerate(small_profile.camera_names):
                    rec.on_image(name, t, image_at(k, i))
                for arm, sl in (("left", slice(0, 7)), ("right", slice(7, 14))):
                    rec.on_joints(arm, t, qpos_at(k)[sl], source="command")
                    rec.on_joints(arm, t, qpos_at(k)[sl])
                fake_clock.advance(0.04)
                rec.tick()
            ok, msg = rec.stop()
            assert ok, msg
    finally:
        rec.close()
    assert calls == ["stack it"]
    variant = tmp_path / "t" / "default"
    for i in (0, 1):
        e = torch.load(variant / "instructions" / f"{i}.pt", weights_only=True)
        assert e.dtype == torch.bfloat16 and tuple(e.shape) == (len("stack it") + 1, 4096)
    rep = validate_report(tmp_path, official="aloha_agilex_2")
    assert [p for p in rep.problems if "missing UMT5" in p] == []
