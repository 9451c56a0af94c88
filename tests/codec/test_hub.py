"""Codec.from_pretrained / push_to_hub through huggingface_hub, with the network replaced by a folder.

The Hub client is swapped for a fake that stores uploads in a local directory and serves downloads
from it, so the ordinary flow (create_repo, upload_folder, snapshot_download) runs offline.
"""
import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch

from codec.api import Codec
from core.checkpoint import CONFIG_FILE, WEIGHTS_FILE
from tests.codec.helpers_inference import noise, one_thread, tiny_codec  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


class MissingRepo(OSError):
    """What the fake raises for an unknown repo (the real client raises RepositoryNotFoundError)."""


class FakeHub:
    """Repos as folders under `root`; records the calls the codec makes."""

    def __init__(self, root: Path):
        self.root, self.calls = root, []

    def api(self, token=None):
        hub = self

        class Api:
            def create_repo(self, repo_id, private=True, exist_ok=False):
                hub.calls.append(("create_repo", repo_id, private))
                (hub.root / repo_id).mkdir(parents=True, exist_ok=exist_ok)

            def upload_folder(self, repo_id, folder_path, commit_message=""):
                hub.calls.append(("upload_folder", repo_id, sorted(p.name for p in Path(folder_path).iterdir())))
                shutil.copytree(folder_path, hub.root / repo_id, dirs_exist_ok=True)
                return f"https://hub.invalid/{repo_id}"
        return Api()

    def snapshot_download(self, repo_id, revision=None, cache_dir=None, allow_patterns=None):
        self.calls.append(("snapshot_download", repo_id, tuple(allow_patterns or ())))
        src = self.root / repo_id
        if not src.is_dir():
            raise MissingRepo(f"{repo_id} not found")
        dst = Path(cache_dir or self.root / "cache") / repo_id.replace("/", "--")
        shutil.copytree(src, dst, dirs_exist_ok=True)
        return str(dst)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    fake = FakeHub(tmp_path / "hub")
    monkeypatch.setattr(huggingface_hub, "HfApi", fake.api)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake.snapshot_download)
    return fake


def test_push_then_from_pretrained_gives_identical_codes(hub):
    codec = tiny_codec(seed=3)
    url = codec.push_to_hub("me/ndvq-tiny")
    assert url.endswith("me/ndvq-tiny")
    uploaded = [c for c in hub.calls if c[0] == "upload_folder"]
    assert uploaded == [("upload_folder", "me/ndvq-tiny", sorted([CONFIG_FILE, WEIGHTS_FILE]))]
    assert ("create_repo", "me/ndvq-tiny", True) in hub.calls          # private unless asked otherwise

    loaded = Codec.from_pretrained("me/ndvq-tiny")
    assert ("snapshot_download", "me/ndvq-tiny", (CONFIG_FILE, WEIGHTS_FILE)) in hub.calls
    x = noise(16000 * 2, seed=5)
    a, b = codec.encode(x, 16000), loaded.encode(x, 16000)
    assert torch.equal(a.codes, b.codes)
    assert torch.equal(codec.decode(a), loaded.decode(b))
    assert loaded.checkpoint_sha256 == codec.checkpoint_sha256      # set by save_pretrained during push


def test_missing_repo_and_bad_ids_are_clear_errors(hub, tmp_path):
    with pytest.raises(MissingRepo):
        Codec.from_pretrained("me/absent")
    for bad in ("not/a/hub/id", str(tmp_path / "nowhere"), "./relative"):
        with pytest.raises(FileNotFoundError, match="codec: .* is not a directory .* nor a Hub id"):
            Codec.from_pretrained(bad)
    assert not [c for c in hub.calls if c[0] == "snapshot_download" and c[1] != "me/absent"]
