# Debian's package lists for the target architecture, fetched once on the
# build machine's own architecture and kept uncompressed: under QEMU each
# `apt-get update` took about two and a half minutes. Every apt-get install
# below reads them through a mount, so no list enters an image.
FROM --platform=$BUILDPLATFORM ${BASE} AS apt-lists
ARG TARGETARCH
RUN apt-get -o APT::Architecture="$TARGETARCH" -o APT::Architectures="$TARGETARCH" \
    -o Acquire::GzipIndexes=false update
