# Command-line tools of the full, python and node variants.
RUN --mount=type=bind,from=apt-lists,source=/var/lib/apt/lists,target=/var/lib/apt/lists,rw \
    --mount=type=bind,source=scrub,target=/usr/local/bin/scrub \
    apt-get install -y --no-install-recommends \
        ca-certificates curl git jq poppler-utils qpdf wget \
    && find / -xdev -perm /6000 -type f -exec chmod a-s {} + \
    && scrub
