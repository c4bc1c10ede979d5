"""Damaged checkpoint folders give errors that name the file (issue #14, offline tools)."""

from __future__ import annotations

import shutil

import pytest

from motus_policy.backends.motus import MotusBackend
from motus_policy.model.policy import MotusPolicy, build_tiny_policy
from motus_recorder.profile import load_profile


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return build_tiny_policy(seed=0).save_pretrained(tmp_path_factory.mktemp("ckpt") / "p")


def _copy(saved, tmp_path):
    return shutil.copytree(saved, tmp_path / "copy")


def test_truncated_safetensors_names_the_file(saved, tmp_path):
    d = _copy(saved, tmp_path)
    w = d / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"model\.safetensors: cannot be read .*truncated"):
        MotusPolicy.from_pretrained(d)


def test_truncated_config_json_names_the_file_also_before_loading(saved, tmp_path):
    d = _copy(saved, tmp_path)
    c = d / "config.json"
    c.write_text(c.read_text()[:100])
    with pytest.raises(ValueError, match=r"config\.json: not valid JSON .*truncated or corrupt"):
        MotusPolicy.from_pretrained(d)
    backend = MotusBackend(load_profile("aloha_sim"), str(d))
    with pytest.raises(ValueError, match=r"config\.json: not valid JSON"):
        _ = backend.chunk_size  # read before loading by the runtime


def test_missing_tokenizer_folder_is_named_not_a_repo_id(saved, tmp_path):
    d = _copy(saved, tmp_path)
    shutil.rmtree(d / "tokenizer_t5")
    with pytest.raises(FileNotFoundError, match=r"tokenizer_t5: missing T5 tokenizer folder"):
        MotusPolicy.from_pretrained(d)


def test_truncated_stats_json_names_the_file(saved, tmp_path):
    d = _copy(saved, tmp_path)
    (d / "stats.json").write_text('{"default": {"min": [0.0, ')
    with pytest.raises(ValueError, match=r"stats\.json: not valid JSON"):
        MotusPolicy.from_pretrained(d)
