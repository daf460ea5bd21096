#!/usr/bin/env bash
# The translations in newsletter/translations (docs/languages.md, docs/contributing.md):
#   scripts/translations.sh update      extract every marked string, merge it into each catalog
#   scripts/translations.sh compile     compile each catalog (.po) to the .mo the service reads
#   scripts/translations.sh add LANG    start a catalog for a new language (e.g. fr)
set -euo pipefail
cd "$(dirname "$0")/.."
pybabel=${PYBABEL:-.venv/bin/pybabel}
catalogs=newsletter/translations
# The template of every marked string, made afresh each time (nothing to keep in git).
template=$(mktemp --suffix=.pot)
trap 'rm -f "$template"' EXIT

extract() {
    # _l is lazy_gettext, for messages translated when shown; N_ marks them for later.
    "$pybabel" -q extract -F babel.cfg -k _l -k N_ --no-location --sort-output \
        --project=newsletter -o "$template" .
}

case "${1:-}" in
    update)
        extract
        "$pybabel" -q update -i "$template" -d "$catalogs" --no-fuzzy-matching --ignore-obsolete
        ;;
    compile)
        "$pybabel" compile --statistics -d "$catalogs"
        ;;
    add)
        extract
        "$pybabel" -q init -i "$template" -d "$catalogs" -l "${2:?give a language code, e.g. fr}"
        ;;
    *)
        echo "usage: $0 update | compile | add LANG" >&2
        exit 2
        ;;
esac
