# Poppins and Lora, which the brand-guidelines skill names (SIL Open Font
# License 1.1, kept beside them as OFL.txt): TrueType files from the npm
# registry, where Expo packages Google Fonts, checked against the sha512 npm
# publishes. Fetched on the build machine's own architecture: a font is the
# same bytes on every platform. layers/office installs them.
FROM --platform=$BUILDPLATFORM ${BASE} AS fonts
ARG DEBIAN_FRONTEND=noninteractive
ARG POPPINS_VERSION=0.4.1
ARG POPPINS_SHA512=2e25f9a04af226a0eddd4996c2be28a9fd75846333fc911f7e490d719dd4b46c32a0c1735e60664f072b016ac4b6dc72a7198b3663f290383e098d958cabdef4
ARG LORA_VERSION=0.4.2
ARG LORA_SHA512=067a1f8769883942a9e0a512e3c56368182e83895039cc3f7ed534345bf938fb62bad2f8db6fff1b5bfadf10d910c5042fa7ede1f8b9abde3fb8a7290e36cf6a
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=secret,id=ca-bundle \
    --mount=type=bind,source=with-ca-bundle,target=/usr/local/bin/with-ca-bundle \
    fetch() { \
        with-ca-bundle curl -fsSL -o "/tmp/$1.tgz" \
            "https://registry.npmjs.org/@expo-google-fonts/$1/-/$1-$2.tgz" \
        && printf '%s  /tmp/%s.tgz\n' "$3" "$1" > "/tmp/$1.sha512" \
        && sha512sum -c "/tmp/$1.sha512" \
        && mkdir -p "/tmp/$1" "/fonts/$1" \
        && tar -xzf "/tmp/$1.tgz" -C "/tmp/$1" \
        && find "/tmp/$1" -name '*.ttf' -exec cp {} "/fonts/$1/" \; \
        && cp "/tmp/$1/package/LICENSE_FONT" "/fonts/$1/OFL.txt"; \
    } \
    && fetch poppins "$POPPINS_VERSION" "$POPPINS_SHA512" \
    && fetch lora "$LORA_VERSION" "$LORA_SHA512"
