#!/usr/bin/env bash
# A real Slurm cluster of one node on this machine (../shared/CLUSTER.md): `nmm brain batch` as an
# `sbatch --array` job over shards, merged with `nmm brain merge`, must equal the same batch run
# in one process, byte for byte. Installs Debian's slurmctld, slurmd, slurm-client and munge when
# missing (root or sudo), starts munged (unless it runs), slurmctld and slurmd with a private
# configuration, and stops the daemons it started by their process ids at the end; an existing
# /etc/slurm/slurm.conf is put back. It refuses to run where a slurmctld already runs (a real
# cluster's configuration is not to be touched).
#
# Usage: scripts/slurm_check.sh NMM_BINARY [ARRAY_TASKS]
set -euo pipefail
bin=$(realpath "$1")
tasks=${2:-3}
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

need=()
command -v slurmctld >/dev/null 2>&1 || need+=(slurmctld)
command -v slurmd >/dev/null 2>&1 || need+=(slurmd)
command -v sbatch >/dev/null 2>&1 || need+=(slurm-client)
command -v munged >/dev/null 2>&1 || need+=(munge)
if [ ${#need[@]} -gt 0 ]; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if pgrep -x slurmctld >/dev/null 2>&1; then
  echo "slurm_check: a slurmctld already runs here; not touching a live cluster" >&2
  exit 1
fi

D=$(mktemp -d)
chmod 755 "$D"
H=$(hostname -s)
conf=/etc/slurm/slurm.conf
pids=()
restore=""
wrote_conf=0
cleanup() {
  for p in "${pids[@]}"; do
    $sudo kill "$p" 2>/dev/null || true
  done
  # Daemons take a moment to go; a next run must not meet them.
  for _ in $(seq 100); do
    alive=0
    for p in "${pids[@]}"; do
      if $sudo kill -0 "$p" 2>/dev/null; then alive=1; fi
    done
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  # Only the configuration this script wrote is undone.
  if [ "$wrote_conf" -eq 1 ]; then
    if [ -n "$restore" ]; then
      $sudo mv "$restore" "$conf"
    else
      $sudo rm -f "$conf"
    fi
  fi
  $sudo rm -rf "$D"
}
trap cleanup EXIT

# munged: the package's key; started here unless it already runs.
if ! pgrep -x munged >/dev/null 2>&1; then
  # munged runs as the munge user (the package's), with its directories owned by it.
  $sudo mkdir -p /run/munge /var/log/munge /var/lib/munge
  $sudo chown -R munge:munge /run/munge /var/log/munge /var/lib/munge
  $sudo rm -f /run/munge/munged.pid
  if [ -z "$sudo" ]; then
    runuser -u munge -- munged --force
  else
    sudo -u munge munged --force
  fi
  for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
  pids+=("$(cat /run/munge/munged.pid)")
fi

$sudo mkdir -p /etc/slurm
if [ -e "$conf" ]; then
  restore="$D/slurm.conf.before"
  $sudo cp -p "$conf" "$restore"
fi
mkdir -p "$D/spool" "$D/state"
wrote_conf=1
$sudo tee "$conf" >/dev/null <<EOC
ClusterName=nmmcheck
SlurmctldHost=$H
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdSpoolDir=$D/spool
StateSaveLocation=$D/state
SlurmctldLogFile=$D/ctld.log
SlurmdLogFile=$D/d.log
SlurmctldPidFile=$D/ctld.pid
SlurmdPidFile=$D/d.pid
SlurmUser=root
ReturnToService=2
NodeName=$H CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=$H Default=YES MaxTime=INFINITE State=UP
EOC
$sudo slurmctld
for _ in $(seq 50); do [ -s "$D/ctld.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$D/ctld.pid")")
$sudo slurmd
for _ in $(seq 50); do [ -s "$D/d.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$D/d.pid")")
idle=0
for _ in $(seq 60); do
  if sinfo -h -o %t 2>/dev/null | grep -q idle; then idle=1; break; fi
  sleep 1
done
sinfo
if [ "$idle" -ne 1 ]; then
  echo "slurm_check: the node did not become idle within 60 s" >&2
  cat "$D/ctld.log" "$D/d.log" >&2 || true
  exit 1
fi

# The batch: 7 rows (G and eta) on a small built-in connectome, short runs.
printf 'G,eta\n0,-4.6\n0.05,-4.6\n0.1,-4.6\n0.05,-4.8\n0.1,-4.8\n0.15,-5\n0.2,-5\n' > "$D/rows.csv"
args=(brain batch --connectome builtin:6 --duration 20000 --tr 200 --transient 1000
  --rows "$D/rows.csv")
cat > "$D/job.sh" <<EOJ
#!/bin/bash
#SBATCH --job-name=nmm-batch
#SBATCH --output=$D/slurm-%A_%a.out
# Each array task runs its shard (K and N from SLURM_ARRAY_TASK_*; see the README).
exec "$bin" ${args[*]} --out "$D/sharded"
EOJ
status=0
timeout 600 sbatch --array=1-"$tasks" --wait "$D/job.sh" || status=$?
echo "--- array task logs"
cat "$D"/slurm-*.out || true
if [ "$status" -ne 0 ]; then
  echo "slurm_check: the array job failed (status $status)" >&2
  exit 1
fi
ls "$D/sharded"
"$bin" brain merge "$D/sharded"
"$bin" "${args[@]}" --out "$D/single" --jobs 1 >/dev/null
if cmp "$D/sharded/features.csv" "$D/single/features.csv"; then
  echo "slurm: $tasks array tasks merged = one process, byte for byte ($(($(wc -l <"$D/single/features.csv") - 1)) rows)"
else
  diff "$D/sharded/features.csv" "$D/single/features.csv" || true
  exit 1
fi
