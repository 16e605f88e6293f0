#!/usr/bin/env bash
# Every benchmark, each on both registries (distribution 2.8 and v3.1.2), on plain loopback and
# through the 25 ms-each-way proxy where the network matters. Sizes are the ones
# bench/RESULTS.md reports. Run through ./dev bench (tools on PATH: regctl, regbot, registry-v3).
#   --full   benchmark 1 at the issue's large size, 5,000 tags of which 4,000 orphaned, on the
#            25 ms model: the sequential regctl loop on 2.8 alone then takes about 50 minutes.
# Every benchmark runs even if one fails; the exit code says whether any did.
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  # 120 orphans and 31 live tags: the issue's small size.
  "") sizes=(375 300 151 120) ;;
  --full) sizes=(375 300 5000 4000) ;;
  *) echo "usage: bench/run.sh [--full]" >&2; exit 2 ;;
esac
failed=0
run() { echo; echo "\$ python -m $*"; python -m "$@" || failed=1; }
timeline="${BENCH_TIMELINE:-$(mktemp -d)/sweep-timeline.jsonl}"

run bench.sweep_throughput --network loopback --tags "${sizes[0]}" --orphans "${sizes[1]}"
run bench.sweep_throughput --network 25ms --tags "${sizes[2]}" --orphans "${sizes[3]}"
run bench.sweep_timeline --flavour v3 --tags 151 --orphans 120 --timeline "$timeline"
run bench.plan_requests --tags 1000 --tags 10000 --rest-up-to 1000
run bench.plan_scaling --tags 10000 --tags 100000 --branches 20000
run bench.single_delete --network loopback --pairs 15
run bench.single_delete --network 25ms --pairs 9
run bench.group_sweep --projects 1000 --tags 100
# What --sizes costs: 1.5x at most on the issue's size; reads follow the distinct manifests.
run bench.sizes --network 25ms --tags 151 --orphans 120 --scale 1000 --scale 5000
# GitLab.com's proposed Free burst limit (100 requests a minute), the minute shrunk to 6 s;
# 1,000 orphans take about 170 requests there, so the limit binds.
run bench.rate_limit --tags 1250 --orphans 1000 --limit 100 --period 6
exit "$failed"
