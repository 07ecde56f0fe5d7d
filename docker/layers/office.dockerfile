# What the document skills run besides Python: LibreOffice without a GUI
# (Writer, Calc, Impress: conversion to PDF, formula recalculation), pandoc,
# tesseract with English data, Java for tabula-py, Pango for weasyprint.
# Java's postinst links its man page and fails where slim images have no man1.
# The fontconfig cache is built here, so a read-only root does not rebuild it
# on every first use.
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        default-jre-headless libpango-1.0-0 libpangoft2-1.0-0 python3-venv \
        libreoffice-calc-nogui libreoffice-impress-nogui libreoffice-writer-nogui \
        fontconfig fonts-liberation pandoc tesseract-ocr tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/* \
    && fc-cache -s \
    && find / -xdev -perm /6000 -type f -exec chmod a-s {} +
