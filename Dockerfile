# syntax=docker/dockerfile:1
#
# Zinc: sales CSV import + revenue metrics (Fastify, Node 22).
#
#   docker build -t zinc .
#   docker run --rm -p 8000:8000 -v zinc-data:/app/data zinc                  # SQLite in /app/data
#   docker run --rm -p 8000:8000 -e DATABASE_URL=mysql://u:p@db:3306/zinc zinc
#
# Here (podman, no Docker Hub): podman build --network host --pull=never --format docker -t zinc .
# (--format docker keeps the HEALTHCHECK; see scripts/test-container.sh.)
#
# The runtime image is ~235 MB (scripts/test-container.sh fails above 250 MB): one layer of Debian
# with node, tini and mariadb-dump (~199 MB), production node_modules (~34 MB), the app (~1.3 MB).

############################ build ############################
FROM node:22-bookworm-slim AS build
WORKDIR /app

# Toolchain for better-sqlite3, which compiles from source when its prebuilt binary
# cannot be downloaded.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# node-gyp: use the headers shipped in the image instead of downloading them from nodejs.org.
ENV npm_config_nodedir=/usr/local

COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY tsconfig*.json ./
COPY src/ ./src/
# The dashboard's sources: `npm run build` bundles them (Vite) into web/dist, served at /, with the
# typed API client (client/) it imports.
COPY client/ ./client/
COPY web/ ./web/
# Build, drop dev dependencies, then what Node never loads: better-sqlite3's compile leftovers
# (SQLite sources, object files, static lib: ~25 MB; only build/Release/better_sqlite3.node is
# loaded) and, in every package, TypeScript sources and declarations, source maps and Markdown
# other than licences (~22 MB). Last, every production dependency must still import.
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && cd node_modules/better-sqlite3 \
 && mv build/Release/better_sqlite3.node /tmp/ \
 && rm -rf build deps src \
 && mkdir -p build/Release \
 && mv /tmp/better_sqlite3.node build/Release/ \
 && cd /app \
 && find node_modules -type f \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' \
      -o -name '*.tsbuildinfo' -o \( -iname '*.md' ! -iname 'licen[cs]e*' \) \) -delete \
 && find node_modules -depth -type d -empty -delete \
 && node --input-type=module -e "import fs from 'node:fs'; \
      for (const d of Object.keys(JSON.parse(fs.readFileSync('package.json')).dependencies)) await import(d);"

# Sample sales files (the default SALES_DIR); last, so editing them does not rebuild the app.
COPY static/ ./static/

################## runtime files: mariadb-dump, a stripped node ##################
# `zinc backup` on MySQL runs only mariadb-dump (it needs libssl3, zlib and libc) and the client's
# authentication plugins (MySQL 8's caching_sha2_password, ed25519: libmariadb3's plugin folder,
# ~0.5 MB), not all of mariadb-client with Perl (~110 MB). node without its symbol table and debug sections: 107 MB
# instead of 125; the dynamic symbols native addons link against stay, JavaScript stack traces
# are unchanged (native frames in gdb/perf lose their names).
FROM node:22-bookworm-slim AS runtime-files
RUN apt-get update \
 && apt-get install -y --no-install-recommends mariadb-client binutils \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir /out \
 && cp /usr/bin/mariadb-dump /out/ \
 && tar -C / -cf /out/mariadb-plugins.tar $(dpkg -L libmariadb3 | grep '/plugin/[^/]*\.so$' | sed 's#^/##') \
 && tar -tf /out/mariadb-plugins.tar | grep -q caching_sha2_password \
 && strip --strip-all -o /out/node /usr/local/bin/node \
 && /out/node --version

############################ runtime base ############################
# The node image minus what only builds need: npm, npx, corepack, yarn and the C headers (~32 MB).
# Deleting files in a layer does not shrink an image, so the final stage starts FROM scratch with
# this stage's whole file system as one layer.
FROM node:22-bookworm-slim AS runtime-base
COPY --from=runtime-files /out/mariadb-dump /usr/bin/mariadb-dump
COPY --from=runtime-files /out/mariadb-plugins.tar /tmp/
COPY --from=runtime-files /out/node /usr/local/bin/node
# tini as PID 1: forwards SIGTERM to node (which then closes the server and the database and
# exits 0) and reaps zombies.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini libssl3 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && tar -C / -xf /tmp/mariadb-plugins.tar \
 && ln -s mariadb-dump /usr/bin/mysqldump \
 && mariadb-dump --version \
 && rm -rf /usr/local/lib/node_modules /usr/local/include /opt/yarn-* /tmp/* \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg \
 && node --version \
 && mkdir -p /app/data \
 && chown node:node /app/data

############################ runtime ############################
FROM scratch
COPY --from=runtime-base / /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NODE_ENV=production
WORKDIR /app

# Application files stay owned by root (read-only for the app user); only /app/data (made in
# runtime-base) is writable.
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/web/dist ./web/dist
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/static ./static

USER node
EXPOSE 8000
# SALES_DIR is not set here: its default, ./static/sales, is /app/static/sales from WORKDIR, and
# an image that set it would refuse SALES_URL (`docker run -e SALES_URL=s3://…`) as both set.
ENV DATABASE_URL=sqlite:/app/data/zinc.sqlite
VOLUME /app/data

# /health/live: the process answers (no database check), so a slow database does not get the
# container restarted. Readiness (/health/ready) is for load balancers / orchestrators.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node","-e","fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

ENTRYPOINT ["/usr/bin/tini","--"]
CMD ["node","dist/src/cli.js","serve"]

# Labels last: changing the build args below does not invalidate any cached layer.
ARG VCS_REF=unknown
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="zinc" \
      org.opencontainers.image.description="Sales CSV import and exact revenue metrics over HTTP, on MySQL/MariaDB, PostgreSQL or embedded SQLite." \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.base.name="docker.io/library/node:22-bookworm-slim"
