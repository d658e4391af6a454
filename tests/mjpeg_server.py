"""An HTTP MJPEG camera on loopback, serving JPEG-encoded frames of a real clip, for the URL source tests.

It replies to every GET with a `multipart/x-mixed-replace` stream, as many IP
cameras do. `stall_open_streams()` makes the streams open at that moment stop
sending while their sockets stay open (a camera whose encoder hung), and
`drop_open_streams()` closes them (a camera that rebooted). Streams opened
later are served normally.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

BOUNDARY = b"frame"


def encode_clip(path: Path, limit: int, quality: int = 80) -> list[bytes]:
    """Decode up to `limit` frames of a video and return them JPEG-encoded."""
    capture = cv2.VideoCapture(str(path))
    jpegs = []
    try:
        while len(jpegs) < limit:
            ok, image = capture.read()
            if not ok:
                break
            jpegs.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())
    finally:
        capture.release()
    if not jpegs:
        raise ValueError(f"{path} decoded no frames")
    return jpegs


class MjpegServer:
    """A threaded HTTP server on 127.0.0.1 that streams `jpegs` in a loop at `fps`."""

    def __init__(self, jpegs: list[bytes], fps: float = 30.0) -> None:
        self.jpegs = jpegs
        self.period_s = 1.0 / fps
        self.connections = 0
        self._generation = 0
        self._stalled_below = 0
        self._dropped_below = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="mjpeg-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/stream.mjpg"

    def __enter__(self) -> MjpegServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)

    def stall_open_streams(self) -> None:
        """Stop sending on every stream open now, keeping its socket open."""
        with self._lock:
            self._stalled_below = self._generation + 1

    def drop_open_streams(self) -> None:
        """Close every stream open now."""
        with self._lock:
            self._dropped_below = self._generation + 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
                with server._lock:
                    server._generation += 1
                    server.connections += 1
                    generation = server._generation
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
                self.end_headers()
                server._stream(self, generation)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
                return

        return Handler

    def _stream(self, handler: BaseHTTPRequestHandler, generation: int) -> None:
        index = 0
        while not self._stop.is_set():
            with self._lock:
                stalled = generation < self._stalled_below
                dropped = generation < self._dropped_below
            if dropped:
                return
            if stalled:
                self._stop.wait(self.period_s)
                continue
            jpeg = self.jpegs[index % len(self.jpegs)]
            index += 1
            part = b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg) + jpeg + b"\r\n"
            try:
                handler.wfile.write(part)
            except OSError:  # the client went away
                return
            time.sleep(self.period_s)
