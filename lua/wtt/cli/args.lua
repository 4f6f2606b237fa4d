--- The argument walker of the `wtt` subcommands written in Lua (migrate,
-- queue, subscriber, worker), so that they all read `--name value`,
-- `--name=value`, switches and --help the same way.
--
--     args.parse(argv, {
--         usage = USAGE,                                 -- --help / -h
--         fail = args.failer("migrate"),                 -- fail(code, fmt, ...)
--         options = { ["--dir"] = function(v) opts.dir = v end },
--         switches = { ["--yes"] = function() opts.yes = true end },
--         positional = function(a) ... end,              -- optional
--     })
--
-- A switch takes no value (`--yes=1` is unknown). Without `positional`,
-- any other argument is unknown; with it, only those that start with --.
-- `say` and `failer` are the subcommands' one way to report and to exit
-- on an error.

local _M = {}


--- Writes one formatted line to stdout.
function _M.say(fmt, ...)
    io.stdout:write(fmt:format(...), "\n")
end


--- The error exit of subcommand `name`: fail(code, fmt, ...) writes
-- "wtt <name>: <message>" to stderr, after whatever the command wrote to
-- stdout so far, and exits with `code`.
function _M.failer(name)
    return function(code, fmt, ...)
        io.stdout:flush()
        io.stderr:write("wtt ", name, ": ", fmt:format(...), "\n")
        os.exit(code)
    end
end


function _M.parse(argv, spec)
    local options, switches = spec.options or {}, spec.switches or {}
    local i = 1
    while i <= #argv do
        local a = argv[i]
        local name, value = a:match("^(%-%-[%w%-]+)=(.*)$")
        name = name or a
        if name == "--help" or name == "-h" then
            io.stdout:write(spec.usage)
            os.exit(0)
        elseif switches[name] and not value then
            switches[name]()
        elseif options[name] then
            if not value then
                i = i + 1
                value = argv[i]
                if not value then
                    spec.fail(2, "%s needs a value", name)
                end
            end
            options[name](value)
        elseif spec.positional and a:sub(1, 2) ~= "--" then
            spec.positional(a)
        else
            spec.fail(2, spec.positional and "unknown option '%s' (see --help)"
                         or "unknown argument '%s' (see --help)", a)
        end
        i = i + 1
    end
end


return _M
