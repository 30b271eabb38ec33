# bash completion for waggle and waggle-perf.
#
# Both commands are clap programs whose --help lists their subcommands under
# "Commands:" and their options under "Options:"; the completion reads that
# help at completion time, so it follows the installed binary's version
# without being regenerated.

_waggle_help_words() {
    # $1: section name ("Commands" or "Options"); the rest: the command line to ask.
    local section=$1
    shift
    "$@" --help 2>/dev/null | awk -v section="$section:" '
        $0 == section { inside = 1; next }
        /^[A-Z][A-Za-z ]*:$/ { inside = 0 }
        inside && section == "Commands:" && $1 != "help" && $1 ~ /^[a-z]/ { print $1 }
        inside && section == "Options:" {
            for (i = 1; i <= NF; i++) {
                w = $i; sub(/,$/, "", w)
                if (w ~ /^--?[A-Za-z]/) print w
            }
        }'
}

_waggle() {
    local cur prev cmd sub="" i
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    cmd=${COMP_WORDS[0]}
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        -*) ;;
        *) sub=${COMP_WORDS[i]}; break ;;
        esac
    done
    case $prev in
    --config)
        COMPREPLY=($(compgen -f -X '!*.toml' -- "$cur") $(compgen -d -- "$cur"))
        return
        ;;
    esac
    if [ -z "$sub" ]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$(_waggle_help_words Options "$cmd")" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$(_waggle_help_words Commands "$cmd")" -- "$cur"))
        fi
    elif [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_waggle_help_words Options "$cmd" "$sub")" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}

complete -F _waggle waggle waggle-perf
