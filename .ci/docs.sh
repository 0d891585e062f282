#!/usr/bin/env bash
# CI: the API reference builds from the docstrings with no warning. Run in an environment where
# saddlepoint is installed (the hooks in docs/hooks.py import it for the exports table and the
# command line's --help texts); installs the requirements of the `docs` extra, read from
# pyproject.toml (installing '.[docs]' would build the extension a second time).
set -euo pipefail
cd "$(dirname "$0")/.."

python -c "import saddlepoint" || {
    echo "error: .ci/docs.sh needs saddlepoint installed in the active Python environment" >&2
    exit 1
}

requirements="$(mktemp)"
python - <<'PY' > "$requirements"
import tomllib
extras = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]
print("\n".join(extras["docs"]))
PY
python -m pip install --quiet -r "$requirements"

# --strict: any warning (a docstring griffe cannot parse, a broken cross-reference, a page
# missing from the navigation) fails the build. The site goes to a scratch folder.
echo "+ mkdocs build --strict"
NO_MKDOCS_2_WARNING=1 python -m mkdocs build --strict --site-dir "$(mktemp -d)"
