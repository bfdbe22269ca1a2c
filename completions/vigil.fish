# fish completion for vigil(1). Commands and options come from the binary's
# own `vigil help`; program names from the running vigil
# (`vigil status --json`, with -c FILE when the line has one).

function __vigil_bin
    set -l bin (commandline -opc)[1]
    if command -q $bin; or test -x "$bin"
        echo $bin
    else
        echo vigil
    end
end

function __vigil_commands
    set -l bin (__vigil_bin)
    $bin help 2>/dev/null | string replace -rf '^ {1,4}vigil (\S+).*' '$1' | string split '|'
end

# The command on the line so far, or nothing.
function __vigil_verb
    set -l args (commandline -opc)
    set -e args[1]
    set -l skip 0
    for a in $args
        if test $skip = 1
            set skip 0
            continue
        end
        switch $a
            case -c --config -n --lines
                set skip 1
            case '-*'
            case '*'
                echo $a
                return 0
        end
    end
    return 1
end

function __vigil_usage
    set -l bin (__vigil_bin)
    $bin help (__vigil_verb) 2>/dev/null | string replace -rf '^usage: (.*)' '$1'
end

function __vigil_options
    set -l bin (__vigil_bin)
    set -l opts ($bin help (__vigil_verb) 2>/dev/null | string match -ar '(?:^|[\[\] ,])(--?[A-Za-z][A-Za-z-]*)' | string match -r '^--?[A-Za-z][A-Za-z-]*$')
    contains -- -c $opts; and set -a opts --config
    printf '%s\n' $opts --help | sort -u
end

function __vigil_programs
    set -l args (commandline -opc)
    set -l cfg
    for i in (seq (count $args))
        if contains -- $args[$i] -c --config; and test $i -lt (count $args)
            set cfg -c $args[(math $i + 1)]
        end
    end
    set -l usage (__vigil_usage)
    string match -q '*NAME|all*' -- $usage; and echo all
    set -l bin (__vigil_bin)
    $bin status --json $cfg 2>/dev/null | string match -ar '"name"\s*:\s*"([^"\\\\]*)"' | string match -rv '^"name"' | sort -u
end

function __vigil_wants
    set -l usage (__vigil_usage)
    switch $argv[1]
        case program
            string match -q '*NAME*' -- $usage
        case command
            string match -q '*COMMAND*' -- $usage
        case file
            string match -qr 'FILE|PATH' -- $usage
    end
end

complete -c vigil -f
complete -c vigil -n 'not __vigil_verb' -a '(__vigil_commands)'
complete -c vigil -n 'not __vigil_verb' -s c -l config -r -F -d 'config file'
complete -c vigil -n 'not __vigil_verb' -s h -l help -d 'help'
complete -c vigil -n 'not __vigil_verb' -s V -l version -d 'version'
complete -c vigil -n '__vigil_verb; and string match -q -- "-*" (commandline -ct)' -a '(__vigil_options)'
complete -c vigil -n '__vigil_verb; and __vigil_wants program' -a '(__vigil_programs)'
complete -c vigil -n '__vigil_verb; and __vigil_wants command' -a '(__vigil_commands)'
complete -c vigil -n '__vigil_verb; and __vigil_wants file' -F
complete -c vigil -n '__vigil_verb' -s c -l config -r -F
