# syntax=docker/dockerfile:1
# Parley on the official Node image. Two stages: the browser client is built with the dev
# dependencies (Vite), and the image that runs keeps only the production dependencies, the
# server and the built client — no lab/, no tests, no secrets. How to run it: docs/deploy.md.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: the browser client (client/ + shared/ → dist/client) -------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency runs code at install time (and the `node` devDependency does
# not download a second runtime: the image has one).
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY client ./client
COPY shared ./shared
RUN npm run build

# ---- runtime: production dependencies only, as the unprivileged `node` user -------------
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8443 \
    DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=optional: the image's own Node runs Parley; the bundled runtime (an optional dependency) is for laptops,
# and so is the certificate generator (selfsigned): give the image a certificate (TLS_CERT_FILE/TLS_KEY_FILE).
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund --ignore-scripts && npm cache clean --force
COPY server ./server
COPY shared ./shared
COPY --from=build /app/dist/client ./dist/client
# DATA_DIR: the SQLite file, and the generated session secret when SESSION_SECRET is not given
# (no certificate is generated here: without TLS_CERT_FILE/TLS_KEY_FILE Parley says so and exits,
# unless a still-valid localhost-cert.pem/localhost-key.pem is in /data). Owned by `node`, mode 0700.
RUN mkdir -m 0700 /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8443
# Liveness: the process answers HTTPS. (Readiness, /readyz, is for the load balancer.) The
# probe runs inside the container against its own certificate, so it does not verify it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["node", "-e", "require('node:https').get({host:'127.0.0.1',port:process.env.PORT||8443,path:'/healthz',rejectUnauthorized:false,timeout:2500},(r)=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).on('timeout',function(){this.destroy()})"]
# Node itself, not `npm start`: SIGTERM reaches Parley's graceful shutdown (sockets get 1001,
# queued messages are committed), and the prestart build step is not needed here.
CMD ["node", "server/main.ts"]
