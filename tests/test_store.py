import os
import time
import wave

import numpy as np

from audio.store import AudioStore


def test_files_have_random_names_and_are_complete_wavs(tmp_path):
    store = AudioStore(tmp_path, max_age_s=60)
    tone = np.sin(np.linspace(0, 440 * 2 * np.pi, 16000)).astype(np.float32)
    first, second = store.save_wav(16000, tone), store.save_wav(16000, tone)
    assert first != second and first.parent == tmp_path
    assert first.name.startswith("reply-") and len(first.stem) > 20
    with wave.open(str(first)) as w:
        assert (w.getframerate(), w.getnframes(), w.getnchannels()) == (16000, 16000, 1)
    assert not list(tmp_path.glob("*.part"))


def test_old_files_are_deleted(tmp_path):
    store = AudioStore(tmp_path, max_age_s=60)
    old = store.save_wav(16000, np.zeros(100, dtype=np.float32))
    past = time.time() - 120
    os.utime(old, (past, past))
    fresh = store.save_wav(16000, np.zeros(100, dtype=np.float32))  # saving also sweeps expired files
    assert not old.exists() and fresh.exists()


def test_close_removes_an_owned_directory_and_only_our_files_elsewhere(tmp_path):
    owned = AudioStore(None, max_age_s=60)
    owned.save_wav(16000, np.zeros(10, dtype=np.float32))
    owned.close()
    assert not owned.root.exists()

    (tmp_path / "keep.txt").write_text("user data")
    shared = AudioStore(tmp_path, max_age_s=60)
    shared.save_wav(16000, np.zeros(10, dtype=np.float32))
    shared.close()
    assert (tmp_path / "keep.txt").exists() and not shared.files()


def test_downloads_keep_their_name_in_a_random_folder_and_expire(tmp_path):
    store = AudioStore(tmp_path, max_age_s=60)
    first, second = store.save_download("chat.md", "# hi"), store.save_download("chat.md", "# hi")
    assert first.name == second.name == "chat.md" and first.parent != second.parent
    assert first.read_text() == "# hi" and len(first.parent.name) > 20
    past = time.time() - 120
    os.utime(first.parent, (past, past))
    store.save_wav(16000, np.zeros(10, dtype=np.float32))
    assert not first.parent.exists() and second.exists()
    store.close()
    assert not second.exists() and list(tmp_path.iterdir()) == []
