#!/usr/bin/env bash
# Installs what the media tests need on a fresh Debian machine (as root):
# ffmpeg and ffprobe (publishers, encoders, probes), srt-tools, and Debian's
# Chromium (driven by playwright-core to play HLS and DASH with hls.js and
# dash.js), OBS Studio and Xvfb (OBS publishing under a virtual display,
# driven over obs-websocket). Idempotent: installs only what is missing.
set -euo pipefail

missing=()
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v srt-live-transmit >/dev/null || missing+=(srt-tools)
command -v chromium >/dev/null || missing+=(chromium)
command -v obs >/dev/null || missing+=(obs-studio)
command -v Xvfb >/dev/null || missing+=(xvfb)
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "media tests need: ${missing[*]} (run as root, or apt-get install them)" >&2
    exit 1
  fi
  echo "installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
ffmpeg -hide_banner -version | head -1 >&2
