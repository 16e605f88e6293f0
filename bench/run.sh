#!/usr/bin/env bash
# All four benchmarks, each on plain loopback and through the 25 ms-each-way proxy where the
# network matters. Sizes are the ones bench/RESULTS.md reports; see there for why.
# Run through ./dev bench (tools on PATH). Takes about 15 minutes on 2 shared cores.
# Every benchmark runs even if one fails; the exit code says whether any did.
set -uo pipefail
cd "$(dirname "$0")/.."
failed=0
run() { echo; echo "\$ python -m $*"; python -m "$@" || failed=1; }

run bench.sweep_throughput --network loopback --tags 1250 --orphans 1000 --concurrency 32
run bench.sweep_throughput --network 25ms --tags 375 --orphans 300 --concurrency 32
run bench.plan_requests --tags 1000 --tags 10000 --rest-up-to 1000
run bench.plan_scaling --tags 10000 --tags 100000 --branches 20000
run bench.single_delete --network loopback --pairs 15
run bench.single_delete --network 25ms --pairs 9
exit "$failed"
