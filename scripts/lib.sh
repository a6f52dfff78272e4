# Shared helpers for scripts/. Sourced, not run.

# Where Postgres is. Override PGHOST/PGPORT/PGUSER for a server elsewhere.
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

pg_url() { echo "postgres://$PGUSER@$PGHOST:$PGPORT/$1"; }

psql_admin() { psql -X -d postgres "$@"; }

# Fails with a clear message unless Postgres answers.
require_postgres() {
    command -v psql >/dev/null || die "psql not found: install the PostgreSQL client (apt-get install postgresql-client)"
    if ! pg_isready -q -h "$PGHOST" -p "$PGPORT" -t 5 && [[ "$PGHOST" == 127.0.0.1 || "$PGHOST" == localhost ]] &&
        command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
        # A local Debian cluster that is installed but stopped (after a reboot, say): start it.
        say "Postgres is not running; starting the local cluster"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start >&2 || true
        pg_isready -q -h "$PGHOST" -p "$PGPORT" -t 15 || true
    fi
    if ! pg_isready -q -h "$PGHOST" -p "$PGPORT" -t 5; then
        die "Postgres does not answer at $PGHOST:$PGPORT.
  Start it (on these machines: pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start)
  or point PGHOST/PGPORT at a running server."
    fi
    psql_admin -q -c 'SELECT 1' >/dev/null 2>&1 || die "Postgres at $PGHOST:$PGPORT refused user $PGUSER"
}

# Installs the pinned Solidity toolchain (forge, anvil, cast, solc-js, libraries) from npm
# when package-lock.json changed since the last install.
require_node_toolchain() {
    command -v npm >/dev/null || die "npm not found: install Node.js 20+ (apt-get install nodejs npm)"
    if [[ ! -x node_modules/.bin/forge || package-lock.json -nt node_modules/.package-lock.json ]]; then
        say "installing the Solidity toolchain from npm"
        # Not `npm ci`: the Foundry packages list optional per-platform binaries that the
        # registry here does not serve, which `npm ci` treats as an out-of-date lock file.
        # `--no-save` still installs exactly the locked versions and never rewrites the lock.
        npm install --no-audit --no-fund --no-save --loglevel=error
    fi
    export PATH="$PWD/node_modules/.bin:$PATH"
    # forge compiles with solc-js behind this shim unless the user brings a native solc.
    export FOUNDRY_SOLC="${FOUNDRY_SOLC:-$PWD/scripts/solc}"
}

require_cargo() {
    command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
}

# cargo-nextest runs each test in its own process and prints one summary line.
require_nextest() {
    if ! cargo nextest --version >/dev/null 2>&1; then
        say "installing cargo-nextest from crates.io"
        cargo install cargo-nextest --locked
    fi
}
