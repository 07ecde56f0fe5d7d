FROM ${BASE}
ARG DEBIAN_FRONTEND=noninteractive
# The base's creation time: docker/scrub gives it to every file a step writes.
ARG BASE_EPOCH

# The root is read-only under the executor and /tmp its tmpfs: HOME and every
# cache live there, so each tool that writes a profile or a cache on first use
# (LibreOffice, fontconfig, matplotlib, npm, tesseract) finds a writable place.
ENV HOME=/tmp \
    PYTHONUNBUFFERED=1 \
    NODE_ENV=production \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_CONFIG_HOME=/tmp/.config \
    MPLCONFIGDIR=/tmp/.cache/matplotlib \
    NPM_CONFIG_CACHE=/tmp/.cache/npm \
    NPM_CONFIG_UPDATE_NOTIFIER=false

# Every variant: the executor runs bash, edits files with python3 -c, and
# works as uid 1000, whose home is the tmpfs. No setuid/setgid programs:
# nothing here needs them. The account's password-change day is left empty
# rather than the day of the build (the account has no password).
RUN --mount=type=bind,from=apt-lists,source=/var/lib/apt/lists,target=/var/lib/apt/lists,rw \
    --mount=type=bind,source=scrub,target=/usr/local/bin/scrub \
    apt-get install -y --no-install-recommends bash python3 \
    && groupadd --gid 1000 sandbox \
    && useradd --uid 1000 --gid 1000 --no-create-home --home-dir /tmp --shell /bin/bash sandbox \
    && mkdir /workspace \
    && chown sandbox:sandbox /workspace \
    && sed -i -E 's/^(sandbox:[^:]*):[0-9]+:/\1::/' /etc/shadow \
    && find / -xdev -perm /6000 -type f -exec chmod a-s {} + \
    && scrub
