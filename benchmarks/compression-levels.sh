#!/usr/bin/env bash
# What each zstd level costs and saves on the default variant's layers, against gzip.
#
# BuildKit reuses a layer it already holds in the asked-for compression whatever the
# level (moby/buildkit#5458), so the levels cannot be compared by exporting the built
# image again. Instead each layer of full (host platform, exported once as gzip) is
# unpacked to a tarball and COPY'd into a scratch image, which is built without cache
# once per setting: every blob is compressed afresh, by BuildKit itself.
#
# Usage: benchmarks/compression-levels.sh [level ...]   (default: 3 7 12 19)
# Needs the warm engine of `invoke build --variant full`, python3, zstd and gzip; prints
# a Markdown table (size, build and export time, decompression time with zstd -d / gzip -d).
set -euo pipefail

levels=("${@:-3 7 12 19}")
read -r -a levels <<<"${levels[*]}"
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/conjure-levels-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$root"

echo "exporting full's layers once, as gzip" >&2
CONJURE_BASE=${CONJURE_BASE:-local} python3 -m invoke build --variant full --no-sbom \
  --compression gzip --progress quiet >/dev/null
docker image save --output "$work/full.tar" "$(python3 -c '
from conjure_sandbox.config import Settings
from conjure_sandbox.version import package_version
print(f"{Settings.from_env().image}:{package_version()}")')"
mkdir "$work/context"
python3 - "$work/full.tar" "$work/context" <<'PY'
import gzip, json, shutil, sys, tarfile
from pathlib import Path

saved, context = tarfile.open(sys.argv[1]), Path(sys.argv[2])
def blob(digest):
    return saved.extractfile("blobs/sha256/" + digest.removeprefix("sha256:"))
root = json.load(blob(json.load(saved.extractfile("index.json"))["manifests"][0]["digest"]))
entries = [m for m in root.get("manifests", [root]) if m.get("platform", {}).get("os") != "unknown"]
manifest = json.load(blob(entries[0]["digest"])) if "manifests" in root else root
lines = ["FROM scratch"]
for n, layer in enumerate(manifest["layers"]):
    with gzip.open(blob(layer["digest"])) as src, (context / f"layer{n}.tar").open("wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    lines.append(f"COPY layer{n}.tar /layer{n}.tar")
(context / "Dockerfile").write_text("\n".join(lines) + "\n")
PY
rm "$work/full.tar"

echo "| compression | MB | x gzip | build + export | decompress |"
echo "|---|---|---|---|---|"
gzip_bytes=""
for setting in gzip "${levels[@]/#/zstd:}"; do
  name=${setting%%:*}
  options="compression=$name,force-compression=true"
  [[ $name == zstd ]] && options+=",compression-level=${setting#*:}"
  start=$(date +%s.%N)
  docker buildx build --no-cache --provenance false --progress quiet \
    --output "type=oci,dest=$work/out.tar,$options" "$work/context" >/dev/null
  seconds=$(echo "$(date +%s.%N) - $start" | bc)
  rm -rf "$work/out" && mkdir "$work/out" && tar -xf "$work/out.tar" -C "$work/out"
  rm "$work/out.tar"
  bytes=0
  start=$(date +%s.%N)
  for layer in $(python3 -c '
import json, sys
out = sys.argv[1]
index = json.load(open(f"{out}/index.json"))
digest = index["manifests"][0]["digest"].removeprefix("sha256:")
for layer in json.load(open(f"{out}/blobs/sha256/{digest}"))["layers"]:
    print(layer["digest"].removeprefix("sha256:"))' "$work/out"); do
    file="$work/out/blobs/sha256/$layer"
    bytes=$((bytes + $(stat -c %s "$file")))
    if [[ $name == zstd ]]; then zstd -dcq "$file" >/dev/null; else gzip -dc "$file" >/dev/null; fi
  done
  decompress=$(echo "$(date +%s.%N) - $start" | bc)
  gzip_bytes=${gzip_bytes:-$bytes}
  printf '| %s | %.1f | %.2fx | %.1f s | %.2f s |\n' "${setting/:/ level }" \
    "$(echo "$bytes / 1000000" | bc -l)" "$(echo "$bytes / $gzip_bytes" | bc -l)" \
    "$seconds" "$decompress"
done
