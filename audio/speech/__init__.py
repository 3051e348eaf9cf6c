"""The reply's way to the ear: cut streamed text into pieces, clean them for speech, speak them in a thread."""
