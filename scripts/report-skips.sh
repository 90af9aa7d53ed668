#!/usr/bin/env bash
# Prints how many tests skipped and which, from the log the tests append to
# (ONESTACK_TEST_SKIP_LOG: "<test name><TAB><what was missing>" per line).
log=${1:?usage: report-skips.sh LOG}
if [ ! -s "$log" ]; then
    echo "==> skipped tests: 0"
    exit 0
fi
count=$(wc -l <"$log")
echo "==> skipped tests: $count"
sort "$log" | while IFS=$'\t' read -r name what; do
    echo "    $name: $what"
done
