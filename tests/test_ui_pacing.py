import numpy as np
import pytest

from audio.tts.base import SpeechChunk
from chatbot.turn import TurnUpdate

pytestmark = pytest.mark.slow  # imports gradio (~10 s)


def test_streamed_text_is_paced_but_speech_notices_and_the_end_go_out_at_once():
    from chatbot.ui import _paced

    chunk = SpeechChunk(22050, np.zeros(100, dtype=np.float32), "piper")
    updates = [TurnUpdate([{"role": "assistant", "content": "x" * i}], "thinking") for i in range(200)]
    updates[100] = TurnUpdate([], "thinking", speech=(chunk,))
    updates[150] = TurnUpdate([], "thinking", notice="edge-tts is unreachable")
    updates.append(TurnUpdate([], "done"))
    sent = list(_paced(iter(updates), interval_s=10.0))
    assert sent == [updates[0], updates[100], updates[150], updates[-1]]
    assert list(_paced(iter(updates), interval_s=0.0)) == updates  # 0: every update
