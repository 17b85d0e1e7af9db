#!/usr/bin/env bash
# `npm test`: type-check and build, then the whole mocha suite once per ledger back end — SQLite, then
# a throw-away PostgreSQL database per harness (PGW_TEST_DATABASE; see test/helpers/databases.ts).
# PGW_TEST_DATABASES="sqlite" runs one pass only. Extra arguments go to mocha; test files among
# them replace the default set (the spec list lives here, not in .mocharc.json, so that
# `npx mocha test/x.test.ts` runs that file alone instead of the file plus the whole suite).
# Closes with the combined "N passed, N failed" line CI reads.
# Redis and PostgreSQL: the ones answering at PGW_TEST_REDIS_URL / PGW_TEST_POSTGRES_ADMIN_URL
# (defaults 127.0.0.1:6379 and :5432), else throw-away ones started here from the installed
# binaries and stopped at the end; a missing binary stops the run at once, naming the package
# (scripts/test-services.sh).
set -uo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp)
source scripts/test-services.sh
trap 'stop_test_services; rm -f "$out"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if ! start_test_services; then
  echo "0 passed, 1 failed (test services)"
  exit 1
fi

if ! npm run --silent typecheck; then
  echo "0 passed, 1 failed (type-check)"
  exit 1
fi
# The pgw processes the suites start run what an installation runs: the compiled build
# (bin/launch.js), made from the sources as they are now.
if ! npm run --silent build; then
  echo "0 passed, 1 failed (build)"
  exit 1
fi

specs=('test/unit/**/*.test.ts' 'test/integration/**/*.test.ts' 'test/security/**/*.test.ts' 'test/faults/**/*.test.ts')
for arg in "$@"; do [[ $arg == *.ts ]] && specs=(); done
# Files that never open a ledger say so on a line of their own (`// test-pass: once`): the
# back end cannot change their outcome, so only the first pass runs them.
once=()
if ((${#specs[@]})); then
  while IFS= read -r f; do once+=(--ignore "$f"); done < <(grep -rlx '// test-pass: once' test --include='*.test.ts' | sort)
fi
passed=0 failed=0 skipped=0 rc=0 pass=0
for db in ${PGW_TEST_DATABASES:-sqlite postgres}; do
  printf '\n=== test suite, ledger on %s ===\n' "$db"
  ignore=()
  ((pass++ > 0)) && ignore=("${once[@]}")
  PGW_TEST_DATABASE=$db npx mocha "${specs[@]}" "${ignore[@]}" "$@" | tee "$out"
  status=${PIPESTATUS[0]}
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
  if [[ -z "$line" ]]; then
    echo "[$db] mocha printed no summary (exit $status)"
    failed=$((failed + 1)); rc=1; continue
  fi
  read -r p _ f _ s _ <<<"${line//,/}"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + ${s:-0}))
  ((status == 0)) || rc=1
  echo "[$db] $line"
done
echo
echo "$passed passed, $failed failed, $skipped skipped"
exit "$rc"
