#!/usr/bin/env bash
# Installs the system packages the integration tests (tests/it/) need:
#   nginx     - TLS + basic auth front end of the local smart-HTTP git server
#               (tests/it/support/git_server.rs; run by the tests, never as a service)
#   fcgiwrap  - FastCGI -> CGI bridge for git-http-backend
#   openssl   - generates the throw-away CA / server certificate and htpasswd hash
#   git       - git client + git-http-backend
#   sqlite3   - the sqlite3 CLI: the restore tests compare `.schema` output (they fail without it)
#   openssh-client - ssh-keygen, for signing
#   tinyproxy - a real HTTP proxy on 127.0.0.1 for the https_proxy/no_proxy tests
#               (tests/it/support/proxy.rs; run by the tests, never as a service)
#
# Only packages that are missing are installed; `apt-get update` runs only if
# something is missing. Works as root (no sudo needed) or via sudo otherwise.
# No service is started: a policy-rc.d that exits 101 is in place during the
# install, and any nginx/fcgiwrap daemon that appears anyway is stopped.
set -euo pipefail

log() { printf 'install-test-deps: %s\n' "$*" >&2; }

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    SUDO=()
fi

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

git_http_backend_present() {
    local exec_path
    if command -v git >/dev/null 2>&1; then
        exec_path="$(git --exec-path 2>/dev/null || true)"
        if [ -n "$exec_path" ] && [ -x "$exec_path/git-http-backend" ]; then
            return 0
        fi
    fi
    [ -x /usr/lib/git-core/git-http-backend ]
}

missing=()

# nginx: the binary may come from "nginx" (bookworm+) or nginx-light/-core/-full (older releases).
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    missing+=(nginx)
fi
if ! command -v fcgiwrap >/dev/null 2>&1 && [ ! -x /usr/sbin/fcgiwrap ]; then
    missing+=(fcgiwrap)
    # fcgiwrap depends on "systemd | spawn-fcgi": without systemd (a container), name the
    # small alternative, or apt pulls in all of systemd.
    if ! command -v systemctl >/dev/null 2>&1; then
        missing+=(spawn-fcgi)
    fi
fi
if ! command -v openssl >/dev/null 2>&1; then
    missing+=(openssl)
fi
if ! command -v git >/dev/null 2>&1 || ! git_http_backend_present; then
    missing+=(git)
fi
# CA bundle for the client side of git over https (harmless if already there).
if ! pkg_installed ca-certificates; then
    missing+=(ca-certificates)
fi
if ! command -v sqlite3 >/dev/null 2>&1; then
    missing+=(sqlite3)
fi
if ! command -v ssh-keygen >/dev/null 2>&1; then
    missing+=(openssh-client)
fi
if ! command -v tinyproxy >/dev/null 2>&1 && [ ! -x /usr/bin/tinyproxy ] && [ ! -x /usr/sbin/tinyproxy ]; then
    missing+=(tinyproxy)
fi
# The reader example (examples/read_latest.py) and the benchmarks' drivers.
if ! command -v python3 >/dev/null 2>&1; then
    missing+=(python3)
fi

if [ "${#missing[@]}" -eq 0 ]; then
    log "all test dependencies already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
    log "missing: ${missing[*]} - run this script as root, or install sudo, or install them by hand"
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    log "missing: ${missing[*]} - and apt-get is not available; install them by hand"
    exit 1
fi

log "installing: ${missing[*]}"

# Were system daemons running before? Only stop what this install started.
pid_alive() {
    local f="$1" pid
    [ -s "$f" ] || return 1
    pid="$(tr -dc '0-9' <"$f")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}
nginx_was_running=0
fcgiwrap_was_running=0
tinyproxy_was_running=0
pid_alive /run/nginx.pid && nginx_was_running=1
pid_alive /run/fcgiwrap.pid && fcgiwrap_was_running=1
pid_alive /run/tinyproxy/tinyproxy.pid && tinyproxy_was_running=1

# Forbid service starts during the install (keep any pre-existing policy-rc.d).
POLICY=/usr/sbin/policy-rc.d
policy_backup=""
if [ -e "$POLICY" ]; then
    policy_backup="$(mktemp)"
    "${SUDO[@]}" cp -p "$POLICY" "$policy_backup"
fi
restore_policy() {
    if [ -n "$policy_backup" ]; then
        "${SUDO[@]}" cp -p "$policy_backup" "$POLICY"
        rm -f "$policy_backup"
    else
        "${SUDO[@]}" rm -f "$POLICY"
    fi
}
trap restore_policy EXIT
printf '#!/bin/sh\n# installed by scripts/install-test-deps.sh: never start services\nexit 101\n' \
    | "${SUDO[@]}" tee "$POLICY" >/dev/null
"${SUDO[@]}" chmod 755 "$POLICY"

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"

# Belt and braces: make sure no system nginx / fcgiwrap daemon was left running.
stop_daemon() {
    local name="$1" pidfile="$2" pid i
    pid_alive "$pidfile" || return 0
    pid="$(tr -dc '0-9' <"$pidfile")"
    log "stopping system $name (pid $pid) started by the package install"
    "${SUDO[@]}" kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    "${SUDO[@]}" kill -KILL "$pid" 2>/dev/null || true
}
if [ "$nginx_was_running" -eq 0 ]; then
    stop_daemon nginx /run/nginx.pid
fi
if [ "$fcgiwrap_was_running" -eq 0 ]; then
    stop_daemon fcgiwrap /run/fcgiwrap.pid
fi
if [ "$tinyproxy_was_running" -eq 0 ]; then
    stop_daemon tinyproxy /run/tinyproxy/tinyproxy.pid
fi

for bin in nginx fcgiwrap openssl git sqlite3 ssh-keygen tinyproxy; do
    if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
        log "ERROR: $bin still not found after install"
        exit 1
    fi
done
log "done"
