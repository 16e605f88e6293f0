#!/usr/bin/env bash
# All five benchmarks, each on plain loopback and through the 25 ms-each-way proxy where the
# network matters. Sizes are the ones bench/RESULTS.md reports; see there for why.
# Run through ./dev bench (tools on PATH). Takes about 20 minutes on 2 cores.
#   --full   benchmark 1 at the issue's size, 5,000 tags of which 4,000 orphaned, on both
#            networks: the sequential regctl baseline alone then takes about an hour more.
# Every benchmark runs even if one fails; the exit code says whether any did.
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  "") sizes=(1250 1000 375 300) ;;
  --full) sizes=(5000 4000 5000 4000) ;;
  *) echo "usage: bench/run.sh [--full]" >&2; exit 2 ;;
esac
failed=0
run() { echo; echo "\$ python -m $*"; python -m "$@" || failed=1; }

run bench.sweep_throughput --network loopback --tags "${sizes[0]}" --orphans "${sizes[1]}" \
  --concurrency 32
run bench.sweep_throughput --network 25ms --tags "${sizes[2]}" --orphans "${sizes[3]}" \
  --concurrency 32
run bench.plan_requests --tags 1000 --tags 10000 --rest-up-to 1000
run bench.plan_scaling --tags 10000 --tags 100000 --branches 20000
run bench.single_delete --network loopback --pairs 15
run bench.single_delete --network 25ms --pairs 9
run bench.group_sweep --projects 1000 --tags 100
exit "$failed"
