# Sourced by scripts/run: build the web app (web/ -> web/dist) when it is missing or
# older than its sources or the lock, if Node.js 20+ and npm are here. Without them
# the server runs anyway: the API and the mini-program need no Node, and / says how
# to build the web app.

web_is_stale() {
    [ -f web/dist/index.html ] || return 0
    [ -n "$(find web package-lock.json package.json -path web/dist -prune -o -type f \
        -newer web/dist/index.html -print -quit)" ]
}

ensure_web() {
    web_is_stale || return 0
    if ! command -v node >/dev/null || ! command -v npm >/dev/null \
        || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
        echo "web app not built (needs Node.js 20+ and npm): serving the API and mini-program only; see docs/web.md" >&2
        return 0
    fi
    if [ ! -d node_modules/vite ]; then
        echo "installing the web app's packages (npm ci)" >&2
        npm ci --no-audit --no-fund --loglevel=error
    fi
    echo "building the web app (npm run build:web)" >&2
    npm run --silent build:web >/dev/null
}
