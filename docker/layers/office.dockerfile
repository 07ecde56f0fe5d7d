# What the document skills run besides Python: LibreOffice without a GUI
# (Writer, Calc, Impress: conversion to PDF, formula recalculation), pandoc,
# tesseract with English data, Java for tabula-py (from layers/java, with the
# font, colour and image libraries its AWT classes link), Pango for weasyprint,
# cairo's Python binding for reportlab's renderer (see layers/python-env), and
# the fonts the theme and brand skills name: FreeSans and FreeSerif from
# Debian, Poppins and Lora from layers/fonts.
# Headless LibreOffice shows neither its clip-art gallery nor the dark and SVG
# icon sets: they are left out (15 MB compressed); the one icon set it loads
# at start stays. The fontconfig cache is built here, so a read-only root does
# not rebuild it on every first use; fontconfig trusts it while each font
# directory keeps the time the cache recorded, so the directories get a fixed
# one first, older than the base's creation time docker/scrub clamps times to,
# and the caches that fontconfig's package trigger wrote with the time of the
# build are made again (-f).
RUN --mount=type=bind,from=apt-lists,source=/var/lib/apt/lists,target=/var/lib/apt/lists,rw \
    --mount=type=bind,from=fonts,source=/fonts,target=/tmp/fonts \
    --mount=type=bind,from=java,source=/opt/java,target=/tmp/java \
    --mount=type=bind,source=scrub,target=/usr/local/bin/scrub \
    apt-get install -y --no-install-recommends \
        libfreetype6 libharfbuzz0b libjpeg62-turbo liblcms2-2 \
        libpango-1.0-0 libpangoft2-1.0-0 python3-venv \
        libreoffice-calc-nogui libreoffice-impress-nogui libreoffice-writer-nogui \
        fontconfig fonts-freefont-ttf fonts-liberation pandoc python3-cairo \
        tesseract-ocr tesseract-ocr-eng \
    && rm -rf /usr/lib/libreoffice/share/gallery/* \
        /usr/share/libreoffice/share/config/images_*_dark* \
        /usr/share/libreoffice/share/config/images_*_svg.zip \
        /usr/lib/libreoffice/share/config/images_*_dark* \
        /usr/lib/libreoffice/share/config/images_*_svg.zip \
    && cp -a /tmp/java /opt/java \
    && ln -s /opt/java/bin/java /usr/local/bin/java \
    && mkdir -p /usr/local/share/fonts \
    && cp -r /tmp/fonts/. /usr/local/share/fonts/ \
    && find /usr/share/fonts /usr/local/share/fonts -type d -exec touch -d @0 {} + \
    && fc-cache -s -f \
    && find / -xdev -perm /6000 -type f -exec chmod a-s {} + \
    && scrub
