#!/usr/bin/env python3
"""Deployment zip size of each handler, packaged the way Lambda takes it (one `bootstrap`,
deflate level 9), against the 4 MiB budget. Build each handler on its own first, as `sam build` and
the cold-start run do (a joint build unifies features and links more):
    cargo build --release -p valine-discord --bin discord-handler
    cargo build --release -p valine-github --bin github-handler"""
import io
import os
import sys
import zipfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
LIMIT = 4 * 1024 * 1024

failed = False
for name in ("discord-handler", "github-handler"):
    path = os.path.join(TARGET, "release", name)
    if not os.path.exists(path):
        sys.exit(f"{path} is missing: build it first (see the top of this script)")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        with open(path, "rb") as f:
            z.writestr(info, f.read(), zipfile.ZIP_DEFLATED, 9)
    size = len(buf.getvalue())
    binary = os.path.getsize(path)
    ok = size <= LIMIT
    failed |= not ok
    print(f"| {name} | {binary / 2**20:.2f} MiB | {size / 2**20:.2f} MiB | {'ok' if ok else 'OVER 4 MiB'} |")
sys.exit(1 if failed else 0)
