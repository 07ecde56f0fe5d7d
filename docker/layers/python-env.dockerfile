# The Python packages, assembled on the build machine's own architecture from
# the wheels of the target's: pip never runs under emulation, and a venv is
# portable between the two because both have Debian's python3 at /usr/bin.
# Locked with hashes, no pip cache; the CA bundle secret lets pip through a
# TLS-intercepting proxy without entering the image. The lock holds every
# dependency (uv compiled it), so pip installs it as it is (--no-deps): pycairo,
# which reportlab's cairo renderer needs, is Debian's python3-cairo, linked into
# the venv by layers/python-packages (no pycairo wheel exists for Linux, and
# Debian's is built against the very cairo the image carries, needing no
# compiler here and no cross-build for arm64). Of no use in a sandbox
# without network, and left out (about 20 MB compressed): the packages' own
# test suites, pyarrow's C++ headers, its Flight RPC and S3 file system
# (pyarrow.flight and pyarrow.fs.S3FileSystem do not import), and
# onnxruntime's model-conversion tools (magika, for markitdown, only infers).
# The full variant's browser packages (requirements-browser.lock) go to
# /opt/browser, laid out as the venv, for the full Dockerfile to add; their
# driver runs on the image's Node.js instead of the 146 MB one the wheel bundles.
# Bytecode is compiled once everything sits at its final path, keyed by the
# source's hash instead of its time: a timestamped .pyc differs from build to
# build, and pip's own records the random directory it unpacked into. The hash
# is not checked at import: the root is read-only, so sources cannot change.
FROM --platform=$BUILDPLATFORM ${BASE} AS python-env
ARG DEBIAN_FRONTEND=noninteractive
ARG TARGETARCH
ARG BASE_EPOCH
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-venv \
    && rm -rf /var/lib/apt/lists/*
# $platforms is a list of options: it is split on purpose.
# hadolint ignore=SC2086
RUN --mount=type=secret,id=ca-bundle \
    --mount=type=bind,source=with-ca-bundle,target=/usr/local/bin/with-ca-bundle \
    --mount=type=bind,source=requirements.lock,target=/tmp/requirements.lock \
    --mount=type=bind,source=requirements-browser.lock,target=/tmp/requirements-browser.lock \
    --mount=type=bind,source=python,target=/tmp/python \
    --mount=type=bind,source=scrub,target=/usr/local/bin/scrub \
    case "$TARGETARCH" in amd64) arch=x86_64 ;; arm64) arch=aarch64 ;; *) arch="$TARGETARCH" ;; esac \
    && platforms="--platform manylinux2014_$arch" \
    && for glibc in 17 24 26 27 28 31 34 35 36 38 39 40 41; do \
        platforms="$platforms --platform manylinux_2_${glibc}_$arch"; \
    done \
    && python3 -m venv /opt/venv \
    && site=$(/opt/venv/bin/python3 -c 'import sysconfig; print(sysconfig.get_path("purelib"))') \
    && browser_site="/opt/browser${site#/opt/venv}" \
    && install() { with-ca-bundle /opt/venv/bin/pip install --no-cache-dir --no-compile \
        --require-hashes --no-deps --only-binary=:all: $platforms --implementation cp \
        --python-version "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
        --abi "cp$(python3 -c 'import sys; print("%d%d" % sys.version_info[:2])')" \
        --abi abi3 --abi none --target "$1" -r "$2"; } \
    && install "$site" /tmp/requirements.lock \
    && install "$browser_site" /tmp/requirements-browser.lock \
    && cp /tmp/python/sandbox_startup.py /tmp/python/sandbox-startup.pth "$site/" \
    && mv "$site"/bin/* /opt/venv/bin/ \
    && rmdir "$site/bin" \
    && mkdir /opt/browser/bin \
    && mv "$browser_site"/bin/* /opt/browser/bin/ \
    && rmdir "$browser_site/bin" \
    && ln -sf /usr/bin/node "$browser_site/playwright/driver/node" \
    && find "$site" -mindepth 2 -depth -type d -name tests -exec rm -rf {} + \
    && rm -rf "$site/pyarrow/include" "$site"/pyarrow/*flight* "$site"/pyarrow/*s3* \
        "$site"/pyarrow/_pyarrow_cpp_tests* "$site"/onnxruntime/tools \
        "$site"/onnxruntime/transformers "$site"/onnxruntime/quantization \
    && python3 -m compileall -q -f -j 0 --invalidation-mode unchecked-hash /opt/venv/lib \
    && python3 -m compileall -q -f -j 0 --invalidation-mode unchecked-hash \
        -s /opt/browser -p /opt/venv /opt/browser/lib \
    && scrub
