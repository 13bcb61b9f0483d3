# The control plane, with the agent bundle it serves to install.sh.
#   docker build -t dbbackup/control-plane .
# Stage 1 builds (better-sqlite3 compiles for the agent bundle); stage 2 runs.
FROM node:20-bookworm-slim AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/* \
  && npm install -g pnpm@10
WORKDIR /app
COPY . .
RUN pnpm install --frozen-lockfile \
  && pnpm run build:agent \
  && pnpm run build:web \
  && rm -rf .git data .tmp

FROM node:20-bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends ca-certificates curl \
  && rm -rf /var/lib/apt/lists/* \
  && mkdir -p /var/lib/dbbackup && chown node:node /var/lib/dbbackup
WORKDIR /app
COPY --from=build /app /app
USER node
ENV DBBACKUP_HOST=0.0.0.0 \
    DBBACKUP_PORT=8080 \
    DBBACKUP_DATA_DIR=/var/lib/dbbackup
VOLUME /var/lib/dbbackup
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=12 CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
CMD ["control-plane/bin/dbbackup-control-plane"]
