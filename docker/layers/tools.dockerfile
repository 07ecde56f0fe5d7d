# Command-line tools of the full, python and node variants: those the skills
# call, and those Anthropic documents in its code-execution container
# (archives, bc, ripgrep, fd, sqlite3). Debian names fd `fdfind`; the skills
# and Claude call it fd.
RUN --mount=type=bind,from=apt-lists,source=/var/lib/apt/lists,target=/var/lib/apt/lists,rw \
    --mount=type=bind,source=scrub,target=/usr/local/bin/scrub \
    apt-get install -y --no-install-recommends \
        7zip bc ca-certificates curl fd-find git jq poppler-utils qpdf ripgrep sqlite3 \
        unrar-free unzip wget zip \
    && ln -s /usr/lib/cargo/bin/fd /usr/local/bin/fd \
    && find / -xdev -perm /6000 -type f -exec chmod a-s {} + \
    && scrub
