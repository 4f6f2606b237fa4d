-- `wtt tab NOTES... -o OUT [options]`: tablature from notes files
-- (.notes.csv, .notes.json, .mid) without running the model
-- (docs/tab.md, "Command line and API").

local args = require "wtt.cli.args"
local tab = require "wtt.tab"
local tab_args = require "wtt.cli.tab_args"
local notes_in = require "wtt.tab.notes_in"
local sys = require "wtt.sys"

local USAGE = [[
usage: wtt tab NOTES... [-o OUT] [tab options] [--quiet]

Reads each notes file (Basic Pitch's .notes.csv, wtt's .notes.json, or a
.mid/.midi) and writes its tablature as OUT/<name>.tab.txt (ascii),
<name>.tab.json, <name>.musicxml, <name>.alphatex, <name>.gp, where <name>
is the file name without .notes.csv, .notes.json or .mid. OUT (default .)
must exist. Notes the instrument cannot play are listed on stderr.
Exit status: 0 done, 1 a file failed, 2 bad usage or options.

]] .. tab_args.USAGE

local fail = args.failer("tab")


local function main(argv)
    local raw, inputs, out, quiet = {}, {}, ".", false
    local options = { ["-o"] = function(v) out = v end,
                      ["--output"] = function(v) out = v end }
    for flag in pairs(tab_args.VALUES) do
        options[flag] = function(v) tab_args.take(raw, flag, v) end
    end
    local switches = { ["--quiet"] = function() quiet = true end }
    for flag in pairs(tab_args.SWITCHES) do
        switches[flag] = function() tab_args.take(raw, flag) end
    end
    args.parse(argv, {
        usage = USAGE, fail = fail, options = options, switches = switches,
        positional = function(a) inputs[#inputs + 1] = a end,
    })
    local opts, err = tab_args.options(raw)
    if not opts then
        fail(2, "%s", err)
    end
    if #inputs == 0 then
        fail(2, "no notes files (see --help)")
    end
    if sys.exists(out) ~= "dir" then
        fail(2, "output directory %s does not exist", out)
    end

    local failures = 0
    local function report(name, msg)
        io.stderr:write("wtt tab: ", name, ": ", msg, "\n")
    end
    for _, path in ipairs(inputs) do
        local name = path:match("([^/]+)$") or path
        -- notes_in's errors start with the file name (and the CSV line)
        local notes, err, warnings = notes_in.read(path)
        if not notes then
            failures = failures + 1
            io.stderr:write("wtt tab: ", err, "\n")
        else
            for _, w in ipairs(warnings) do
                io.stderr:write("wtt tab: ", w, "\n")
            end
            opts.title = notes_in.stem(path)
            local doc, files
            doc, err = tab.build(notes, opts)
            if doc then
                for _, line in ipairs(tab_args.unplayable_lines(doc)) do
                    report(name, line)
                end
                files, err = tab_args.write(doc, opts.formats,
                                            out .. "/" .. opts.title)
            end
            if not files then
                failures = failures + 1
                report(name, tostring(err))
            elseif not quiet then
                io.stdout:write(name, ": ", tab_args.summary(doc), " -> ",
                                table.concat(files, ", "), "\n")
            end
        end
    end
    if failures > 0 then
        os.exit(1)
    end
end

main(arg)
