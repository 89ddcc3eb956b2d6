#!/usr/bin/env bash
# CI's sanitizer pass: the tests and the CLI built with AddressSanitizer and
# UBSan (preset asan: -O1, no GUI, no benchmarks, no CUDA), then the test
# entries that exercise parsing, files and outputs under them. Any report
# fails the run (-fno-sanitize-recover, ASan's default abort). The model-heavy
# entries (model goldens, scenarios, training, the CLI end to end) stay in the
# release pass: under ASan they would take most of CI's time for little more
# coverage of the code that reads hostile input.
# ATTNLAB_ASAN_LABELS overrides the entries (a ctest -L regex).
# Measured on the 2-core CI machine (shared, issue 15): the build takes 1150
# CPU seconds (about 10 minutes on two free cores), these entries 130 CPU
# seconds (3 minutes); [model] alone would add 9 minutes under ASan.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
cmake --preset asan >/dev/null
cmake --build --preset asan -j"$(nproc)"
t1=$(date +%s)
export ATTNLAB_REQUIRE_ASSETS=1 ATTNLAB_SANITIZED=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
labels=${ATTNLAB_ASAN_LABELS:-'^(attention|corpus|fuzz|hostile|io|methods|outputs|sim|snapshot|sweep|tokenizer|trace)$'}
ctest --preset asan -j2 -L "$labels"
t2=$(date +%s)
echo "asan: build $((t1 - t0)) s, tests $((t2 - t1)) s"
