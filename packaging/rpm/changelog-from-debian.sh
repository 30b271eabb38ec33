#!/usr/bin/env bash
# Prints packaging/debian/changelog (the one changelog we keep) as an rpm
# %changelog body: "* <date> <maintainer> - <version>" followed by "- " items.
set -euo pipefail
file=$1
version="" items=()
while IFS= read -r line; do
    case "$line" in
    waggle\ \(*)
        version=${line#waggle (}
        version=${version%%)*}
        items=()
        ;;
    "  * "*) items+=("- ${line#  \* }") ;;
    "    "*) items[${#items[@]}-1]+=" ${line#    }" ;;
    " -- "*)
        who=${line# -- }
        who=${who%%>*}">"
        when=${line##*>  }
        printf '* %s %s - %s\n' "$(LC_ALL=C date -u -d "$when" '+%a %b %d %Y')" "$who" "$version"
        printf '%s\n' "${items[@]}"
        printf '\n'
        ;;
    esac
done <"$file"
