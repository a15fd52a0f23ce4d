# Sourced by scripts/test and scripts/preview: Debian's Chromium for the browser tests
# and screenshots, installed with apt-get when missing and running as root.
# usage: ensure_chromium [fonts]   (fonts: also a font with Chinese glyphs, for screenshots)
# Returns 1, after one line saying what is missing, when it cannot be had.

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export CHROMIUM

ensure_chromium() {
    local missing=()
    [ -x "$CHROMIUM" ] || missing+=(chromium)
    if [ "${1:-}" = fonts ]; then
        command -v fc-list >/dev/null && [ -n "$(fc-list :lang=zh 2>/dev/null)" ] || missing+=(fonts-noto-cjk)
    fi
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "installing ${missing[*]} (apt-get)" >&2
        if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" fontconfig >/dev/null; then
            [ -x "$CHROMIUM" ] && return 0
            echo "chromium installed but $CHROMIUM is missing (set CHROMIUM=...)" >&2
            return 1
        fi
    fi
    echo "no ${missing[*]}: install with sudo apt-get install -y ${missing[*]} (or set CHROMIUM=...)" >&2
    return 1
}
