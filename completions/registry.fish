# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_registry_global_optspecs
    string join \n data-dir= database-url= config= json q/quiet registry= token= h/help V/version
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
complete -c registry -n "__fish_registry_needs_command" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_needs_command" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_needs_command" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_needs_command" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_needs_command" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_needs_command" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c registry -n "__fish_registry_needs_command" -s V -l version -d 'Print version'
complete -c registry -n "__fish_registry_needs_command" -f -a "serve" -d 'Run the registry server'
complete -c registry -n "__fish_registry_needs_command" -f -a "user" -d 'Manage users'
complete -c registry -n "__fish_registry_needs_command" -f -a "token" -d 'Manage access tokens'
complete -c registry -n "__fish_registry_needs_command" -f -a "package" -d 'Packages: list them, or show one'
complete -c registry -n "__fish_registry_needs_command" -f -a "dist-tag" -d 'Manage a package\'s dist-tags'
complete -c registry -n "__fish_registry_needs_command" -f -a "deprecate" -d 'Deprecate the versions of a package in a semver range (an empty message undeprecates)'
complete -c registry -n "__fish_registry_needs_command" -f -a "unpublish" -d 'Remove a version, or a whole package (its version numbers stay used)'
complete -c registry -n "__fish_registry_needs_command" -f -a "owner" -d 'Manage a package\'s maintainers'
complete -c registry -n "__fish_registry_needs_command" -f -a "org" -d 'Orgs: create them, list them, and manage their members'
complete -c registry -n "__fish_registry_needs_command" -f -a "team" -d 'Teams of an org (ORG:TEAM): create, destroy, and manage their members'
complete -c registry -n "__fish_registry_needs_command" -f -a "access" -d 'Who may read and write packages: public or restricted, and team grants'
complete -c registry -n "__fish_registry_needs_command" -f -a "block" -d 'Take a package (or a name) off the registry, with a reason shown to clients'
complete -c registry -n "__fish_registry_needs_command" -f -a "unblock" -d 'Lift a block'
complete -c registry -n "__fish_registry_needs_command" -f -a "downloads" -d 'Download counts of a package'
complete -c registry -n "__fish_registry_needs_command" -f -a "upstream" -d 'The upstream registries: their state, what is cached, the hit ratio'
complete -c registry -n "__fish_registry_needs_command" -f -a "cache" -d 'The cache of proxied packages'
complete -c registry -n "__fish_registry_needs_command" -f -a "sync" -d 'Mirror a package (and its dependencies) from its upstream, so that it installs while the upstream is down'
complete -c registry -n "__fish_registry_needs_command" -f -a "hook" -d 'Hooks: signed HTTP notifications of changes to a package, a scope or a user\'s packages'
complete -c registry -n "__fish_registry_needs_command" -f -a "gc" -d 'Find tarball blobs no version refers to; --apply deletes them (local only)'
complete -c registry -n "__fish_registry_needs_command" -f -a "doctor" -d 'Check every tarball and packument; exits 1 on a problem (local only)'
complete -c registry -n "__fish_registry_needs_command" -f -a "backup" -d 'Copy the database and tarballs into a new directory, while the registry runs (local only)'
complete -c registry -n "__fish_registry_needs_command" -f -a "restore" -d 'Restore a backup into a new, empty data directory (the registry must be stopped)'
complete -c registry -n "__fish_registry_needs_command" -f -a "migrate" -d 'Copy the registry into PostgreSQL (tarballs into S3 too), then check the copy (local only)'
complete -c registry -n "__fish_registry_needs_command" -f -a "config" -d 'Show the configuration'
complete -c registry -n "__fish_registry_needs_command" -f -a "completions" -d 'Print shell completions, or write them for every shell with --out-dir'
complete -c registry -n "__fish_registry_needs_command" -f -a "man" -d 'Print the man page, or write every page with --out-dir'
complete -c registry -n "__fish_registry_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand serve" -l listen -d 'Address to listen on [default: 127.0.0.1:4873]' -r
complete -c registry -n "__fish_registry_using_subcommand serve" -l public-url -d 'The URL clients use to reach the registry, for tarball URLs (default: the request\'s Host)' -r
complete -c registry -n "__fish_registry_using_subcommand serve" -l registration -d 'Whether `npm adduser` may create accounts' -r -f -a "closed\t''
open\t''"
complete -c registry -n "__fish_registry_using_subcommand serve" -l read-access -d 'Who may read packages: anyone, or only callers with a valid token or credentials' -r -f -a "public\t''
authenticated\t''"
complete -c registry -n "__fish_registry_using_subcommand serve" -l log-level -d 'Log filter: error, warn, info, debug, trace' -r
complete -c registry -n "__fish_registry_using_subcommand serve" -l tls-cert -d 'PEM certificate (chain) to serve HTTPS with; needs --tls-key (or its config key)' -r -F
complete -c registry -n "__fish_registry_using_subcommand serve" -l tls-key -d 'PEM private key of the TLS certificate; needs --tls-cert (or its config key)' -r -F
complete -c registry -n "__fish_registry_using_subcommand serve" -l upstream -d 'Proxy and cache this registry for every name not published here (one upstream named `upstream`; `[[upstreams]]` in the config file for more)' -r
complete -c registry -n "__fish_registry_using_subcommand serve" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand serve" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand serve" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand serve" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand serve" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand serve" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand serve" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand serve" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd rm admin help" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd rm admin help" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd rm admin help" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd rm admin help" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd rm admin help" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd rm admin help" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd rm admin help" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd rm admin help" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd rm admin help" -f -a "add" -d 'Create a user (asks for the password on a terminal)'
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd rm admin help" -f -a "list" -d 'List users'
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd rm admin help" -f -a "show" -d 'Show a user'
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd rm admin help" -f -a "passwd" -d 'Set a user\'s password (asks on a terminal, or --password-stdin)'
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd rm admin help" -f -a "rm" -d 'Delete a user and their tokens'
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd rm admin help" -f -a "admin" -d 'Grant administrator rights, or withdraw them with --revoke'
complete -c registry -n "__fish_registry_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd rm admin help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from add" -l email -d 'The user\'s email address' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from add" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from add" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from add" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from add" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from add" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from add" -l admin -d 'Give the user administrator rights'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from add" -l password-stdin -d 'Read the password from the first line of standard input'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from add" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from list" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from list" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from list" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from list" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from list" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from list" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from show" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from show" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from show" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from show" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from show" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from show" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from passwd" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from passwd" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from passwd" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from passwd" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from passwd" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from passwd" -l password-stdin -d 'Read the password from the first line of standard input'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from passwd" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from passwd" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from passwd" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from rm" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from rm" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from rm" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from rm" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from rm" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from rm" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from rm" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from admin" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from admin" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from admin" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from admin" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from admin" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from admin" -l revoke -d 'Withdraw the rights instead'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from admin" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from admin" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from admin" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "add" -d 'Create a user (asks for the password on a terminal)'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "list" -d 'List users'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show a user'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "passwd" -d 'Set a user\'s password (asks on a terminal, or --password-stdin)'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Delete a user and their tokens'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "admin" -d 'Grant administrator rights, or withdraw them with --revoke'
complete -c registry -n "__fish_registry_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -f -a "create" -d 'Create an access token for a user; prints it once'
complete -c registry -n "__fish_registry_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -f -a "list" -d 'List tokens (never their secrets): of a user, or of everyone'
complete -c registry -n "__fish_registry_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -f -a "revoke" -d 'Revoke a token by its key (or the token itself)'
complete -c registry -n "__fish_registry_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -l user -d 'The user the token acts as' -r
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -l cidr -d 'Only accept the token from these IPv4 networks (repeatable)' -r
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -l expires -d 'Expire the token after this long: 30d, 12h, 45m' -r
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -l name -d 'A name to tell the token apart in listings' -r
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -l readonly -d 'The token can read and install, never publish or change anything'
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from list" -l user -d 'Only this user\'s tokens' -r
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from list" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from list" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from list" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from list" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from list" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from list" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from revoke" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from revoke" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from revoke" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from revoke" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from revoke" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from revoke" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from revoke" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create an access token for a user; prints it once'
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "list" -d 'List tokens (never their secrets): of a user, or of everyone'
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke a token by its key (or the token itself)'
complete -c registry -n "__fish_registry_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand package; and not __fish_seen_subcommand_from list info help" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand package; and not __fish_seen_subcommand_from list info help" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand package; and not __fish_seen_subcommand_from list info help" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand package; and not __fish_seen_subcommand_from list info help" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand package; and not __fish_seen_subcommand_from list info help" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand package; and not __fish_seen_subcommand_from list info help" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand package; and not __fish_seen_subcommand_from list info help" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand package; and not __fish_seen_subcommand_from list info help" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand package; and not __fish_seen_subcommand_from list info help" -f -a "list" -d 'List packages'
complete -c registry -n "__fish_registry_using_subcommand package; and not __fish_seen_subcommand_from list info help" -f -a "info" -d 'Versions, tags, maintainers and size of a package'
complete -c registry -n "__fish_registry_using_subcommand package; and not __fish_seen_subcommand_from list info help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand package; and __fish_seen_subcommand_from list" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand package; and __fish_seen_subcommand_from list" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand package; and __fish_seen_subcommand_from list" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand package; and __fish_seen_subcommand_from list" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand package; and __fish_seen_subcommand_from list" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand package; and __fish_seen_subcommand_from list" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand package; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand package; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand package; and __fish_seen_subcommand_from info" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand package; and __fish_seen_subcommand_from info" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand package; and __fish_seen_subcommand_from info" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand package; and __fish_seen_subcommand_from info" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand package; and __fish_seen_subcommand_from info" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand package; and __fish_seen_subcommand_from info" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand package; and __fish_seen_subcommand_from info" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand package; and __fish_seen_subcommand_from info" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand package; and __fish_seen_subcommand_from help" -f -a "list" -d 'List packages'
complete -c registry -n "__fish_registry_using_subcommand package; and __fish_seen_subcommand_from help" -f -a "info" -d 'Versions, tags, maintainers and size of a package'
complete -c registry -n "__fish_registry_using_subcommand package; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and not __fish_seen_subcommand_from ls add rm help" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and not __fish_seen_subcommand_from ls add rm help" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and not __fish_seen_subcommand_from ls add rm help" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and not __fish_seen_subcommand_from ls add rm help" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and not __fish_seen_subcommand_from ls add rm help" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and not __fish_seen_subcommand_from ls add rm help" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and not __fish_seen_subcommand_from ls add rm help" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and not __fish_seen_subcommand_from ls add rm help" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and not __fish_seen_subcommand_from ls add rm help" -f -a "ls" -d 'List a package\'s tags'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and not __fish_seen_subcommand_from ls add rm help" -f -a "add" -d 'Point a tag at a version: NAME@VERSION TAG'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and not __fish_seen_subcommand_from ls add rm help" -f -a "rm" -d 'Remove a tag (never latest)'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and not __fish_seen_subcommand_from ls add rm help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from ls" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from ls" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from ls" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from ls" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from ls" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from ls" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from add" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from add" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from add" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from add" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from add" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from add" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from rm" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from rm" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from rm" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from rm" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from rm" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from rm" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from rm" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List a package\'s tags'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from help" -f -a "add" -d 'Point a tag at a version: NAME@VERSION TAG'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Remove a tag (never latest)'
complete -c registry -n "__fish_registry_using_subcommand dist-tag; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand deprecate" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand deprecate" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand deprecate" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand deprecate" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand deprecate" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand deprecate" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand deprecate" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand deprecate" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand unpublish" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand unpublish" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand unpublish" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand unpublish" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand unpublish" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand unpublish" -s y -l yes -d 'Do not ask for confirmation (required when stdin is not a terminal)'
complete -c registry -n "__fish_registry_using_subcommand unpublish" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand unpublish" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand unpublish" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand owner; and not __fish_seen_subcommand_from ls add rm help" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand owner; and not __fish_seen_subcommand_from ls add rm help" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand owner; and not __fish_seen_subcommand_from ls add rm help" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand owner; and not __fish_seen_subcommand_from ls add rm help" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand owner; and not __fish_seen_subcommand_from ls add rm help" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand owner; and not __fish_seen_subcommand_from ls add rm help" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand owner; and not __fish_seen_subcommand_from ls add rm help" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand owner; and not __fish_seen_subcommand_from ls add rm help" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand owner; and not __fish_seen_subcommand_from ls add rm help" -f -a "ls" -d 'List a package\'s maintainers'
complete -c registry -n "__fish_registry_using_subcommand owner; and not __fish_seen_subcommand_from ls add rm help" -f -a "add" -d 'Add a maintainer: USER PACKAGE'
complete -c registry -n "__fish_registry_using_subcommand owner; and not __fish_seen_subcommand_from ls add rm help" -f -a "rm" -d 'Remove a maintainer (never the last): USER PACKAGE'
complete -c registry -n "__fish_registry_using_subcommand owner; and not __fish_seen_subcommand_from ls add rm help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from ls" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from ls" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from ls" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from ls" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from ls" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from ls" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from add" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from add" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from add" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from add" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from add" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from add" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from rm" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from rm" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from rm" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from rm" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from rm" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from rm" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from rm" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List a package\'s maintainers'
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a maintainer: USER PACKAGE'
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Remove a maintainer (never the last): USER PACKAGE'
complete -c registry -n "__fish_registry_using_subcommand owner; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand org; and not __fish_seen_subcommand_from create ls set rm help" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand org; and not __fish_seen_subcommand_from create ls set rm help" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand org; and not __fish_seen_subcommand_from create ls set rm help" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand org; and not __fish_seen_subcommand_from create ls set rm help" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand org; and not __fish_seen_subcommand_from create ls set rm help" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand org; and not __fish_seen_subcommand_from create ls set rm help" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand org; and not __fish_seen_subcommand_from create ls set rm help" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand org; and not __fish_seen_subcommand_from create ls set rm help" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand org; and not __fish_seen_subcommand_from create ls set rm help" -f -a "create" -d 'Create an org (administrators only), with its first owner and its `developers` team'
complete -c registry -n "__fish_registry_using_subcommand org; and not __fish_seen_subcommand_from create ls set rm help" -f -a "ls" -d 'Every org with its member count; or, given ORG, its members and their roles'
complete -c registry -n "__fish_registry_using_subcommand org; and not __fish_seen_subcommand_from create ls set rm help" -f -a "set" -d 'Add a user to an org (and its `developers` team), or change their role'
complete -c registry -n "__fish_registry_using_subcommand org; and not __fish_seen_subcommand_from create ls set rm help" -f -a "rm" -d 'Remove a user from an org and all of its teams (never its last owner)'
complete -c registry -n "__fish_registry_using_subcommand org; and not __fish_seen_subcommand_from create ls set rm help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from create" -l owner -d 'The user who owns the org at first' -r
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from create" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from create" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from create" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from create" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from create" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from create" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from ls" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from ls" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from ls" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from ls" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from ls" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from ls" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from set" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from set" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from set" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from set" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from set" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from set" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from set" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from rm" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from rm" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from rm" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from rm" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from rm" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from rm" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from rm" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create an org (administrators only), with its first owner and its `developers` team'
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from help" -f -a "ls" -d 'Every org with its member count; or, given ORG, its members and their roles'
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from help" -f -a "set" -d 'Add a user to an org (and its `developers` team), or change their role'
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Remove a user from an org and all of its teams (never its last owner)'
complete -c registry -n "__fish_registry_using_subcommand org; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand team; and not __fish_seen_subcommand_from create destroy add rm ls help" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand team; and not __fish_seen_subcommand_from create destroy add rm ls help" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand team; and not __fish_seen_subcommand_from create destroy add rm ls help" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand team; and not __fish_seen_subcommand_from create destroy add rm ls help" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand team; and not __fish_seen_subcommand_from create destroy add rm ls help" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand team; and not __fish_seen_subcommand_from create destroy add rm ls help" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand team; and not __fish_seen_subcommand_from create destroy add rm ls help" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand team; and not __fish_seen_subcommand_from create destroy add rm ls help" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand team; and not __fish_seen_subcommand_from create destroy add rm ls help" -f -a "create" -d 'Create a team in an org'
complete -c registry -n "__fish_registry_using_subcommand team; and not __fish_seen_subcommand_from create destroy add rm ls help" -f -a "destroy" -d 'Delete a team (its members stay in the org; its grants go)'
complete -c registry -n "__fish_registry_using_subcommand team; and not __fish_seen_subcommand_from create destroy add rm ls help" -f -a "add" -d 'Add a member of the org to a team'
complete -c registry -n "__fish_registry_using_subcommand team; and not __fish_seen_subcommand_from create destroy add rm ls help" -f -a "rm" -d 'Remove a user from a team'
complete -c registry -n "__fish_registry_using_subcommand team; and not __fish_seen_subcommand_from create destroy add rm ls help" -f -a "ls" -d 'The teams of an org (ORG), or the members of a team (ORG:TEAM)'
complete -c registry -n "__fish_registry_using_subcommand team; and not __fish_seen_subcommand_from create destroy add rm ls help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from create" -l description -d 'What the team is for' -r
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from create" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from create" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from create" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from create" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from create" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from create" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from destroy" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from destroy" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from destroy" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from destroy" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from destroy" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from destroy" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from destroy" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from destroy" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from add" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from add" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from add" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from add" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from add" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from add" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from rm" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from rm" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from rm" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from rm" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from rm" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from rm" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from rm" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from ls" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from ls" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from ls" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from ls" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from ls" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from ls" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create a team in an org'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from help" -f -a "destroy" -d 'Delete a team (its members stay in the org; its grants go)'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a member of the org to a team'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Remove a user from a team'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from help" -f -a "ls" -d 'The teams of an org (ORG), or the members of a team (ORG:TEAM)'
complete -c registry -n "__fish_registry_using_subcommand team; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand access; and not __fish_seen_subcommand_from get set grant revoke ls help" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand access; and not __fish_seen_subcommand_from get set grant revoke ls help" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand access; and not __fish_seen_subcommand_from get set grant revoke ls help" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand access; and not __fish_seen_subcommand_from get set grant revoke ls help" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand access; and not __fish_seen_subcommand_from get set grant revoke ls help" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand access; and not __fish_seen_subcommand_from get set grant revoke ls help" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand access; and not __fish_seen_subcommand_from get set grant revoke ls help" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand access; and not __fish_seen_subcommand_from get set grant revoke ls help" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand access; and not __fish_seen_subcommand_from get set grant revoke ls help" -f -a "get" -d 'Whether a package is public or restricted'
complete -c registry -n "__fish_registry_using_subcommand access; and not __fish_seen_subcommand_from get set grant revoke ls help" -f -a "set" -d 'Make a package public, or restricted (readable only by its maintainers, the teams granted it and the owners and admins of its org)'
complete -c registry -n "__fish_registry_using_subcommand access; and not __fish_seen_subcommand_from get set grant revoke ls help" -f -a "grant" -d 'Grant a team a package, read-only or read-write'
complete -c registry -n "__fish_registry_using_subcommand access; and not __fish_seen_subcommand_from get set grant revoke ls help" -f -a "revoke" -d 'Withdraw a team\'s grant of a package'
complete -c registry -n "__fish_registry_using_subcommand access; and not __fish_seen_subcommand_from get set grant revoke ls help" -f -a "ls" -d 'The packages of an org, team or user, or the collaborators of a package'
complete -c registry -n "__fish_registry_using_subcommand access; and not __fish_seen_subcommand_from get set grant revoke ls help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from get" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from get" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from get" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from get" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from get" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from get" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from set" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from set" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from set" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from set" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from set" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from set" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from set" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from grant" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from grant" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from grant" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from grant" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from grant" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from grant" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from grant" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from grant" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from revoke" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from revoke" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from revoke" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from revoke" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from revoke" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from revoke" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from revoke" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from ls" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from ls" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from ls" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from ls" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from ls" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from ls" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from ls" -f -a "packages" -d 'The packages of an org (ORG), a team (ORG:TEAM) or a user (USER), with read or write'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from ls" -f -a "collaborators" -d 'The users who may read or write a package'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from ls" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from help" -f -a "get" -d 'Whether a package is public or restricted'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from help" -f -a "set" -d 'Make a package public, or restricted (readable only by its maintainers, the teams granted it and the owners and admins of its org)'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from help" -f -a "grant" -d 'Grant a team a package, read-only or read-write'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Withdraw a team\'s grant of a package'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from help" -f -a "ls" -d 'The packages of an org, team or user, or the collaborators of a package'
complete -c registry -n "__fish_registry_using_subcommand access; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand block" -l reason -d 'Why: shown to every client that asks for the package' -r
complete -c registry -n "__fish_registry_using_subcommand block" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand block" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand block" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand block" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand block" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand block" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand block" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand block" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand unblock" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand unblock" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand unblock" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand unblock" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand unblock" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand unblock" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand unblock" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand unblock" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand downloads" -l top -d 'Instead of one package, the N most downloaded packages of the range' -r
complete -c registry -n "__fish_registry_using_subcommand downloads" -l range -d 'last-day, last-week, last-month, or YYYY-MM-DD:YYYY-MM-DD' -r
complete -c registry -n "__fish_registry_using_subcommand downloads" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand downloads" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand downloads" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand downloads" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand downloads" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand downloads" -l by-version -d 'Totals per version instead of per day'
complete -c registry -n "__fish_registry_using_subcommand downloads" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand downloads" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand downloads" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand upstream; and not __fish_seen_subcommand_from list help" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand upstream; and not __fish_seen_subcommand_from list help" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand upstream; and not __fish_seen_subcommand_from list help" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand upstream; and not __fish_seen_subcommand_from list help" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand upstream; and not __fish_seen_subcommand_from list help" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand upstream; and not __fish_seen_subcommand_from list help" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand upstream; and not __fish_seen_subcommand_from list help" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand upstream; and not __fish_seen_subcommand_from list help" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand upstream; and not __fish_seen_subcommand_from list help" -f -a "list" -d 'Each upstream in the order it is tried: state, failures, cached packages and bytes, and the hit ratio since the daemon started (state and counters over --registry only)'
complete -c registry -n "__fish_registry_using_subcommand upstream; and not __fish_seen_subcommand_from list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand upstream; and __fish_seen_subcommand_from list" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand upstream; and __fish_seen_subcommand_from list" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand upstream; and __fish_seen_subcommand_from list" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand upstream; and __fish_seen_subcommand_from list" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand upstream; and __fish_seen_subcommand_from list" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand upstream; and __fish_seen_subcommand_from list" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand upstream; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand upstream; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand upstream; and __fish_seen_subcommand_from help" -f -a "list" -d 'Each upstream in the order it is tried: state, failures, cached packages and bytes, and the hit ratio since the daemon started (state and counters over --registry only)'
complete -c registry -n "__fish_registry_using_subcommand upstream; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand cache; and not __fish_seen_subcommand_from forget help" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand cache; and not __fish_seen_subcommand_from forget help" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand cache; and not __fish_seen_subcommand_from forget help" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand cache; and not __fish_seen_subcommand_from forget help" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand cache; and not __fish_seen_subcommand_from forget help" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand cache; and not __fish_seen_subcommand_from forget help" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand cache; and not __fish_seen_subcommand_from forget help" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand cache; and not __fish_seen_subcommand_from forget help" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand cache; and not __fish_seen_subcommand_from forget help" -f -a "forget" -d 'Drop everything cached of a proxied package; `registry gc` reclaims its tarballs'
complete -c registry -n "__fish_registry_using_subcommand cache; and not __fish_seen_subcommand_from forget help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand cache; and __fish_seen_subcommand_from forget" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand cache; and __fish_seen_subcommand_from forget" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand cache; and __fish_seen_subcommand_from forget" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand cache; and __fish_seen_subcommand_from forget" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand cache; and __fish_seen_subcommand_from forget" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand cache; and __fish_seen_subcommand_from forget" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand cache; and __fish_seen_subcommand_from forget" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand cache; and __fish_seen_subcommand_from forget" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "forget" -d 'Drop everything cached of a proxied package; `registry gc` reclaims its tarballs'
complete -c registry -n "__fish_registry_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand sync" -l versions -d 'Only these versions, comma-separated: 1.0.0,1.0.1 (default: every version)' -r
complete -c registry -n "__fish_registry_using_subcommand sync" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand sync" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand sync" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand sync" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand sync" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand sync" -l no-deps -d 'Only this package, not its dependencies'
complete -c registry -n "__fish_registry_using_subcommand sync" -l wait -d 'Wait until the package and its dependencies are synced; exits 1 if any failed (locally, the daemon serving the data directory runs the sync)'
complete -c registry -n "__fish_registry_using_subcommand sync" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand sync" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand sync" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand hook; and not __fish_seen_subcommand_from ls add rm test deliveries help" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand hook; and not __fish_seen_subcommand_from ls add rm test deliveries help" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and not __fish_seen_subcommand_from ls add rm test deliveries help" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand hook; and not __fish_seen_subcommand_from ls add rm test deliveries help" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and not __fish_seen_subcommand_from ls add rm test deliveries help" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and not __fish_seen_subcommand_from ls add rm test deliveries help" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand hook; and not __fish_seen_subcommand_from ls add rm test deliveries help" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand hook; and not __fish_seen_subcommand_from ls add rm test deliveries help" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand hook; and not __fish_seen_subcommand_from ls add rm test deliveries help" -f -a "ls" -d 'List hooks (remotely: the token\'s own, every hook for an administrator; locally: all), optionally only those on one package, @scope or ~user'
complete -c registry -n "__fish_registry_using_subcommand hook; and not __fish_seen_subcommand_from ls add rm test deliveries help" -f -a "add" -d 'Add a hook on a package, a @scope or a ~user (npm\'s spelling); --type overrides the guess'
complete -c registry -n "__fish_registry_using_subcommand hook; and not __fish_seen_subcommand_from ls add rm test deliveries help" -f -a "rm" -d 'Remove a hook (its undelivered events are dropped)'
complete -c registry -n "__fish_registry_using_subcommand hook; and not __fish_seen_subcommand_from ls add rm test deliveries help" -f -a "test" -d 'Queue a signed `ping` event to a hook\'s endpoint'
complete -c registry -n "__fish_registry_using_subcommand hook; and not __fish_seen_subcommand_from ls add rm test deliveries help" -f -a "deliveries" -d 'A hook\'s recent deliveries: event, status, attempts, response code, duration'
complete -c registry -n "__fish_registry_using_subcommand hook; and not __fish_seen_subcommand_from ls add rm test deliveries help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from ls" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from ls" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from ls" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from ls" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from ls" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from ls" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from add" -l type -d 'What NAME is (default: scope for @scope, owner for ~user, else package)' -r -f -a "package\t''
scope\t''
owner\t''"
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from add" -l user -d 'The hook\'s owner (local mode, where there is no caller; remotely the token\'s user)' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from add" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from add" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from add" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from add" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from add" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from add" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from rm" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from rm" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from rm" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from rm" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from rm" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from rm" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from rm" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from test" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from test" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from test" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from test" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from test" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from test" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from test" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from deliveries" -l limit -d 'How many of the most recent deliveries (at most 100)' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from deliveries" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from deliveries" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from deliveries" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from deliveries" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from deliveries" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from deliveries" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from deliveries" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from deliveries" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List hooks (remotely: the token\'s own, every hook for an administrator; locally: all), optionally only those on one package, @scope or ~user'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a hook on a package, a @scope or a ~user (npm\'s spelling); --type overrides the guess'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Remove a hook (its undelivered events are dropped)'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "test" -d 'Queue a signed `ping` event to a hook\'s endpoint'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "deliveries" -d 'A hook\'s recent deliveries: event, status, attempts, response code, duration'
complete -c registry -n "__fish_registry_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand gc" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand gc" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand gc" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand gc" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand gc" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand gc" -l apply -d 'Delete the orphan blobs (default: only list them)'
complete -c registry -n "__fish_registry_using_subcommand gc" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand gc" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand gc" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand doctor" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand doctor" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand doctor" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand doctor" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand doctor" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand doctor" -l repair -d 'Recompute stale packument fragments (missing tarballs need a backup)'
complete -c registry -n "__fish_registry_using_subcommand doctor" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand doctor" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand backup" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand backup" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand backup" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand backup" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand backup" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand backup" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand backup" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand backup" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand restore" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand restore" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand restore" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand restore" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand restore" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand restore" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand restore" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand restore" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand migrate" -l to -d 'The PostgreSQL database to copy into, postgres://USER:PASSWORD@HOST:5432/DB; it must hold no data (a new database, or a new schema: ?options=-csearch_path%3DNAME)' -r
complete -c registry -n "__fish_registry_using_subcommand migrate" -l blobs-url -d 'Copy the tarballs into this bucket too, s3://BUCKET[/PREFIX], with the configured s3_* settings and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (default: they stay where they are)' -r
complete -c registry -n "__fish_registry_using_subcommand migrate" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand migrate" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand migrate" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand migrate" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand migrate" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand migrate" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand migrate" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand migrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c registry -n "__fish_registry_using_subcommand config; and not __fish_seen_subcommand_from show help" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand config; and not __fish_seen_subcommand_from show help" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand config; and not __fish_seen_subcommand_from show help" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand config; and not __fish_seen_subcommand_from show help" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand config; and not __fish_seen_subcommand_from show help" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand config; and not __fish_seen_subcommand_from show help" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand config; and not __fish_seen_subcommand_from show help" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand config; and not __fish_seen_subcommand_from show help" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand config; and not __fish_seen_subcommand_from show help" -f -a "show" -d 'The effective configuration and where each value came from'
complete -c registry -n "__fish_registry_using_subcommand config; and not __fish_seen_subcommand_from show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand config; and __fish_seen_subcommand_from show" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand config; and __fish_seen_subcommand_from show" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand config; and __fish_seen_subcommand_from show" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand config; and __fish_seen_subcommand_from show" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand config; and __fish_seen_subcommand_from show" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand config; and __fish_seen_subcommand_from show" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand config; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand config; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "show" -d 'The effective configuration and where each value came from'
complete -c registry -n "__fish_registry_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand completions" -l out-dir -d 'Write completions for every shell into this directory' -r -F
complete -c registry -n "__fish_registry_using_subcommand completions" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand completions" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand completions" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand completions" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand completions" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand completions" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand completions" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand completions" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand man" -l out-dir -d 'Write a page for every command into this directory' -r -F
complete -c registry -n "__fish_registry_using_subcommand man" -l data-dir -d 'The registry\'s data directory (database and tarballs)' -r -F
complete -c registry -n "__fish_registry_using_subcommand man" -l database-url -d 'PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty: SQLite in the data directory)' -r
complete -c registry -n "__fish_registry_using_subcommand man" -l config -d 'A TOML configuration file' -r -F
complete -c registry -n "__fish_registry_using_subcommand man" -l registry -d 'Administer a running registry over HTTP instead of a data directory' -r
complete -c registry -n "__fish_registry_using_subcommand man" -l token -d 'The token for --registry (default: the one npm saved in ~/.npmrc for that URL)' -r
complete -c registry -n "__fish_registry_using_subcommand man" -l json -d 'Print machine-readable JSON instead of text'
complete -c registry -n "__fish_registry_using_subcommand man" -s q -l quiet -d 'Print nothing but errors (and what was asked for, like a new token)'
complete -c registry -n "__fish_registry_using_subcommand man" -s h -l help -d 'Print help'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "serve" -d 'Run the registry server'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "user" -d 'Manage users'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "token" -d 'Manage access tokens'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "package" -d 'Packages: list them, or show one'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "dist-tag" -d 'Manage a package\'s dist-tags'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "deprecate" -d 'Deprecate the versions of a package in a semver range (an empty message undeprecates)'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "unpublish" -d 'Remove a version, or a whole package (its version numbers stay used)'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "owner" -d 'Manage a package\'s maintainers'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "org" -d 'Orgs: create them, list them, and manage their members'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "team" -d 'Teams of an org (ORG:TEAM): create, destroy, and manage their members'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "access" -d 'Who may read and write packages: public or restricted, and team grants'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "block" -d 'Take a package (or a name) off the registry, with a reason shown to clients'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "unblock" -d 'Lift a block'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "downloads" -d 'Download counts of a package'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "upstream" -d 'The upstream registries: their state, what is cached, the hit ratio'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "cache" -d 'The cache of proxied packages'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "sync" -d 'Mirror a package (and its dependencies) from its upstream, so that it installs while the upstream is down'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "hook" -d 'Hooks: signed HTTP notifications of changes to a package, a scope or a user\'s packages'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "gc" -d 'Find tarball blobs no version refers to; --apply deletes them (local only)'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "doctor" -d 'Check every tarball and packument; exits 1 on a problem (local only)'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "backup" -d 'Copy the database and tarballs into a new directory, while the registry runs (local only)'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "restore" -d 'Restore a backup into a new, empty data directory (the registry must be stopped)'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "migrate" -d 'Copy the registry into PostgreSQL (tarballs into S3 too), then check the copy (local only)'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "config" -d 'Show the configuration'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "completions" -d 'Print shell completions, or write them for every shell with --out-dir'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "man" -d 'Print the man page, or write every page with --out-dir'
complete -c registry -n "__fish_registry_using_subcommand help; and not __fish_seen_subcommand_from serve user token package dist-tag deprecate unpublish owner org team access block unblock downloads upstream cache sync hook gc doctor backup restore migrate config completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "add" -d 'Create a user (asks for the password on a terminal)'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "list" -d 'List users'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "show" -d 'Show a user'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "passwd" -d 'Set a user\'s password (asks on a terminal, or --password-stdin)'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "rm" -d 'Delete a user and their tokens'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "admin" -d 'Grant administrator rights, or withdraw them with --revoke'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from token" -f -a "create" -d 'Create an access token for a user; prints it once'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from token" -f -a "list" -d 'List tokens (never their secrets): of a user, or of everyone'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from token" -f -a "revoke" -d 'Revoke a token by its key (or the token itself)'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from package" -f -a "list" -d 'List packages'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from package" -f -a "info" -d 'Versions, tags, maintainers and size of a package'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from dist-tag" -f -a "ls" -d 'List a package\'s tags'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from dist-tag" -f -a "add" -d 'Point a tag at a version: NAME@VERSION TAG'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from dist-tag" -f -a "rm" -d 'Remove a tag (never latest)'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from owner" -f -a "ls" -d 'List a package\'s maintainers'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from owner" -f -a "add" -d 'Add a maintainer: USER PACKAGE'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from owner" -f -a "rm" -d 'Remove a maintainer (never the last): USER PACKAGE'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from org" -f -a "create" -d 'Create an org (administrators only), with its first owner and its `developers` team'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from org" -f -a "ls" -d 'Every org with its member count; or, given ORG, its members and their roles'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from org" -f -a "set" -d 'Add a user to an org (and its `developers` team), or change their role'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from org" -f -a "rm" -d 'Remove a user from an org and all of its teams (never its last owner)'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from team" -f -a "create" -d 'Create a team in an org'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from team" -f -a "destroy" -d 'Delete a team (its members stay in the org; its grants go)'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from team" -f -a "add" -d 'Add a member of the org to a team'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from team" -f -a "rm" -d 'Remove a user from a team'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from team" -f -a "ls" -d 'The teams of an org (ORG), or the members of a team (ORG:TEAM)'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from access" -f -a "get" -d 'Whether a package is public or restricted'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from access" -f -a "set" -d 'Make a package public, or restricted (readable only by its maintainers, the teams granted it and the owners and admins of its org)'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from access" -f -a "grant" -d 'Grant a team a package, read-only or read-write'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from access" -f -a "revoke" -d 'Withdraw a team\'s grant of a package'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from access" -f -a "ls" -d 'The packages of an org, team or user, or the collaborators of a package'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from upstream" -f -a "list" -d 'Each upstream in the order it is tried: state, failures, cached packages and bytes, and the hit ratio since the daemon started (state and counters over --registry only)'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from cache" -f -a "forget" -d 'Drop everything cached of a proxied package; `registry gc` reclaims its tarballs'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "ls" -d 'List hooks (remotely: the token\'s own, every hook for an administrator; locally: all), optionally only those on one package, @scope or ~user'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "add" -d 'Add a hook on a package, a @scope or a ~user (npm\'s spelling); --type overrides the guess'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "rm" -d 'Remove a hook (its undelivered events are dropped)'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "test" -d 'Queue a signed `ping` event to a hook\'s endpoint'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "deliveries" -d 'A hook\'s recent deliveries: event, status, attempts, response code, duration'
complete -c registry -n "__fish_registry_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "show" -d 'The effective configuration and where each value came from'
