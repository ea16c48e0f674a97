#!/usr/bin/env bash
# A real S3 server on loopback for tests: a one-node Ceph cluster (monitor + memstore OSD) and its
# S3 gateway, radosgw, from Debian's packages. No mgr: radosgw does not need one and it costs a core.
#
#   scripts/s3-server.sh install            apt-get the packages if missing (CI; needs root or sudo)
#   scripts/s3-server.sh start DIR PORT     start a fresh cluster in DIR, S3 on 127.0.0.1:PORT
#   scripts/s3-server.sh start-gateway DIR  start radosgw again (after a test killed it)
#   scripts/s3-server.sh stop DIR           stop everything started in DIR and remove DIR
#
# The S3 user is access key "quiveraccess", secret "quiversecret".
set -euo pipefail

PACKAGES=(radosgw ceph-mon ceph-osd)
ACCESS_KEY=quiveraccess
SECRET_KEY=quiversecret
# Monitor ports, overridable so that two clusters can run on one machine.
MON_V2_PORT=${QUIVER_S3_MON_PORT:-3300}
MON_V1_PORT=$((MON_V2_PORT + 1))

installed() { command -v radosgw >/dev/null && command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null; }

install() {
  if installed; then return 0; fi
  local sudo=()
  if [ "$(id -u)" != 0 ]; then sudo=(sudo -n); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
}

wait_for() {
  local what=$1 tries=$2
  shift 2
  for _ in $(seq "$tries"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  echo "s3-server: $what did not come up; logs in $DIR/log" >&2
  exit 1
}

start_gateway() {
  radosgw -n client.rgw.quiver --pid-file "$DIR/run/rgw.pid"
  wait_for "radosgw" 240 curl -sf "http://127.0.0.1:$(cat "$DIR/port")/"
}

start() {
  local port=$1
  if ! installed; then
    echo "s3-server: radosgw, ceph-mon and ceph-osd are not installed (run: scripts/s3-server.sh install)" >&2
    exit 2
  fi
  stop_dir
  mkdir -p "$DIR"/{mon,osd,run,log,rgw}
  echo "$port" > "$DIR/port"
  local fsid mon
  fsid=$(uuidgen)
  mon="[v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_V1_PORT]"
  cat > "$DIR/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = $mon
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
# With auth none the monitor refuses secure mode, the client default.
ms mon client mode = crc
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
mon warn on pool no redundancy = false
run dir = $DIR/run
log file = $DIR/log/\$name.log
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
[mon.a]
mon data = $DIR/mon
mon data avail crit = 0
[osd.0]
osd data = $DIR/osd
osd objectstore = memstore
memstore device bytes = 1073741824
[client.rgw.quiver]
rgw frontends = beast endpoint=127.0.0.1:$port
rgw data = $DIR/rgw
CONF
  monmaptool --create --addv a "$mon" --fsid "$fsid" "$DIR/monmap" >/dev/null
  ceph-mon -i a --mkfs --monmap "$DIR/monmap" --keyring /dev/null
  touch "$DIR/mon/keyring"
  ceph-mon -i a
  ceph osd create >/dev/null
  ceph osd crush add osd.0 1 root=default >/dev/null 2>&1
  ceph-osd -i 0 --mkfs >/dev/null 2>&1
  ceph-osd -i 0 >/dev/null 2>&1
  start_gateway
  radosgw-admin user create --uid quiver --display-name quiver --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" >/dev/null
  echo "s3-server: S3 on http://127.0.0.1:$port (access key $ACCESS_KEY)"
}

stop_dir() {
  [ -d "$DIR/run" ] || { rm -rf "$DIR"; return 0; }
  local pids=()
  for f in "$DIR"/run/*.pid; do
    [ -e "$f" ] && pids+=("$(cat "$f")")
  done
  # The store is in memory and thrown away: nothing to shut down cleanly.
  if [ ${#pids[@]} -gt 0 ]; then
    kill -9 "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 40); do
      kill -0 "${pids[@]}" 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -rf "$DIR"
}

command=${1:-}
case "$command" in
  install) install ;;
  start) DIR=$(realpath -m "${2:?DIR}"); export CEPH_CONF="$DIR/ceph.conf"; start "${3:?PORT}" ;;
  start-gateway) DIR=$(realpath -m "${2:?DIR}"); export CEPH_CONF="$DIR/ceph.conf"; start_gateway ;;
  stop) DIR=$(realpath -m "${2:?DIR}"); stop_dir ;;
  *) echo "usage: $0 install | start DIR PORT | start-gateway DIR | stop DIR" >&2; exit 2 ;;
esac
