#!/bin/sh
# Entry point of the agent image: enrol on first start, then run the agent.
#   DBBACKUP_SERVER                   control plane URL (required)
#   DBBACKUP_ENROLLMENT_TOKEN_FILE    a file holding a one-time enrolment token, or
#   DBBACKUP_ENROLLMENT_TOKEN         the token itself (it is not kept after enrolment), or
#   DBBACKUP_ADMIN_TOKEN_FILE         an API token allowed to create one (the compose demo)
#   DBBACKUP_LABELS                   k=v,... recorded at enrolment
set -eu
state=${DBBACKUP_STATE_DIR:-/var/lib/dbbackup-agent}
if [ "${1:-run}" = run ] && [ ! -f "$state/agent.json" ]; then
  : "${DBBACKUP_SERVER:?DBBACKUP_SERVER: set it to the control plane URL}"
  token=${DBBACKUP_ENROLLMENT_TOKEN:-}
  if [ -z "$token" ] && [ -n "${DBBACKUP_ENROLLMENT_TOKEN_FILE:-}" ]; then
    token=$(cat "$DBBACKUP_ENROLLMENT_TOKEN_FILE")
  fi
  if [ -z "$token" ] && [ -n "${DBBACKUP_ADMIN_TOKEN_FILE:-}" ]; then
    i=0
    until [ -s "$DBBACKUP_ADMIN_TOKEN_FILE" ]; do
      i=$((i + 1))
      [ "$i" -le 60 ] || { echo "dbbackup-agent: $DBBACKUP_ADMIN_TOKEN_FILE did not appear" >&2; exit 1; }
      sleep 2
    done
    token=$(curl -fsS -X POST -H "authorization: Bearer $(cat "$DBBACKUP_ADMIN_TOKEN_FILE")" \
      -H 'content-type: application/json' -d '{"ttlSeconds":600}' \
      "$DBBACKUP_SERVER/api/v1/enrollment-tokens" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
  fi
  [ -n "$token" ] || { echo "dbbackup-agent: not enrolled: set DBBACKUP_ENROLLMENT_TOKEN(_FILE)" >&2; exit 2; }
  DBBACKUP_ENROLLMENT_TOKEN=$token dbbackup-agent enroll --server "$DBBACKUP_SERVER"
fi
unset DBBACKUP_ENROLLMENT_TOKEN
exec dbbackup-agent "$@"
