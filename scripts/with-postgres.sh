#!/usr/bin/env bash
# with-postgres.sh COMMAND...: runs COMMAND with SWITCHBOARD_TEST_PG_DSN set
# to a new, empty database of its own on the local PostgreSQL server, and
# drops that database when COMMAND ends, however it ends. The PostgreSQL
# tests (core/store) skip without that variable; `make test` runs its tests
# through this script, so that they never skip there.
#
# The server is the machine's own: 127.0.0.1:5432, user postgres, trust
# auth (PGHOST, PGPORT and PGUSER change that). When it does not answer,
# the script starts the local cluster (pg_ctlcluster); when it cannot be
# reached or started, the script fails: a test run without the database
# tests must not pass for one with them.
#
# Exit status: COMMAND's, or 2 when there is no server to run it against.
set -euo pipefail

if [ $# -eq 0 ]; then
	echo "usage: $0 COMMAND [ARG...]" >&2
	exit 2
fi

host=${PGHOST:-127.0.0.1}
port=${PGPORT:-5432}
user=${PGUSER:-postgres}

die() {
	echo "with-postgres.sh: $*" >&2
	exit 2
}

for tool in pg_isready psql; do
	command -v "$tool" >/dev/null || die "$tool not found: install the PostgreSQL client (apt-get install postgresql-client)"
done

# ready: the server answers at host:port.
ready() { pg_isready -q -h "$host" -p "$port" -t 2; }

if ! ready; then
	case "$host" in
	127.0.0.1 | localhost | ::1) ;;
	*) die "no PostgreSQL server answers at $host:$port (not a local address: nothing to start)" ;;
	esac
	command -v pg_ctlcluster >/dev/null ||
		die "no PostgreSQL server answers at $host:$port, and pg_ctlcluster is not here to start one"
	version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
	[ -n "$version" ] || die "no PostgreSQL server answers at $host:$port, and there is no local cluster in /etc/postgresql to start"
	echo "with-postgres.sh: starting the local PostgreSQL $version cluster" >&2
	pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
		die "nothing answers at $host:$port, and the local PostgreSQL $version cluster did not start (pg_ctlcluster $version main start failed)"
	for _ in $(seq 1 30); do
		ready && break
		sleep 1
	done
	ready || die "started the PostgreSQL $version cluster, but nothing answers at $host:$port after 30 s"
fi

psqlc() { psql -X -q -v ON_ERROR_STOP=1 -h "$host" -p "$port" -U "$user" -d postgres "$@"; }

db="switchboard_test_$$_$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')"
psqlc -c "CREATE DATABASE $db" || die "could not create database $db on $host:$port as $user"

drop() {
	psqlc -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" ||
		echo "with-postgres.sh: could not drop database $db; drop it by hand" >&2
}
trap drop EXIT
# An interrupt runs the EXIT trap too, and ends with the signal's status.
trap 'exit 130' INT
trap 'exit 143' TERM

export SWITCHBOARD_TEST_REQUIRE_PG=1
export SWITCHBOARD_TEST_PG_DSN="postgres://$user@$host:$port/$db?sslmode=disable"
status=0
"$@" || status=$?
exit "$status"
