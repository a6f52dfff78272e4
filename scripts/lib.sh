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

# The platform part of the names of Foundry's npm packages with native binaries
# (@foundry-rs/forge-linux-amd64 and so on).
foundry_platform() {
    case "$(uname -s)-$(uname -m)" in
        Linux-x86_64) echo linux-amd64 ;;
        Linux-aarch64 | Linux-arm64) echo linux-arm64 ;;
        Darwin-x86_64) echo darwin-amd64 ;;
        Darwin-arm64) echo darwin-arm64 ;;
        *) return 1 ;;
    esac
}

# Installs the pinned Solidity toolchain (forge, anvil, cast, solc-js, libraries) from npm
# when package-lock.json changed since the last install, and puts the native forge, cast and
# anvil first on PATH.
#
# Never node_modules/.bin/: those are Node wrappers that exit 0 whatever the tool returns
# (foundry-rs/foundry#14781), so a failing test, format check or reverted `cast send` would
# pass, and killing one leaves its anvil running. ADESCROW_FOUNDRY_BIN names a directory with
# a native Foundry of one's own (~/.foundry/bin, say) to use instead of the pinned one.
require_node_toolchain() {
    command -v npm >/dev/null || die "npm not found: install Node.js 20+ (apt-get install nodejs npm)"
    local platform="" dirs=() tool dir
    if [[ -z "${ADESCROW_FOUNDRY_BIN:-}" ]]; then
        platform="$(foundry_platform)" ||
            die "Foundry's npm packages have no binaries for $(uname -s) $(uname -m): install Foundry (https://getfoundry.sh) and set ADESCROW_FOUNDRY_BIN to its bin directory"
    fi
    if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ||
        (-n "$platform" && ! -x node_modules/@foundry-rs/forge-$platform/bin/forge) ]]; then
        say "installing the Solidity toolchain from npm"
        # Not `npm ci`: the Foundry packages list optional per-platform binaries that the
        # registry here does not serve, which `npm ci` treats as an out-of-date lock file.
        # `--no-save` still installs exactly the locked versions and never rewrites the lock.
        npm install --no-audit --no-fund --no-save --loglevel=error
    fi
    for tool in forge cast anvil; do
        if [[ -n "$platform" ]]; then
            dir="$PWD/node_modules/@foundry-rs/$tool-$platform/bin"
            [[ -x "$dir/$tool" ]] ||
                die "npm did not install @foundry-rs/$tool-$platform (the native $tool for this machine): run \`npm install\` and look for errors, or set ADESCROW_FOUNDRY_BIN to a native Foundry's bin directory"
            dirs+=("$dir")
        else
            dir="$(cd "$ADESCROW_FOUNDRY_BIN" 2>/dev/null && pwd)" || die "ADESCROW_FOUNDRY_BIN=$ADESCROW_FOUNDRY_BIN is not a directory"
            [[ -x "$dir/$tool" ]] || die "no $tool in ADESCROW_FOUNDRY_BIN=$ADESCROW_FOUNDRY_BIN"
            # The npm wrappers are the one thing this must not be.
            head -n1 "$dir/$tool" | grep -q '^#!.*node' &&
                die "$dir/$tool is a Node wrapper, which exits 0 whatever $tool returns: point ADESCROW_FOUNDRY_BIN at native binaries"
            dirs=("$dir")
        fi
    done
    PATH="$(IFS=:; echo "${dirs[*]}"):$PATH"
    export PATH
    # forge compiles with solc-js behind this shim unless the user brings a native solc.
    export FOUNDRY_SOLC="${FOUNDRY_SOLC:-$PWD/scripts/solc}"
}

# Debian's Chromium, for the browser tests; installed from Debian's packages when missing.
require_chromium() {
    command -v chromium >/dev/null && return
    say "installing Chromium from Debian's packages (for the browser tests)"
    local sudo=""
    [[ "$(id -u)" == 0 ]] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null ||
        die "cannot install chromium: run \`apt-get install chromium\` as root"
    command -v chromium >/dev/null || die "chromium is still not on PATH after installing it"
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
