# Sourced by scripts/run and scripts/test: make .venv match setup.cfg and the lock.
# usage: ensure_venv [extra]   (extra: "test" for the test dependencies)

ensure_venv() {
    local extra="${1:-}" python="${PYTHON:-python3}" spec="." stamp want
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "Tubei needs Python 3.11 or newer as '$python' (set PYTHON=...)" >&2
        return 1
    fi
    [ -n "$extra" ] && spec=".[$extra]"
    if [ ! -x .venv/bin/python ]; then
        echo "creating .venv" >&2
        "$python" -m venv .venv
    fi
    stamp=.venv/.tubei-installed
    want="$extra $(cat setup.cfg requirements.lock | sha256sum | cut -c1-16)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "installing dependencies into .venv" >&2
        .venv/bin/python -m pip install --quiet --disable-pip-version-check \
            --constraint requirements.lock --editable "$spec"
        echo "$want" > "$stamp"
    fi
}
