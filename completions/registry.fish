# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_registry_global_optspecs
    string join \n data-dir= config= json h/help V/version
end

function __fish_registry_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_registry_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_registry_using_subcommand
    set -l cmd (__fish_registry_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c registry -n "__fish_registry_needs_command" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_needs_command" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_needs_command" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c registry -n "__fish_registry_needs_command" -s V -l version -d 'Print version'
complete -c registry -n "__fish_registry_needs_command" -f -a "serve" -d 'Run the registry server'
complete -c registry -n "__fish_registry_needs_command" -f -a "user" -d 'Manage users'
complete -c registry -n "__fish_registry_needs_command" -f -a "token" -d 'Manage access tokens'
complete -c registry -n "__fish_registry_needs_command" -f -a "completions" -d 'Print shell completions, or write them for every shell with --out-dir'
complete -c registry -n "__fish_registry_needs_command" -f -a "man" -d 'Print the man page, or write every page with --out-dir'
complete -c registry -n "__fish_registry_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand serve" -l listen -d 'Address to listen on [default: 127.0.0.1:4873]' -r
complete -c registry -n "__fish_registry_using_subcommand serve" -l public-url -d 'The URL clients use to reach the registry, for tarball URLs (default: the request\'s Host)' -r
complete -c registry -n "__fish_registry_using_subcommand serve" -l registration -d 'Whether `npm adduser` may create accounts' -r -f -a "closed\t''
open\t''"
complete -c registry -n "__fish_registry_using_subcommand serve" -l log-level -d 'Log filter: error, warn, info, debug, trace' -r
complete -c registry -n "__fish_registry_using_subcommand serve" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand serve" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand serve" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand serve" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add help" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add help" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add help" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add help" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add help" -f -a "add" -d 'Create a user (asks for the password on a terminal)'
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from add" -l email -d 'The user\'s email address' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from add" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from add" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from add" -l admin -d 'Give the user administrator rights'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from add" -l password-stdin -d 'Read the password from the first line of standard input'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from add" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "add" -d 'Create a user (asks for the password on a terminal)'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand token; and not __fish_seen_subcommand_from create help" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand token; and not __fish_seen_subcommand_from create help" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand token; and not __fish_seen_subcommand_from create help" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand token; and not __fish_seen_subcommand_from create help" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand token; and not __fish_seen_subcommand_from create help" -f -a "create" -d 'Create an access token for a user; prints it once'
complete -c registry -n "__fish_registry_using_subcommand token; and not __fish_seen_subcommand_from create help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -l user -d 'The user the token acts as' -r
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -l cidr -d 'Only accept the token from these IPv4 networks (repeatable)' -r
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -l expires -d 'Expire the token after this long: 30d, 12h, 45m' -r
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -l name -d 'A name to tell the token apart in listings' -r
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -l readonly -d 'The token can read and install, never publish or change anything'
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create an access token for a user; prints it once'
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand completions" -l out-dir -d 'Write completions for every shell into this directory' -r -F
complete -c registry -n "__fish_registry_using_subcommand completions" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand completions" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand completions" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand completions" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand man" -l out-dir -d 'Write a page for every command into this directory' -r -F
complete -c registry -n "__fish_registry_using_subcommand man" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand man" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand man" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand man" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token completions man help" -f -a "serve" -d 'Run the registry server'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token completions man help" -f -a "user" -d 'Manage users'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token completions man help" -f -a "token" -d 'Manage access tokens'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token completions man help" -f -a "completions" -d 'Print shell completions, or write them for every shell with --out-dir'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token completions man help" -f -a "man" -d 'Print the man page, or write every page with --out-dir'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "add" -d 'Create a user (asks for the password on a terminal)'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from token" -f -a "create" -d 'Create an access token for a user; prints it once'
