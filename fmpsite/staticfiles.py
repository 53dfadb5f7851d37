"""Static files from the Python process: WhiteNoise, made at home under ASGI.

``make scaled`` and real deployments put nginx in front, which serves ``/static/``
itself; a single daphne behind any other proxy still needs its CSS and JS with
DEBUG off, which is what WhiteNoise is for. Two small adaptations:

- ``StaticFilesMiddleware``: WhiteNoise's middleware is sync-only, so under daphne
  Django would run the whole middleware chain of every request in a thread, and
  stream files through a sync iterator (with a warning per file). In async mode
  this subclass serves from the same lookup table with a file iterator read off
  the event loop. In DEBUG (autorefresh) WhiteNoise rejects any non-canonical
  path, so ``/static/%2e%2e/...`` is a plain 404 (it was a 500 that logged
  absolute paths under Django's static handler).
- ``ManifestStaticFilesStorage``: WhiteNoise's compressed, hashed storage that
  also rewrites ES module imports (``import ... from "./price-stream.js"``) to
  the hashed names, so a cached-forever module never imports a stale one.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from typing import Any, BinaryIO

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware
from whitenoise.storage import CompressedManifestStaticFilesStorage

CHUNK_BYTES = 64 * 1024


async def _read_chunks(file: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
            yield chunk
    finally:
        file.close()


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise's middleware, async under ASGI, sync under the test client."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[..., Any] | None = None, **kwargs: Any):
        super().__init__(get_response, **kwargs)
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def add_files(self, root: str, prefix: str | None = None) -> None:
        # With finders on, a STATIC_ROOT nobody collected into is not worth a
        # warning at every start (whitenoise warns "No directory at").
        if self.autorefresh or os.path.isdir(root) or not self.use_finders:
            super().add_files(root, prefix)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if self.autorefresh:
            static_file = await asyncio.to_thread(self.find_file, request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is None:
            return await self.get_response(request)
        response = static_file.get_response(request.method, request.META)
        if response.file is not None:
            http_response: HttpResponse = StreamingHttpResponse(
                _read_chunks(response.file), status=int(response.status)
            )
        else:
            http_response = HttpResponse(status=int(response.status))
        del http_response["Content-Type"]
        for key, value in response.headers:
            http_response[key] = value
        return http_response


class ManifestStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Hashed and gzip/brotli-compressed files, ES module imports rewritten."""

    support_js_module_import_aggregation = True
