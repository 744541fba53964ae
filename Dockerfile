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
# The dashboard's sources: `npm run build` bundles them (Vite) into web/dist, served at /.
COPY web/ ./web/
# Build, drop dev dependencies, then drop better-sqlite3's compile leftovers (SQLite sources,
# object files, static lib: ~25 MB); only build/Release/better_sqlite3.node is loaded at run time.
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && cd node_modules/better-sqlite3 \
 && mv build/Release/better_sqlite3.node /tmp/ \
 && rm -rf build deps src \
 && mkdir -p build/Release \
 && mv /tmp/better_sqlite3.node build/Release/

# Sample sales files (the default SALES_DIR); last, so editing them does not rebuild the app.
COPY static/ ./static/

############################ runtime ############################
FROM node:22-bookworm-slim

# tini as PID 1: forwards SIGTERM to node (which then closes the server and the database and
# exits 0) and reaps zombies. mariadb-client gives `zinc backup` its dump tool on MySQL.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini mariadb-client \
 && rm -rf /var/lib/apt/lists/*

ENV NODE_ENV=production
WORKDIR /app

# Application files stay owned by root (read-only for the app user); only /app/data is writable.
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/web/dist ./web/dist
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/static ./static
RUN mkdir -p /app/data && chown node:node /app/data

USER node
EXPOSE 8000
ENV DATABASE_URL=sqlite:/app/data/zinc.sqlite \
    SALES_DIR=/app/static/sales
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
