"""Camera sources read with OpenCV: V4L2 devices, files, RTSP/HTTP URLs and GStreamer pipelines."""
