# Sourced by the setup scripts. The package registries are the only network they touch, and a
# dropped connection there (CI has seen pip die mid-download) should cost a retry, not a run.
#
#   retry <what> <command> [args...]    # up to 4 tries, 5, 15 and 45 s apart

# pip also retries on its own, and waits longer for a slow registry (its default is 15 s), in
# every script that sources this; settings already in the environment win.
export PIP_RETRIES="${PIP_RETRIES:-10}"
if [ -z "${PIP_TIMEOUT:-}" ] && [ -z "${PIP_DEFAULT_TIMEOUT:-}" ]; then
    export PIP_TIMEOUT=60
fi

retry() {
    local what="$1"; shift
    local pause=5
    for attempt in 1 2 3 4; do
        if "$@"; then
            return 0
        fi
        if [ "$attempt" -lt 4 ]; then
            echo "$what failed (try $attempt of 4); trying again in ${pause}s" >&2
            sleep "$pause"
            pause=$((pause * 3))
        fi
    done
    echo "$what failed 4 times; giving up" >&2
    return 1
}
