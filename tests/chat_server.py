"""A tiny OpenAI-compatible chat-completions server on 127.0.0.1 for the tool-calling protocol: it streams
server-sent events as vLLM and llama.cpp do, and its "model" follows a script instead of thinking.

- Offered `tools` and last spoken to by the user: it streams a call of `call_tool` with `call_arguments`, the
  arguments JSON in several fragments, and finish_reason "tool_calls".
- Last message a `tool` result, or a user message carrying facts (the parser's path): it answers with the
  facts' "Now:" line, so a test sees that the numbers it says came from the tool.
- `refuse_tools`: any request with `tools` gets HTTP 400, as llama.cpp's server without --jinja answers.
- `answer`: when set, the text every answer is (a test of what the page does with a model's Markdown).
- `ignore_tools`: `tools` are taken and never called: it answers from nothing, as llama.cpp's server with
  `--chat_format chatml` does ("It is sunny and 25 degrees in Paris").
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "scripted"


class ChatServer:
    def __init__(self):
        self.refuse_tools = False
        self.ignore_tools = False
        self.answer = ""
        self.call_tool = "get_weather"
        self.call_arguments = '{"place": "Paris", "when": "now"}'
        self.bodies: list[dict] = []  # every chat request, in order
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                outer._json(self, 200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                if outer.refuse_tools and "tools" in body:
                    outer._json(self, 400, {"error": {"code": 400, "type": "invalid_request_error",
                                                      "message": "tools param requires --jinja flag"}})
                    return
                last = body["messages"][-1]
                if outer.answer:
                    outer._stream(self, outer._words_chunks(outer.answer))
                elif "tools" in body and last["role"] == "user" and outer.ignore_tools:
                    outer._stream(self, outer._words_chunks("It is sunny and 25 degrees in Paris."))
                elif "tools" in body and last["role"] == "user":
                    outer._stream(self, outer._tool_call_chunks())
                else:
                    outer._stream(self, outer._answer_chunks(str(last.get("content") or "")))

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> "ChatServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _tool_call_chunks(self) -> list[dict]:
        args = self.call_arguments
        pieces = [args[i:i + 9] for i in range(0, len(args), 9)]
        first = {"index": 0, "id": "call_abc123", "type": "function",
                 "function": {"name": self.call_tool, "arguments": ""}}
        deltas = [{"role": "assistant", "content": None, "tool_calls": [first]}]
        deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": piece}}]} for piece in pieces]
        return [_chunk(d) for d in deltas] + [_chunk({}, finish="tool_calls")]

    def _answer_chunks(self, facts: str) -> list[dict]:
        now = next((line for line in facts.splitlines() if line.startswith("Now:")), "I have no facts.")
        return self._words_chunks(f"Right now in Paris: {now.removeprefix('Now: ')}")

    @staticmethod
    def _words_chunks(text: str) -> list[dict]:
        words = text.split(" ")
        deltas = [{"role": "assistant", "content": ""}] + [{"content": w + " "} for w in words]
        return [_chunk(d) for d in deltas] + [_chunk({}, finish="stop")]

    @staticmethod
    def _json(handler: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def _stream(handler: BaseHTTPRequestHandler, chunks: list[dict]) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Connection", "close")
        handler.end_headers()
        for chunk in chunks:
            handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            handler.wfile.flush()
        handler.wfile.write(b"data: [DONE]\n\n")
        handler.close_connection = True


def _chunk(delta: dict, finish: str | None = None) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1764633600, "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
