"""An RTSP camera on loopback for the URL source tests, run with Debian's python3 and GStreamer's RTSP server.

It serves a video file's H.264 track unchanged (no re-encoding) at
rtsp://127.0.0.1:PORT/clip, as an IP camera serves its encoder's output.
Each client gets the clip from its start. It prints "ready" on stdout once
it listens.

This script needs Debian's python3-gi and gir1.2-gst-rtsp-server-1.0 with
gstreamer1.0-plugins-good and -bad, which `.ci/run` installs. It is not
imported by the tests: they start it as a child process with /usr/bin/python3,
because the test environment's Python cannot load those bindings.
"""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clip", required=True, help="an MP4 file with an H.264 video track")
    args = parser.parse_args()

    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    location = args.clip.replace('"', '\\"')
    factory.set_launch(
        f'( filesrc location="{location}" ! qtdemux ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )'
    )
    factory.set_shared(False)
    server.get_mount_points().add_factory("/clip", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1

    print("ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
