#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine (Debian's slurm-wlm: slurmctld + slurmd on localhost, munge for
# auth), for the tests that submit the data stage and a 2-task CPU pretraining job through sbatch. Needs root.
#   apt-get install -y slurm-wlm && bash tests/slurm/start_local_cluster.sh     # then: sinfo, sbatch, squeue
# Idempotent: a running cluster is left as it is. Exits 0 with a line on stderr when it cannot start one.
set -uo pipefail
if sinfo -h -o %T 2>/dev/null | grep -q idle; then exit 0; fi
for cmd in slurmctld slurmd munged sbatch; do
  command -v "$cmd" >/dev/null || { echo "slurm: $cmd not installed (apt-get install slurm-wlm)" >&2; exit 0; }
done
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /var/lib/munge /var/log/munge
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=fromscratch
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=localhost CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge && dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || su -s /bin/sh munge -c munged 2>/dev/null || munged --force
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 1 30); do
  if sinfo -h -o %T 2>/dev/null | grep -q idle; then exit 0; fi
  scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true
  sleep 1
done
echo "slurm: the local cluster did not come up (see /var/log/slurm/)" >&2
exit 0
