# Command-line tools of the full, python and node variants.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates curl git jq poppler-utils qpdf wget \
    && rm -rf /var/lib/apt/lists/* \
    && find / -xdev -perm /6000 -type f -exec chmod a-s {} +
