"""Bounds on what one HTTP request may carry (issue 23, "request bodies"): Gradio reads a JSON body whole before
anything looks at it, so one 100 MB POST cost the server +225 MB. `BodyLimit` is an ASGI middleware that answers
413 to a body over its route's cap before the app reads it (by its Content-Length) or as soon as the bytes sent
pass it (a body without a length: chunked). Every route but uploads may carry `server.max_request_kb`; uploads
(`/upload` routes, whose size Gradio checks itself against `server.max_upload_mb`) a few times that.
"""

from __future__ import annotations

import logging

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

UPLOAD_SUFFIXES = ("/upload", "/upload/")


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int, max_upload_bytes: int):
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes

    def cap(self, path: str) -> int:
        return self.max_upload_bytes if path.endswith(UPLOAD_SUFFIXES) else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.cap(scope.get("path", ""))
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > cap):
            await self._refuse(scope, receive, send, cap)
            return
        received, exceeded, started = 0, False, False

        async def counted() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:  # the app hears the client go away, and reads no more
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # the app's own answer to a body cut short is replaced by the 413 below
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._refuse(scope, receive, send, cap)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        log.warning("refused a request body over %d KB for %s", cap // 1024, scope.get("path", ""))
        response = PlainTextResponse(f"The request is too large: at most {cap // 1024} KB.", status_code=413,
                                     headers={"Connection": "close"})
        await response(scope, receive, send)
