#!/usr/bin/env bash
# The demo story, told through the cqrs CLI against running services (CQRS_BROKER, CQRS_COMMANDS,
# CQRS_QUERIES). Used by Scripts/demo (local processes), Scripts/compose-demo (containers) and the
# end-to-end tests. Every step checks what it shows; the story stops at the first surprise.
#
# Environment: CQRS_BIN (the cqrs binary, default: cqrs on PATH); DEMO_MIDWAY (a shell command run
# between the accounts and the orders, e.g. restarting a container); CQRS_KAFKA (the broker's Kafka
# port: the orders are then also read with kcat, a Kafka CLI); NO_COLOR.
set -euo pipefail
CQRS_BIN="${CQRS_BIN:-cqrs}"
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then BOLD=$'\e[1m'; DIM=$'\e[2m'; GREEN=$'\e[32m'; RESET=$'\e[0m'; else BOLD=; DIM=; GREEN=; RESET=; fi
step_number=0

say() { step_number=$((step_number + 1)); printf '\n%s── %d. %s ──%s\n' "$BOLD" "$step_number" "$1" "$RESET"; }
show() {
  local shown=() argument
  for argument in "$@"; do
    if [[ "$argument" =~ [[:space:]] ]]; then shown+=("\"$argument\""); else shown+=("$argument"); fi
  done
  printf '%s$ cqrs %s%s\n' "$DIM" "${shown[*]}" "$RESET"
}
ok() { printf '%s✓ %s%s\n' "$GREEN" "$1" "$RESET"; }
fail() { printf 'demo: %s\n' "$1" >&2; exit 1; }

# Runs a cqrs command, showing it and its output; LAST_POSITION gets the position a command printed.
cqrs() {
  show "$@"
  local output
  output="$("$CQRS_BIN" "$@")" || fail "cqrs $* failed"
  printf '%s\n' "$output"
  if [[ "$output" =~ position\ ([0-9]+) ]]; then LAST_POSITION="${BASH_REMATCH[1]}"; fi
  LAST_OUTPUT="$output"
}

# Runs a cqrs command that must be refused with exit status $1.
refused() {
  local expected=$1; shift
  show "$@"
  local status=0 output
  output="$("$CQRS_BIN" "$@" 2>&1)" || status=$?
  printf '%s\n' "$output"
  [ "$status" -eq "$expected" ] || fail "cqrs $* exited $status, expected $expected"
  ok "refused with exit status $status, as it should be"
}

# Asserts that the last output contains a text.
expect() { [[ "$LAST_OUTPUT" == *"$1"* ]] || fail "expected to see '$1'"; }

quiet() { "$CQRS_BIN" "$@"; }

say "Open three bank accounts (commands go to the CommandService)"
cqrs accounts open --id acct-ada --holder "Ada Lovelace" --type CURRENT --amount 100.00
cqrs accounts open --id acct-grace --holder "Grace Hopper" --type SAVINGS --amount 2500.00
cqrs accounts open --id acct-alan --holder "Alan Turing" --type CURRENT --amount 50.00

say "Deposit and withdraw"
cqrs accounts deposit acct-ada --amount 25.50
cqrs accounts withdraw acct-grace --amount 300.00
cqrs accounts deposit acct-alan --amount 20.00

say "An overdraft is refused with a clear message"
refused 9 accounts withdraw acct-alan --amount 500.00

say "Close an account (it stays queryable)"
cqrs accounts withdraw acct-alan --amount 70.00
cqrs accounts close acct-alan
refused 9 accounts deposit acct-alan --amount 1.00

if [ -n "${DEMO_MIDWAY:-}" ]; then
  say "${DEMO_MIDWAY_TITLE:-Meanwhile: $DEMO_MIDWAY}"
  eval "$DEMO_MIDWAY"
fi

say "Place a batch of orders for generated customers (published on the OnNewOrder topic)"
first=(Ada Grace Alan Katherine Edsger Barbara)
last=(Lovelace Hopper Turing Johnson Dijkstra Liskov)
for index in 0 1 2 3 4 5 6 7; do
  customer=$((index % 4))
  email="$(echo "${first[$customer]}.${last[$customer]}" | tr 'A-Z' 'a-z')@example.com"
  cqrs orders place --id "order-$((index + 1))" --email "$email" --first-name "${first[$customer]}" \
    --last-name "${last[$customer]}" --description "order $((index + 1)) of ${first[$customer]}" --quantity $((index % 3 + 1))
done
ORDERS_POSITION=$LAST_POSITION

say "The OnNewOrder topic on the broker: partition, offset and key of each record"
# The relay publishes after the commands are answered: wait (quietly, 30 s at most) until it has
# published the last order.
for _ in $(seq 300); do
  published="$("$CQRS_BIN" events status --json 2>/dev/null | sed -n 's/.*"publishedPosition":"\{0,1\}\([0-9]*\).*/\1/p' || true)"
  [ "${published:-0}" -ge "$ORDERS_POSITION" ] && break
  sleep 0.1
done
cqrs consume OnNewOrder --from-beginning --no-headers
[ "$(printf '%s\n' "$LAST_OUTPUT" | grep -c '^OnNewOrder/')" -eq 8 ] || fail "expected 8 records on OnNewOrder"
ok "8 orders, each keyed by its order id; one key always lands on the same partition"

if [ -n "${CQRS_KAFKA:-}" ]; then
  say "The same topic through the broker's Kafka port, read with kcat (a Kafka CLI on librdkafka)"
  printf '%s$ kcat -b %s -C -t OnNewOrder -o beginning -e -q -f '\''%%t/%%p@%%o key=%%k %%s\\n'\''%s\n' "$DIM" "$CQRS_KAFKA" "$RESET"
  kafka_output="$(kcat -b "$CQRS_KAFKA" -C -t OnNewOrder -o beginning -e -q -f '%t/%p@%o key=%k %s\n')" || fail "kcat could not read OnNewOrder"
  printf '%s\n' "$kafka_output"
  jframe_keys="$(printf '%s\n' "$LAST_OUTPUT" | grep '^OnNewOrder/' | sed -E 's/^(OnNewOrder\/[0-9]+@[0-9]+) .*key=([^ ]+).*/\1 \2/' | sort)"
  kafka_keys="$(printf '%s\n' "$kafka_output" | sed -E 's/^(OnNewOrder\/[0-9]+@[0-9]+) key=([^ ]+).*/\1 \2/' | sort)"
  [ "$jframe_keys" = "$kafka_keys" ] || fail "kcat saw other partitions, offsets or keys than the jframe port"
  ok "the same 8 records at the same partitions, offsets and keys, through the Kafka protocol"
fi

say "Query accounts (the QueryService), reading our own writes"
cqrs accounts get acct-ada --min-position "$ORDERS_POSITION"
expect "125.50 EUR"
cqrs accounts find --holder "grace hopper"
expect "2200.00 EUR"
cqrs accounts find --balance-above 100.00
expect "acct-ada"; expect "acct-grace"
[[ "$LAST_OUTPUT" != *acct-alan* ]] || fail "acct-alan has no money left"
cqrs accounts find --status CLOSED
expect "acct-alan"
cqrs accounts history acct-grace
expect "WITHDRAWAL"

say "Query orders by customer, and customers"
cqrs orders list --customer ada.lovelace@example.com --min-position "$ORDERS_POSITION"
expect "order-1"; expect "order-5"
cqrs customers list
expect "grace.hopper@example.com"

say "The job board: post a job, and two candidates apply (each application carries a copy of the job)"
cqrs jobs create --id job-compiler --title "Compiler engineer" --description "Write the first compiler."
cqrs applications create --id app-grace --job job-compiler --first-name Grace --last-name Hopper \
  --email grace.hopper@example.com --current-position "Programmer"
cqrs applications create --id app-alan --job job-compiler --first-name Alan --last-name Turing \
  --email alan.turing@example.com --current-position "Mathematician"
cqrs applications list --job job-compiler --min-position "$LAST_POSITION"
expect "app-grace"; expect "app-alan"; expect "Compiler engineer"

say "Update the job at the version we read: the applications' copies follow; a stale version is refused"
cqrs jobs update job-compiler --title "Senior compiler engineer" --description "Write the first compiler, and the second." --version 1
refused 10 jobs update job-compiler --title "Compiler engineer" --description "Undo." --version 1
cqrs applications list --job job-compiler --min-position "$LAST_POSITION"
[ "$(printf '%s\n' "$LAST_OUTPUT" | grep -c 'Senior compiler engineer')" -eq 2 ] || fail "both applications should show the new title"
ok "both applications show the job's new title, from their own copies"

say "Archive the job: its applications say so, and a new application is refused"
cqrs jobs archive job-compiler --version 2
cqrs applications get app-grace --min-position "$LAST_POSITION"
expect "ARCHIVED"
refused 9 applications create --job job-compiler --first-name Ada --last-name Lovelace \
  --email ada.lovelace@example.com --current-position "Analyst"

say "Read-model status: applied position and lag per partition"
cqrs status
expect "LAG"

say "Rebuild the read models from the event store's history"
models() { quiet accounts list --json; quiet orders list --json; quiet customers list --json; quiet jobs list --json; quiet applications list --json; }
before="$(models)"
cqrs rebuild
after="$(models)"
[ "$before" = "$after" ] || fail "the read models changed after the rebuild"
ok "the rebuilt read models are identical to the live ones"

printf '\n%sThe story is told: %d steps.%s\n' "$BOLD" "$step_number" "$RESET"
