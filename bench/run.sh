#!/usr/bin/env bash
# All four benchmarks, each on plain loopback and through the 25 ms-each-way proxy where the
# network matters. Sizes are the ones bench/RESULTS.md reports; see there for why.
# Run through ./dev bench (tools on PATH). Takes about 20 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
run() { echo; echo "\$ python -m $*"; python -m "$@"; }

run bench.sweep_throughput --network loopback --tags 2500 --orphans 2000 --concurrency 32 --via api --via registry
run bench.sweep_throughput --network 25ms --tags 625 --orphans 500 --concurrency 32 --via api --via registry
run bench.plan_requests --tags 1000 --tags 10000
run bench.plan_scaling --tags 10000 --tags 100000 --branches 20000
run bench.single_delete --network loopback --pairs 15
run bench.single_delete --network 25ms --pairs 9
