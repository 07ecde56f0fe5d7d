# What the document skills run besides Python: LibreOffice without a GUI
# (Writer, Calc, Impress: conversion to PDF, formula recalculation), pandoc,
# tesseract with English data, Java for tabula-py, Pango for weasyprint.
# Java's postinst links its man page and fails where slim images have no man1.
# Headless LibreOffice shows neither its clip-art gallery nor the dark and SVG
# icon sets: they are left out (15 MB compressed); the one icon set it loads
# at start stays. The fontconfig cache is built here, so a read-only root does
# not rebuild it on every first use; fontconfig trusts it while each font
# directory keeps the time the cache recorded, so the directories get a fixed
# one first, older than the base's creation time docker/scrub clamps times to,
# and the caches that fontconfig's package trigger wrote with the time of the
# build are made again (-f).
RUN --mount=type=bind,from=apt-lists,source=/var/lib/apt/lists,target=/var/lib/apt/lists,rw \
    --mount=type=bind,source=scrub,target=/usr/local/bin/scrub \
    mkdir -p /usr/share/man/man1 \
    && apt-get install -y --no-install-recommends \
        default-jre-headless libpango-1.0-0 libpangoft2-1.0-0 python3-venv \
        libreoffice-calc-nogui libreoffice-impress-nogui libreoffice-writer-nogui \
        fontconfig fonts-liberation pandoc tesseract-ocr tesseract-ocr-eng \
    && rm -rf /usr/lib/libreoffice/share/gallery/* \
        /usr/share/libreoffice/share/config/images_*_dark* \
        /usr/share/libreoffice/share/config/images_*_svg.zip \
        /usr/lib/libreoffice/share/config/images_*_dark* \
        /usr/lib/libreoffice/share/config/images_*_svg.zip \
    && find /usr/share/fonts -type d -exec touch -d @0 {} + \
    && fc-cache -s -f \
    && find / -xdev -perm /6000 -type f -exec chmod a-s {} + \
    && scrub
