#!/usr/bin/env bash
# Fuzzes the relay's HTTP API from its own OpenAPI document with schemathesis:
# a real `tickets relay serve` on a free port, a real lead token, and checks
# that no request gets a 5xx, and that every response (every error included)
# has a documented content type and matches its documented schema.
#
# Usage (from the repository root, after `cargo build -p tickets-cli`):
#   tests/api/schemathesis.sh
# Environment: TICKETS_BIN (default target/debug/tickets),
#   SCHEMATHESIS_MAX_EXAMPLES (default 25 per operation).
#
# Exits non-zero on any failure, and always stops the relay.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

SCHEMATHESIS_VERSION="4.32.5"
venv="$root/target/schemathesis-venv"
bin="${TICKETS_BIN:-$root/target/debug/tickets}"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-25}"

if [[ ! -x "$bin" ]]; then
  echo "schemathesis.sh: $bin not found; run 'cargo build -p tickets-cli' first" >&2
  exit 1
fi

if [[ ! -x "$venv/bin/schemathesis" ]] || ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "schemathesis.sh: installing schemathesis $SCHEMATHESIS_VERSION into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

work="$(mktemp -d)"
relay_pid=""
cleanup() {
  if [[ -n "$relay_pid" ]] && kill -0 "$relay_pid" 2>/dev/null; then
    kill -TERM "$relay_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$relay_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$relay_pid" 2>/dev/null || true
    wait "$relay_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

db="$work/relay.db"
"$bin" relay serve --db "$db" --listen 127.0.0.1:0 2>"$work/relay.log" &
relay_pid=$!

url=""
for _ in $(seq 1 300); do
  url="$(grep -o 'relay listening on http://[0-9.:]*' "$work/relay.log" | head -1 | sed 's/relay listening on //' || true)"
  [[ -n "$url" ]] && break
  if ! kill -0 "$relay_pid" 2>/dev/null; then
    echo "schemathesis.sh: the relay exited; its log:" >&2
    cat "$work/relay.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ -z "$url" ]]; then
  echo "schemathesis.sh: the relay did not print its address; its log:" >&2
  cat "$work/relay.log" >&2
  exit 1
fi

# A lead token: the lead may call every operation, export included.
token="$("$bin" relay agent add fuzz-lead --role lead --json --db "$db" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')"
"$bin" relay category add hardware --db "$db" >/dev/null

# The watch long poll holds a request up to 25 s when nothing changes, by
# design; fuzzing it would only wait. Everything else is fuzzed.
# Run from the scratch folder: schemathesis leaves its example database
# and reports in the working directory.
status=0
(cd "$work" && "$venv/bin/schemathesis" run "$url/v1/openapi.json" \
  --url "$url" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,response_schema_conformance,content_type_conformance \
  --max-examples "$max_examples" \
  --phases examples,coverage,fuzzing \
  --exclude-path /v1/sync/watch \
  --request-timeout 10 \
  --workers 2 \
  --seed 1 \
  --no-color) \
  || status=$?

if grep -q "panicked" "$work/relay.log"; then
  echo "schemathesis.sh: the relay panicked:" >&2
  grep -A5 "panicked" "$work/relay.log" >&2
  status=1
fi
exit "$status"
