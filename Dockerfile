FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ postgresql-client zstd \
  && rm -rf /var/lib/apt/lists/* && npm install -g pnpm@10
WORKDIR /app
COPY . .
RUN pnpm install --frozen-lockfile --prod=false
USER node
EXPOSE 8080
CMD ["control-plane/bin/dbbackup-control-plane"]
