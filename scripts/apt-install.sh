# Sourced by the setup scripts: installs Debian/Ubuntu packages, with sudo when not root.
#
#   apt_install "<what they are for>" <package>...
#
# Tries without refreshing the package lists first (fast when they are recent), then with.

source "$(dirname "${BASH_SOURCE[0]}")/retry.sh"

apt_install() {
    local why="$1"; shift
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$* needed ($why): install them with your package manager" >&2
        return 1
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    echo "installing $* ($why)..." >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 && return 0
    retry "apt-get update" $sudo apt-get update -q >/dev/null
    retry "installing $*" $sudo apt-get install -y -q --no-install-recommends "$@" >/dev/null
}
