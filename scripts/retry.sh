# Sourced by the setup scripts. The package registries are the only network they touch, and a
# dropped connection there (CI has seen pip die mid-download) should cost a retry, not a run.
#
#   retry <what> <command> [args...]    # up to 4 tries, 5, 15 and 45 s apart

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
