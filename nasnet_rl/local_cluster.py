"""A multi-worker cluster of local processes: the same command started once per task with its
TF_CONFIG (127.0.0.1 ports), as a user starts it once per machine. Used by the cluster tests and
`python -m nasnet_rl.local_cluster --workers=2 -- python scripts/train.py ...`."""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence


def free_ports(n: int) -> List[int]:
  """n TCP ports free on 127.0.0.1 right now."""
  socks = [socket.socket() for _ in range(n)]
  try:
    for s in socks:
      s.bind(("127.0.0.1", 0))
    return [s.getsockname()[1] for s in socks]
  finally:
    for s in socks:
      s.close()


def tf_configs(workers: int, chief: bool = False) -> List[Dict]:
  """One TF_CONFIG per task: an optional `chief` task first, then `workers` workers."""
  ports = free_ports(workers + int(chief))
  addresses = [f"127.0.0.1:{p}" for p in ports]
  cluster = {"worker": addresses[int(chief):]}
  tasks = [{"type": "worker", "index": i} for i in range(workers)]
  if chief:
    cluster["chief"] = addresses[:1]
    tasks = [{"type": "chief", "index": 0}] + tasks
  return [{"cluster": cluster, "task": t} for t in tasks]


def start(command: Sequence[str], workers: int, chief: bool = False,
          cwds: Optional[Sequence[str]] = None, env: Optional[Dict[str, str]] = None,
          logs: Optional[Sequence[str]] = None) -> List[subprocess.Popen]:
  """Starts `command` once per task; `cwds` / `logs` (one per task) set each process's working
  directory (separate ones stand for separate machines' disks) and output file."""
  procs = []
  for i, conf in enumerate(tf_configs(workers, chief)):
    task_env = dict(env if env is not None else os.environ, TF_CONFIG=json.dumps(conf))
    out = open(logs[i], "w") if logs else None
    procs.append(subprocess.Popen(list(command), cwd=cwds[i] if cwds else None, env=task_env,
                                  stdout=out, stderr=subprocess.STDOUT if out else None))
  return procs


def wait(procs: Sequence[subprocess.Popen], timeout: float) -> List[Optional[int]]:
  """Exit codes once all ended or `timeout` seconds passed (None for those still running,
  which are then killed)."""
  deadline = time.time() + timeout
  for p in procs:
    try:
      p.wait(timeout=max(0.0, deadline - time.time()))
    except subprocess.TimeoutExpired:
      pass
  codes = [p.poll() for p in procs]
  for p in procs:
    if p.poll() is None:
      p.kill()
      p.wait()
  return codes


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workers", type=int, default=2, help="worker tasks")
  parser.add_argument("--chief", action="store_true", help="add a chief task")
  parser.add_argument("--timeout", type=float, default=3600, help="seconds before killing")
  parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
  args = parser.parse_args(argv)
  command = args.command[1:] if args.command[:1] == ["--"] else args.command
  if not command:
    parser.error("give the command after --")
  codes = wait(start(command, args.workers, args.chief), args.timeout)
  print(f"exit codes: {codes}", flush=True)
  return 0 if all(c == 0 for c in codes) else 1


if __name__ == "__main__":
  sys.exit(main())
