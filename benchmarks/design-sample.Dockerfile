# The reference image of `invoke bench --images`: the sample Dockerfile of the
# conjure design (docs/adr/0013-docker-infrastructure.md in holsee/conjure),
# with the same packages, on this project's base so that the two compare like
# with like. Changes: the base; python3 for Ubuntu's python3.12; pip reaches
# PyPI through the build's CA bundle. Not published, not tested.
ARG BASE=debian:trixie-slim
FROM ${BASE}
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-pip python3-venv nodejs npm bash git curl wget jq poppler-utils qpdf \
    && rm -rf /var/lib/apt/lists/*
# hadolint ignore=DL3013
RUN --mount=type=secret,id=ca-bundle \
    --mount=type=bind,source=with-ca-bundle,target=/usr/local/bin/with-ca-bundle \
    with-ca-bundle pip3 install --break-system-packages \
        pyarrow openpyxl xlsxwriter xlrd pillow python-pptx python-docx pypdf pdfplumber \
        pypdfium2 pdf2image pdfkit tabula-py reportlab img2pdf pandas numpy matplotlib \
        pyyaml requests beautifulsoup4
RUN useradd -m -s /bin/bash -u 1000 sandbox
USER sandbox
WORKDIR /workspace
ENV PYTHONUNBUFFERED=1 \
    NODE_ENV=production
