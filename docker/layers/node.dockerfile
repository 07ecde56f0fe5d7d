# Node.js from Debian. npm from the npm registry, checked against the sha512 it
# publishes: Debian's npm package pulls in some 300 node-* packages and OpenSSL
# headers, 25 MB compressed that npm itself does not need.
ARG NPM_VERSION=11.21.2
ARG NPM_SHA512=ec73c0a64f807e53146af4ac78bd4f9ba0a762a3081e4e77c7e2a6ba1aa64c3a8f9233cc8312294cf713aac13dd4428dc3880504957d7e75e249d1a6d435eaf4
RUN --mount=type=bind,from=apt-lists,source=/var/lib/apt/lists,target=/var/lib/apt/lists,rw \
    --mount=type=bind,source=scrub,target=/usr/local/bin/scrub \
    --mount=type=secret,id=ca-bundle \
    --mount=type=bind,source=with-ca-bundle,target=/usr/local/bin/with-ca-bundle \
    apt-get install -y --no-install-recommends nodejs \
    && with-ca-bundle curl -fsSL -o /tmp/npm.tgz \
        "https://registry.npmjs.org/npm/-/npm-${NPM_VERSION}.tgz" \
    && printf '%s  /tmp/npm.tgz\n' "${NPM_SHA512}" > /tmp/npm.sha512 \
    && sha512sum -c /tmp/npm.sha512 \
    && mkdir -p /usr/local/lib/node_modules/npm \
    && tar -xzf /tmp/npm.tgz -C /usr/local/lib/node_modules/npm --strip-components=1 \
        --no-same-owner \
    && rm /tmp/npm.tgz /tmp/npm.sha512 \
    && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && find / -xdev -perm /6000 -type f -exec chmod a-s {} + \
    && scrub

# The JavaScript libraries the skills require() (docx, pptxgenjs), from
# docker/npm/package-lock.json with its integrity hashes, no install scripts.
# NODE_PATH makes them resolvable from any working directory. Type
# declarations, source maps and browser bundles (18 MB) are of no use to node.
ENV NODE_PATH=/opt/node/node_modules
RUN --mount=type=secret,id=ca-bundle \
    --mount=type=bind,source=with-ca-bundle,target=/usr/local/bin/with-ca-bundle \
    --mount=type=bind,source=npm,target=/tmp/npm-lock \
    --mount=type=bind,source=scrub,target=/usr/local/bin/scrub \
    mkdir -p /opt/node \
    && cp /tmp/npm-lock/package.json /tmp/npm-lock/package-lock.json /opt/node/ \
    && with-ca-bundle npm ci --prefix /opt/node --omit=dev --ignore-scripts --no-audit \
        --no-fund --cache /tmp/npm-cache \
    && rm -rf /tmp/npm-cache /root/.npm /opt/node/node_modules/@types \
    && find /opt/node/node_modules -type f \( -name '*.map' -o -name '*.d.ts' \
        -o -name '*.d.cts' -o -name '*.d.mts' -o -name '*.iife.js' -o -name '*.bundle.js' \
        -o -name '*.min.js' \) -delete \
    && scrub
