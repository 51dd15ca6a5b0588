# Sourced by the .ci scripts: fresh virtualenvs, installed with uv when it can be had (about
# ten times faster than pip here), else with pip.
#
#   make_venv DIR PIP-ARGS...    a new venv at DIR with PIP-ARGS installed into it
#
# .ci/run installs uv once and exports CI_UV; a script run alone installs its own.

ci_uv="${CI_UV:-}"

ensure_uv() {  # ensure_uv SCRATCH-DIR
    if [ -n "$ci_uv" ] && [ -x "$ci_uv" ]; then
        return
    fi
    # The uv wheel carries a static binary: download and unpack it (no venv, no pip install).
    if python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$1/uv-wheel" uv \
        >/dev/null 2>&1 &&
        python3 - "$1" <<'PY'
import glob, os, sys, zipfile

scratch = sys.argv[1]
(wheel,) = glob.glob(os.path.join(scratch, "uv-wheel", "uv-*.whl"))
with zipfile.ZipFile(wheel) as archive:
    (member,) = [name for name in archive.namelist() if name.endswith(".data/scripts/uv")]
    target = os.path.join(scratch, "uv")
    with archive.open(member) as source, open(target, "wb") as out:
        out.write(source.read())
os.chmod(target, 0o755)
PY
    then
        ci_uv="$1/uv"
    else
        echo "uv is not available; installing with pip" >&2
        ci_uv=""
    fi
}

make_venv() {  # make_venv DIR PIP-ARGS...
    local venv="$1"
    shift
    if [ -n "$ci_uv" ]; then
        "$ci_uv" venv --quiet --python python3 "$venv"
        # No --compile-bytecode: the scripts let Python write bytecode on first import instead
        # (see .ci/run), which compiles only the modules the tests use.
        "$ci_uv" pip install --quiet --python "$venv/bin/python" "$@"
    else
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --upgrade pip
        "$venv/bin/python" -m pip install --quiet "$@"
    fi
}
