# bash completion for vigil(1).
#
# Commands and options come from the binary's own `vigil help` and
# `vigil help COMMAND`; program names from the running vigil
# (`vigil status --json`, found like any control command: -c on the line,
# else $VIGIL_SOCKET, else ./vigil.toml).

# The commands, one a line, as `vigil help` lists them.
_vigil_commands() {
    "$1" help 2>/dev/null | sed -n 's/^ \{1,4\}vigil \([^ ]*\).*/\1/p' | tr '|' '\n'
}

# The usage line and options of one command.
_vigil_usage() {
    "$1" help "$2" 2>/dev/null | sed -n '1s/^usage: //p'
}
_vigil_options() {
    local opts
    opts=$("$1" help "$2" 2>/dev/null | grep -oE '(^|[][ ,])--?[A-Za-z][A-Za-z-]*' | sed 's/^[][ ,]//')
    printf '%s\n' $opts --help
    [[ $'\n'$opts$'\n' == *$'\n'-c$'\n'* ]] && echo --config
}

# Program names of the running vigil ($2...: -c FILE, when given).
_vigil_programs() {
    local bin=$1
    shift
    local out
    if command -v timeout >/dev/null 2>&1; then
        out=$(timeout 3 "$bin" status --json "$@" 2>/dev/null)
    else
        out=$("$bin" status --json "$@" 2>/dev/null)
    fi
    printf '%s\n' "$out" | grep -oE '"name"[[:space:]]*:[[:space:]]*"[^"\\]*"' |
        sed 's/.*"\([^"]*\)"$/\1/' | sort -u
}

_vigil() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local prev=${COMP_WORDS[COMP_CWORD-1]}
    local bin=${COMP_WORDS[0]}
    [[ $bin == "~"/* ]] && bin=$HOME/${bin#"~/"}
    command -v "$bin" >/dev/null 2>&1 || bin=vigil
    COMPREPLY=()

    local verb="" nargs=0 i w
    local -a cfg=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case $w in
            -c | --config)
                ((i + 1 < COMP_CWORD)) && cfg=(-c "${COMP_WORDS[i + 1]}")
                ((i++)) ;;
            --config=*) cfg=(-c "${w#--config=}") ;;
            -n | --lines) ((i++)) ;;
            -*) ;;
            *) if [[ -z $verb ]]; then verb=$w; else ((nargs++)); fi ;;
        esac
    done

    case $prev in
        -c | --config)
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            return 0 ;;
        -n | --lines) return 0 ;;
    esac

    if [[ -z $verb ]]; then
        if [[ $cur == -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W "-c --config -h --help -V --version" -- "$cur")
        else
            mapfile -t COMPREPLY < <(compgen -W "$(_vigil_commands "$bin")" -- "$cur")
        fi
        return 0
    fi
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_vigil_options "$bin" "$verb" | sort -u)" -- "$cur")
        return 0
    fi

    # What the command takes, from its usage line: NAME (a program; with
    # |all, several), COMMAND, or FILE.
    local usage words=""
    usage=$(_vigil_usage "$bin" "$verb")
    if [[ $usage == *" NAME|all"* || $usage == *"[NAME]"* || $usage == *" NAME "* || $usage == *" NAME" ]]; then
        if [[ $usage == *"NAME|all"* ]]; then
            words="all $(_vigil_programs "$bin" "${cfg[@]}")"
        elif ((nargs == 0)); then
            words=$(_vigil_programs "$bin" "${cfg[@]}")
        fi
    elif [[ $usage == *COMMAND* ]]; then
        ((nargs == 0)) && words=$(_vigil_commands "$bin")
    elif [[ $usage == *FILE* || $usage == *PATH* ]]; then
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return 0
    fi
    [[ -n $words ]] && mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
    return 0
}

complete -F _vigil vigil
