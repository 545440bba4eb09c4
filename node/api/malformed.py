"""Answers to HTTP the server cannot parse, in the API's documented error shape.

aiohttp answers a request line, header or framing it cannot parse itself, before any route or
middleware runs, with a plain-text 400 that quotes the offending bytes back. A client that reads
``{"error": {"code", "message"}}`` everywhere else would get neither, and the quoted bytes can
carry terminal escapes. This module swaps in a request handler whose error reply is the JSON shape
with the stable code ``bad_http`` and a fixed message per kind of fault (never the request's bytes).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

BAD_HTTP = "bad_http"

# Most specific first: LineTooLong and the header faults subclass BadHttpMessage.
_FAULTS: tuple[tuple[type[BaseException], str], ...] = (
    (http_exceptions.LineTooLong, "a request line or header is too long"),
    (http_exceptions.BadHttpMethod, "the request line is not HTTP (bad method)"),
    (http_exceptions.BadStatusLine, "the request line is malformed"),
    (http_exceptions.InvalidHeader, "a header is malformed"),
    (http_exceptions.ContentLengthError, "the body does not match its Content-Length"),
    (http_exceptions.TransferEncodingError, "the chunked body is malformed"),
    (http_exceptions.BadHttpMessage, "the request is malformed HTTP"),
)


def describe(exc: BaseException | None) -> str:
    """A fixed sentence for the kind of parse failure ``exc`` is (never its text)."""
    for kind, sentence in _FAULTS:
        if isinstance(exc, kind):
            return sentence
    return "the request is malformed HTTP"


class JsonErrorRequestHandler(RequestHandler):
    """aiohttp's connection handler, with parse failures answered as ``{"error": ...}``."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:  # a fault in the server, not the request: aiohttp logs and answers it
            return super().handle_error(request, status, exc, message)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send the error")
        body = json.dumps({"error": {"code": BAD_HTTP, "message": describe(exc)}})
        resp = web.Response(status=status, text=body, content_type="application/json")
        resp.force_close()
        return resp


class JsonErrorServer(web.Server):
    """The low-level server, making connections with ``JsonErrorRequestHandler``."""

    def __call__(self) -> RequestHandler:
        return JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class ApiRunner(web.AppRunner):
    """``AppRunner`` whose server answers unparseable HTTP in the API's error shape."""

    async def _make_server(self) -> web.Server:
        server: Any = await super()._make_server()
        server.__class__ = JsonErrorServer  # same state, one method differs
        return server  # type: ignore[no-any-return]
