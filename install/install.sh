#!/bin/sh
# dbbackup agent installer.
#
#   curl -fsSL https://<control-plane>/install.sh | sudo sh -s -- --token <enrolment token>
#
# Installs the agent bundle served by the control plane (checked against its
# published SHA-256) under a prefix, enrols the agent with a one-time token, and
# leaves it running under a hardened systemd unit. Needs Node.js 20 or newer on
# the host and nothing from the npm registry. Run with --help for the options.
#
# The whole script is one { ... } group, which sh parses to its closing brace
# before running any of it, and only its last command does anything: a download
# cut short anywhere is a syntax error and runs nothing at all.
{
set -eu

installer_version='0.1.2'
# Filled in by the control plane that serves this script.
default_server='@@DBBACKUP_SERVER@@'

say() { printf 'dbbackup-install: %s\n' "$*" >&2; }
die() {
  printf 'dbbackup-install: error: %s\n' "$*" >&2
  exit 1
}

usage() {
  cat <<'EOF'
dbbackup agent installer

Usage: install.sh [options]          (curl -fsSL <server>/install.sh | sudo sh -s -- [options])

  --token TOKEN       one-time enrolment token (or DBBACKUP_TOKEN); needed on first install only
  --server URL        control plane URL (default: the one that served this script; or DBBACKUP_SERVER)
  --labels k=v,...    labels recorded at enrolment
  --proxy URL         HTTP(S) proxy for the installer and the agent (default: HTTPS_PROXY/HTTP_PROXY)
  --prefix DIR        install directory (default /opt/dbbackup-agent)
  --state-dir DIR     agent keys, queue and outbox (default /var/lib/dbbackup-agent), kept on uninstall
  --config-dir DIR    where agent.env goes (default /etc/dbbackup)
  --version X.Y.Z     install that version (default: the newest the control plane serves)
  --force             allow installing an older version than the one installed
  --no-start          install and enrol, but do not start or restart the agent
  --no-systemd        no unit, no system user: the agent runs as this user, started in the
                      background with a pid file in the state directory (containers, tests)
  --dry-run           say what would be done, change nothing
  --uninstall         stop and remove the agent; the state directory (its identity) is kept
  --purge             with --uninstall: remove the state directory and the dbbackup user too
  --print-unit        print the systemd unit this host would get, and exit
  --help              this text;   --version (alone) prints the installer's version
EOF
}

# ---------------------------------------------------------------- helpers

# Run a command, or only say it under --dry-run.
act() {
  if [ "$dry_run" = 1 ]; then
    say "would run: $*"
  else
    "$@"
  fi
}

have() { command -v "$1" >/dev/null 2>&1; }

# fetch URL FILE: the body into FILE; fails on a non-2xx answer.
fetch() {
  if have curl; then
    code=$(curl -sS -L --proto '=http,https' --connect-timeout 15 --retry 2 -o "$2" -w '%{http_code}' "$1") ||
      return 1
    case $code in
      2??) return 0 ;;
      *) return 2 ;;
    esac
  elif have wget; then
    wget -q --content-on-error -O "$2" "$1"
  else
    die "neither curl nor wget is installed; install one of them and run this again"
  fi
}

sha256_of() {
  if have sha256sum; then
    sha256sum "$1" | cut -d ' ' -f 1
  elif have shasum; then
    shasum -a 256 "$1" | cut -d ' ' -f 1
  elif have openssl; then
    openssl dgst -sha256 -r "$1" | cut -d ' ' -f 1
  else
    die "no sha256sum, shasum or openssl to check the download with"
  fi
}

# The value of key= in a key=value file.
field() { sed -n "s/^$1=//p" "$2" | head -n 1; }

# write_if_changed FILE MODE < content: rewrite FILE only when its content differs.
write_if_changed() {
  new="$tmp/write.$$"
  cat >"$new"
  if [ -f "$1" ] && cmp -s "$new" "$1"; then
    rm -f "$new"
    return 1
  fi
  if [ "$dry_run" = 1 ]; then
    say "would write $1"
    rm -f "$new"
    return 0
  fi
  chmod "$2" "$new"
  mv -f "$new" "$1"
  return 0
}

# Versions X.Y.Z[-pre]: prints -1, 0 or 1.
version_cmp() {
  a=${1%%-*}
  b=${2%%-*}
  for i in 1 2 3; do
    x=$(printf '%s' "$a" | cut -d . -f "$i")
    y=$(printf '%s' "$b" | cut -d . -f "$i")
    if [ "${x:-0}" -gt "${y:-0}" ]; then
      echo 1
      return
    fi
    if [ "${x:-0}" -lt "${y:-0}" ]; then
      echo -1
      return
    fi
  done
  case "$1:$2" in
    *-*:*-*) if [ "$1" = "$2" ]; then echo 0; elif [ "$(printf '%s\n%s\n' "$1" "$2" | sort | head -n 1)" = "$1" ]; then echo -1; else echo 1; fi ;;
    *-*:*) echo -1 ;;
    *:*-*) echo 1 ;;
    *) echo 0 ;;
  esac
}

# ---------------------------------------------------------------- checks

detect_platform() {
  os=$(uname -s)
  case $os in
    Linux) os=linux ;;
    *) die "unsupported operating system '$os': the dbbackup agent runs on Linux (x86_64 or aarch64)" ;;
  esac
  machine=$(uname -m)
  case $machine in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die "unsupported architecture '$machine': the dbbackup agent runs on x86_64 and aarch64" ;;
  esac
}

check_node() {
  node_bin=${DBBACKUP_NODE:-}
  if [ -z "$node_bin" ]; then
    node_bin=$(command -v node 2>/dev/null || true)
  fi
  if [ -z "$node_bin" ] || [ ! -x "$node_bin" ]; then
    die "Node.js 20 or newer is needed and none was found.
  Debian 13 / Ubuntu 24.04 and later:  apt-get install nodejs
  older releases: the NodeSource packages (https://github.com/nodesource/distributions)
  or a tarball from https://nodejs.org/en/download, then run this again
  (DBBACKUP_NODE=/path/to/node picks one that is not on PATH)"
  fi
  node_bin=$(cd "$(dirname "$node_bin")" && pwd)/$(basename "$node_bin")
  node_version=$("$node_bin" -p 'process.versions.node' 2>/dev/null) || die "$node_bin does not run"
  node_major=${node_version%%.*}
  if [ "$node_major" -lt 20 ]; then
    die "Node.js $node_version at $node_bin is too old: the agent needs Node.js 20 or newer (see https://nodejs.org/en/download)"
  fi
  node_abi=$("$node_bin" -p 'process.versions.modules')
}

check_safe() { # name value: refuse what could break out of the env file or the unit
  case $2 in
    *[!A-Za-z0-9._~:/@%+,=-]*) die "$1: unexpected characters in '$2'" ;;
  esac
}

# ---------------------------------------------------------------- the unit

systemd_version() {
  if have systemctl; then
    systemctl --version 2>/dev/null | sed -n 's/^systemd \([0-9]*\).*/\1/p' | head -n 1
  fi
}

render_unit() {
  sv=$(systemd_version)
  cat <<EOF
# Written by the dbbackup installer ($installer_version). Local changes: systemctl edit dbbackup-agent
[Unit]
Description=dbbackup agent
Documentation=$server
Wants=network-online.target
After=network-online.target
StartLimitIntervalSec=0

[Service]
Type=simple
User=dbbackup
Group=dbbackup
EnvironmentFile=$config_dir/agent.env
# The bundle's launcher runs \$DBBACKUP_NODE (agent.env) with the agent's V8 memory flags.
ExecStart=$prefix/current/bin/dbbackup-agent run
# 3 = this agent was revoked, 2 = bad configuration: restarting would not help.
Restart=on-failure
RestartPreventExitStatus=2 3
EOF
  if [ -z "$sv" ] || [ "$sv" -ge 254 ]; then
    printf 'RestartSec=2\nRestartSteps=8\nRestartMaxDelaySec=300\n'
  else
    printf 'RestartSec=15\n'
  fi
  cat <<EOF
KillSignal=SIGTERM
TimeoutStopSec=60
UMask=0077
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=$state_dir
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
CapabilityBoundingSet=
AmbientCapabilities=

[Install]
WantedBy=multi-user.target
EOF
}

render_env() {
  printf '# dbbackup agent settings, written by install.sh. Restart the agent after editing.\n'
  printf "DBBACKUP_SERVER='%s'\n" "$server"
  printf "DBBACKUP_STATE_DIR='%s'\n" "$state_dir"
  printf "DBBACKUP_NODE='%s'\n" "$node_bin"
  printf "DBBACKUP_SECRETS_FILE='%s'\n" "$config_dir/secrets.json"
  if [ -n "$proxy" ]; then
    printf "HTTPS_PROXY='%s'\nHTTP_PROXY='%s'\n" "$proxy" "$proxy"
  fi
  if [ -n "$no_proxy" ]; then
    printf "NO_PROXY='%s'\n" "$no_proxy"
  fi
}

# ---------------------------------------------------------------- running the agent

# The pid of the agent this installer started (--no-systemd), if it still runs.
running_pid() {
  pidfile="$state_dir/agent.pid"
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  case $pid in '' | *[!0-9]*) return 1 ;; esac
  kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/$pid/cmdline" ]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'dbbackup-agent' || return 1
  fi
  printf '%s' "$pid"
}

stop_background() {
  pid=$(running_pid) || return 0
  say "stopping the agent (pid $pid)"
  act kill -TERM "$pid"
  [ "$dry_run" = 1 ] && return 0
  i=0
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -gt 300 ] && die "the agent (pid $pid) did not stop within 60 s"
    sleep 0.2
  done
  rm -f "$state_dir/agent.pid"
}

start_background() {
  say "starting the agent in the background (log: $state_dir/agent.log)"
  [ "$dry_run" = 1 ] && return 0
  log_from=0
  [ -f "$state_dir/agent.log" ] && log_from=$(wc -c <"$state_dir/agent.log" | tr -d ' ')
  launcher=""
  have setsid && launcher=setsid
  (
    set -a
    # shellcheck disable=SC1091
    . "$config_dir/agent.env"
    set +a
    cd /
    exec $launcher "$prefix/current/bin/dbbackup-agent" run >>"$state_dir/agent.log" 2>&1 </dev/null
  ) &
  started_pid=$!
  printf '%s\n' "$started_pid" >"$state_dir/agent.pid"
}

# Whether a child of this installer still runs: an exited one can stay a zombie until
# the shell reaps it, and kill -0 still finds a zombie.
still_running() {
  kill -0 "$1" 2>/dev/null || return 1
  [ -r "/proc/$1/stat" ] || return 0
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
  [ "$state" != Z ]
}

# Wait for the agent started at log offset $log_from to say it is connected (it
# logs JSON lines); if it exits first, show why and fail.
wait_online() {
  [ "$dry_run" = 1 ] && return 0
  i=0
  while [ "$i" -lt 120 ]; do
    if tail -c "+$((log_from + 1))" "$state_dir/agent.log" 2>/dev/null | grep -q 'connected to control plane'; then
      say "the agent is connected to $server"
      return 0
    fi
    # The process just started, by pid: until its subshell has exec'd the launcher its
    # command line is still this installer's, which running_pid would not recognise.
    if ! still_running "$started_pid"; then
      tail -c "+$((log_from + 1))" "$state_dir/agent.log" 2>/dev/null | tail -n 20 >&2
      die "the agent exited; its log is $state_dir/agent.log"
    fi
    i=$((i + 1))
    sleep 0.25
  done
  say "the agent has not connected within 30 s; it keeps trying (log: $state_dir/agent.log)"
}

# ---------------------------------------------------------------- install

create_user() {
  id dbbackup >/dev/null 2>&1 && return 0
  nologin=/usr/sbin/nologin
  [ -x "$nologin" ] || nologin=/sbin/nologin
  [ -x "$nologin" ] || nologin=/bin/false
  if have useradd; then
    act useradd --system --no-create-home --home-dir "$state_dir" --shell "$nologin" --user-group dbbackup
  elif have adduser; then
    act adduser -S -D -H -h "$state_dir" -s "$nologin" dbbackup
  else
    die "cannot create the dbbackup user: no useradd or adduser"
  fi
}

install_release() {
  tmpfile="$tmp/$file"
  say "downloading $file ($size bytes)"
  fetch "$server$url" "$tmpfile" || die "could not download $server$url"
  got=$(sha256_of "$tmpfile")
  if [ "$got" != "$sha256" ]; then
    die "checksum mismatch for $file: expected $sha256, got $got.
  The download was altered or corrupted on the way; nothing was installed."
  fi
  base=${file%.tar.gz}
  tar -tzf "$tmpfile" >"$tmp/list" || die "$file is not a readable tar.gz archive; nothing was installed"
  while IFS= read -r entry; do
    case $entry in
      "$base"/*) ;;
      *) die "$file holds an unexpected entry '$entry'; nothing was installed" ;;
    esac
    case /$entry/ in
      */../*) die "$file holds an unsafe entry '$entry'; nothing was installed" ;;
    esac
  done <"$tmp/list"
  if [ "$dry_run" = 1 ]; then
    say "would install $version into $prefix/releases/$version"
    return 0
  fi
  mkdir -p "$prefix/releases"
  chmod 755 "$prefix" "$prefix/releases"
  staging="$prefix/releases/.staging.$$"
  rm -rf "$staging"
  mkdir "$staging"
  tar -xzf "$tmpfile" -C "$staging"
  rm -rf "$prefix/releases/$version"
  mv "$staging/$base" "$prefix/releases/$version"
  rm -rf "$staging"
  [ "$("$node_bin" "$prefix/releases/$version/dist/dbbackup-agent.js" --version)" = "$version" ] ||
    die "the installed agent does not report version $version"
}

activate_release() {
  [ "$dry_run" = 1 ] && return 0
  # Swap the link in one rename where mv has -T; otherwise remove and relink.
  ln -sfn "releases/$version" "$prefix/current.new"
  if ! mv -Tf "$prefix/current.new" "$prefix/current" 2>/dev/null; then
    rm -f "$prefix/current"
    mv -f "$prefix/current.new" "$prefix/current"
  fi
  # Older releases go; the current one stays.
  for old in "$prefix"/releases/*; do
    [ "$old" = "$prefix/releases/$version" ] || rm -rf "$old"
  done
  mkdir -p "$prefix/bin"
  ln -sfn ../current/bin/dbbackup-agent "$prefix/bin/dbbackup-agent"
}

enrol() {
  if [ -f "$state_dir/agent.json" ]; then
    agent_id=$(sed -n 's/.*"agentId": *"\([^"]*\)".*/\1/p' "$state_dir/agent.json" | head -n 1)
    say "already enrolled as agent $agent_id; keeping that identity"
    return 0
  fi
  [ -n "$token" ] || die "this host is not enrolled yet: pass --token <enrolment token> (create one with POST /api/v1/enrollment-tokens)"
  if [ "$dry_run" = 1 ]; then
    say "would enrol with $server"
    return 0
  fi
  # The token goes to the enrol command in its environment, never on a command
  # line, and is not written anywhere.
  out=$(DBBACKUP_ENROLLMENT_TOKEN="$token" DBBACKUP_LABELS="$labels" DBBACKUP_LOG_LEVEL=warn \
    "$node_bin" "$1/dist/dbbackup-agent.js" enroll --server "$server" --state-dir "$state_dir" 2>&1) || {
    printf '%s\n' "$out" >&2
    return 1
  }
  agent_id=$(printf '%s' "$out" | sed -n 's/.*"agentId":"\([^"]*\)".*/\1/p' | head -n 1)
  say "enrolled as agent $agent_id"
}

do_install() {
  [ -n "$server" ] || die "no control plane URL: pass --server https://... (or fetch this script from your control plane)"
  check_safe --server "$server"
  case $server in http://* | https://*) ;; *) die "--server: expected http(s)://host[:port], got '$server'" ;; esac
  [ -z "$proxy" ] || check_safe --proxy "$proxy"
  [ -z "$no_proxy" ] || check_safe NO_PROXY "$no_proxy"
  [ -z "$labels" ] || check_safe --labels "$labels"
  check_safe --prefix "$prefix"
  check_safe --state-dir "$state_dir"
  check_safe --config-dir "$config_dir"
  detect_platform
  check_node
  if [ "$no_systemd" = 0 ]; then
    [ "$(id -u)" = 0 ] || die "installing the service needs root: run with sudo (or pass --no-systemd to run as this user)"
    have systemctl || die "systemctl not found: this host does not run systemd; pass --no-systemd to run the agent without it"
    case $node_bin in
      /home/* | /root/*) die "Node.js at $node_bin is under a home directory, which the hardened service cannot read (ProtectHome=yes); install Node.js system-wide (for example under /usr/local) or pass DBBACKUP_NODE=/path/to/node" ;;
    esac
  fi

  platform="$os-$arch-node$node_abi"
  query="platform=$platform"
  [ -z "$want_version" ] || query="$query&version=$want_version"
  fetch "$server/agent/release?$query" "$tmp/release" ||
    die "the control plane at $server has no agent for this host ($platform):
  $(cat "$tmp/release" 2>/dev/null | sed -n 's/.*"detail":"\([^"]*\)".*/\1/p')"
  version=$(field version "$tmp/release")
  file=$(field file "$tmp/release")
  url=$(field url "$tmp/release")
  sha256=$(field sha256 "$tmp/release")
  size=$(field size "$tmp/release")
  printf '%s' "$version" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$' || die "the control plane sent a bad version '$version'"
  printf '%s' "$sha256" | grep -Eq '^[0-9a-f]{64}$' || die "the control plane sent a bad checksum '$sha256'"
  case $file in dbbackup-agent-*.tar.gz) ;; *) die "the control plane sent a bad file name '$file'" ;; esac
  case $url in /agent/files/*) ;; *) die "the control plane sent a bad URL '$url'" ;; esac
  check_safe file "$file"

  installed=""
  [ -f "$prefix/current/VERSION" ] && installed=$(cat "$prefix/current/VERSION")
  changed=0
  if [ "$installed" = "$version" ]; then
    say "dbbackup-agent $version is already installed in $prefix"
  else
    if [ -n "$installed" ] && [ "$(version_cmp "$version" "$installed")" = -1 ] && [ "$force" = 0 ]; then
      die "refusing to replace $installed with the older $version (pass --force to downgrade)"
    fi
    new_prefix=0
    [ -d "$prefix" ] || new_prefix=1
    install_release
    changed=1
  fi

  # Identity: the state directory survives upgrades and uninstall.
  new_state=0
  [ -d "$state_dir" ] || new_state=1
  act mkdir -p "$state_dir"
  act chmod 700 "$state_dir"
  if [ "$no_systemd" = 0 ]; then
    create_user
  fi
  release_dir="$prefix/current"
  [ "$changed" = 1 ] && release_dir="$prefix/releases/$version"
  if ! enrol "$release_dir"; then
    # A refused enrolment leaves the host as it was.
    if [ "$changed" = 1 ] && [ -z "$installed" ]; then
      rm -rf "$prefix/releases/$version"
      [ "$new_prefix" = 1 ] && rm -rf "$prefix"
    fi
    [ "$new_state" = 1 ] && rm -rf "$state_dir"
    die "enrolment with $server failed; nothing was installed"
  fi
  [ "$changed" = 1 ] && activate_release

  act mkdir -p "$config_dir"
  if render_env | write_if_changed "$config_dir/agent.env" 600; then changed=1; fi

  if [ "$no_systemd" = 0 ]; then
    act chown -R dbbackup:dbbackup "$state_dir"
    act ln -sfn "$prefix/bin/dbbackup-agent" /usr/local/bin/dbbackup-agent
    unit=/etc/systemd/system/dbbackup-agent.service
    if render_unit | write_if_changed "$unit" 644; then
      changed=1
      act systemctl daemon-reload
    fi
    act systemctl enable --quiet dbbackup-agent
    if [ "$no_start" = 1 ]; then
      say "installed; start it with: systemctl start dbbackup-agent"
    elif [ "$changed" = 1 ]; then
      act systemctl restart dbbackup-agent
      say "dbbackup-agent $version is running (journalctl -u dbbackup-agent)"
    elif ! systemctl is-active --quiet dbbackup-agent; then
      act systemctl start dbbackup-agent
    else
      say "nothing changed; the agent keeps running"
    fi
  else
    if [ "$no_start" = 1 ]; then
      say "installed; start it with: $prefix/bin/dbbackup-agent run (with the settings in $config_dir/agent.env)"
    elif running_pid >/dev/null; then
      if [ "$changed" = 1 ]; then
        stop_background
        start_background
        wait_online
      else
        say "nothing changed; the agent keeps running (pid $(running_pid))"
      fi
    else
      start_background
      wait_online
    fi
  fi
  say "a database password for targets is declared here, bound to where it may go:"
  say "  $prefix/bin/dbbackup-agent secret add NAME --allow 127.0.0.1:5432 --secrets-file $config_dir/secrets.json < password-file"
}

# ---------------------------------------------------------------- uninstall

do_uninstall() {
  if [ "$no_systemd" = 0 ] && have systemctl && [ -f /etc/systemd/system/dbbackup-agent.service ]; then
    act systemctl disable --now --quiet dbbackup-agent || true
    act rm -f /etc/systemd/system/dbbackup-agent.service
    act systemctl daemon-reload
  fi
  stop_background
  if [ -L /usr/local/bin/dbbackup-agent ] && [ "$no_systemd" = 0 ]; then
    act rm -f /usr/local/bin/dbbackup-agent
  fi
  act rm -rf "$prefix"
  act rm -f "$config_dir/agent.env"
  if [ -d "$config_dir" ]; then
    act rmdir "$config_dir" 2>/dev/null || true
  fi
  if [ "$purge" = 1 ]; then
    act rm -rf "$state_dir"
    if [ "$no_systemd" = 0 ] && id dbbackup >/dev/null 2>&1; then
      if have userdel; then act userdel dbbackup; elif have deluser; then act deluser dbbackup; fi
    fi
    say "removed the agent, its state and its identity; revoke it in the control plane too"
  else
    say "removed the agent; its identity and queue stay in $state_dir (--purge removes them)"
  fi
}

# ---------------------------------------------------------------- main

main() {
  token=${DBBACKUP_TOKEN:-}
  server=${DBBACKUP_SERVER:-}
  case $default_server in @@*) ;; *) [ -n "$server" ] || server=$default_server ;; esac
  labels=""
  proxy=${HTTPS_PROXY:-${https_proxy:-${HTTP_PROXY:-${http_proxy:-}}}}
  no_proxy=${NO_PROXY:-${no_proxy:-}}
  prefix=/opt/dbbackup-agent
  state_dir=/var/lib/dbbackup-agent
  config_dir=/etc/dbbackup
  want_version=""
  force=0
  no_start=0
  no_systemd=0
  dry_run=0
  action=install
  purge=0

  while [ $# -gt 0 ]; do
    opt=$1
    val=""
    case $opt in
      --*=*)
        val=${opt#*=}
        opt=${opt%%=*}
        ;;
      --token | --server | --labels | --proxy | --prefix | --state-dir | --config-dir)
        [ $# -ge 2 ] || die "$opt needs a value"
        val=$2
        shift
        ;;
      --version)
        if [ $# -ge 2 ] && [ "${2#-}" = "$2" ]; then
          val=$2
          shift
        fi
        ;;
    esac
    shift
    case $opt in
      --token) token=$val ;;
      --server) server=${val%/} ;;
      --labels) labels=$val ;;
      --proxy) proxy=$val ;;
      --prefix) prefix=${val%/} ;;
      --state-dir) state_dir=${val%/} ;;
      --config-dir) config_dir=${val%/} ;;
      --version)
        if [ -z "$val" ]; then
          printf '%s\n' "$installer_version"
          return 0
        fi
        want_version=$val
        ;;
      --force) force=1 ;;
      --no-start) no_start=1 ;;
      --no-systemd) no_systemd=1 ;;
      --dry-run) dry_run=1 ;;
      --uninstall) action=uninstall ;;
      --purge)
        action=uninstall
        purge=1
        ;;
      --print-unit) action=print-unit ;;
      -h | --help)
        usage
        return 0
        ;;
      *) die "unknown option '$opt' (see --help)" ;;
    esac
  done
  server=${server%/}
  for d in "$prefix" "$state_dir" "$config_dir"; do
    case $d in /*) ;; *) die "directories must be absolute paths, got '$d'" ;; esac
  done
  if [ -n "$proxy" ]; then
    export HTTPS_PROXY="$proxy" https_proxy="$proxy" HTTP_PROXY="$proxy" http_proxy="$proxy"
  fi

  tmp=$(mktemp -d "${TMPDIR:-/tmp}/dbbackup-install.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  trap 'exit 1' INT TERM
  umask 022

  case $action in
    install) do_install ;;
    uninstall) do_uninstall ;;
    print-unit)
      check_node
      render_unit
      ;;
  esac
}

main "$@"
}
