-- wtt's MusicXML opens in the free tools people use: MuseScore 3 and
-- LilyPond (musicxml2ly, then lilypond) render it headless without errors,
-- and the PDFs they write are read back with poppler (pdfinfo, pdftotext).
--
-- What each tool writes in the PDF's text layer (found with pdftotext
-- -bbox on these samples):
--
-- * MuseScore 3 (Debian's musescore3, 3.2.3) writes each TAB note's fret
--   as one word, all of one height; the tempo, measure and page numbers are
--   words of other heights. It does not read <string> and <fret> on import:
--   it frets every note itself at the lowest position (an edited <fret>
--   does not survive an import and export), and it draws the wavy line of a
--   vibrato as a trill line. So its frets are wtt's only where wtt's
--   fingering is the lowest position: the open chords and the arpeggio of
--   the long piece below are compared fret by fret; the techniques sample
--   (frets up the neck) note by note in number only.
-- * LilyPond 2.24 writes no fret numbers: musicxml2ly makes a TabStaff only
--   of a part whose first clef is TAB, so staff 2 becomes a staff of note
--   heads, each single note carrying its <string> as a circled string
--   number, which is text (chords get none). The string numbers of the
--   techniques sample are compared with wtt's.
--
-- Three documents are rendered, not all samples: the suite runs on two
-- cores.

local sys = require "wtt.sys"
local musicxml = require "wtt.tab.out.musicxml"
local tabdoc = require "spec.support.tabdoc"
local tools = require "spec.support.musicxml"

local MSCORE = "/usr/bin/mscore3"
local MUSICXML2LY = "/usr/bin/musicxml2ly"
local LILYPOND = "/usr/bin/lilypond"
local PDFINFO = "/usr/bin/pdfinfo"
local PDFTOTEXT = "/usr/bin/pdftotext"


local function write_doc(dir, name, doc)
    local path = dir .. "/" .. name .. ".musicxml"
    assert(sys.write_file(path, assert(musicxml.encode(doc))))
    return path
end


local function pages(pdf, dir)
    local code, out, err = tools.run({ PDFINFO, pdf }, dir, { timeout = 20 })
    assert.equal(0, code, err)
    return tonumber(out:match("Pages:%s+(%d+)"))
end


-- The numbers a tool writes once per note: among the words of the text
-- layer that are whole numbers, those of the most common height (a title,
-- tempo, time signature, measure or page number has another). Sorted.
local function note_numbers(pdf, dir)
    local code, out, err = tools.run({ PDFTOTEXT, "-bbox", pdf, "-" }, dir,
                                     { timeout = 20 })
    assert.equal(0, code, err)
    local by_height, count = {}, {}
    for y0, y1, text in out:gmatch('<word xMin="[%d.]+" yMin="([%d.]+)" '
                                   .. 'xMax="[%d.]+" yMax="([%d.]+)">'
                                   .. "(%d+)</word>") do
        local h = ("%.1f"):format(tonumber(y1) - tonumber(y0))
        by_height[h] = by_height[h] or {}
        table.insert(by_height[h], tonumber(text))
        count[h] = (count[h] or 0) + 1
    end
    local best
    for h, n in pairs(count) do
        if not best or n > count[best] then
            best = h
        end
    end
    local list = best and by_height[best] or {}
    table.sort(list)
    return list
end


local function sorted_field(doc, field)
    local list = {}
    for _, n in ipairs(doc.notes) do
        list[#list + 1] = n[field]
    end
    table.sort(list)
    return list
end


-- Marks the running test pending, with the reason, when a tool is
-- missing; true then.
local function skipped(missing, what)
    if missing then
        pending("skipped, because " .. missing .. " is not installed "
                .. "(scripts/bootstrap installs " .. what .. ")")
        return true
    end
    return false
end


describe("MuseScore 3 renders wtt's MusicXML", function()
    local dir, missing

    lazy_setup(function()
        missing = tools.missing({ MSCORE, PDFINFO, PDFTOTEXT })
        dir = assert(sys.mkdtemp("wtt-mscore-"))
    end)

    lazy_teardown(function()
        if dir then
            sys.rmtree(dir)
        end
    end)

    -- Renders `doc` to a PDF; fails on a non-zero exit or any error line
    -- (MuseScore logs import problems as "Error at line ...").
    local function render(name, doc)
        local src = write_doc(dir, name, doc)
        local pdf = dir .. "/" .. name .. ".pdf"
        local code, out, err = tools.run({ MSCORE, "-o", pdf, src }, dir, {
            timeout = 120,
            env = { QT_QPA_PLATFORM = "offscreen", XDG_RUNTIME_DIR = dir },
        })
        assert.equal(0, code, out .. err)
        assert.matches("success", out .. err, 1, true)
        assert.is_nil((out .. err):lower():find("error", 1, true), out .. err)
        assert.equal("file", sys.exists(pdf))
        return pdf
    end

    it("draws the open chords on one page with wtt's frets", function()
        if skipped(missing, "it") then
            return
        end
        local doc = tabdoc.sample("chords")
        local pdf = render("chords", doc)
        assert.equal(1, pages(pdf, dir))
        assert.same(sorted_field(doc, "fret"), note_numbers(pdf, dir))
    end)

    it("draws every technique without an import error, one fret per note",
       function()
        if skipped(missing, "it") then
            return
        end
        local doc = tabdoc.sample("techniques")
        local pdf = render("techniques", doc)
        assert.equal(1, pages(pdf, dir))
        assert.equal(#doc.notes, #note_numbers(pdf, dir))
    end)

    it("lays 40 measures out over more than one page, every fret drawn",
       function()
        if skipped(missing, "it") then
            return
        end
        local doc = tabdoc.large(360)
        assert.equal(40, #doc.measures)
        local pdf = render("long", doc)
        local n = pages(pdf, dir)
        assert.truthy(n >= 2 and n <= 4, "pages: " .. tostring(n))
        assert.same(sorted_field(doc, "fret"), note_numbers(pdf, dir))
    end)
end)


describe("LilyPond renders wtt's MusicXML through musicxml2ly", function()
    local dir, missing, docs, log

    lazy_setup(function()
        missing = tools.missing({ MUSICXML2LY, LILYPOND, PDFINFO,
                                  PDFTOTEXT })
        dir = assert(sys.mkdtemp("wtt-lilypond-"))
        if missing then
            return
        end
        -- One lilypond run for both files: its start-up is most of the cost.
        docs = { techniques = tabdoc.sample("techniques"),
                 chords = tabdoc.sample("chords") }
        local argv = { LILYPOND, "-dno-point-and-click" }
        log = ""
        for _, name in ipairs({ "techniques", "chords" }) do
            local src = write_doc(dir, name, docs[name])
            local code, out, err = tools.run({ MUSICXML2LY, "--output="
                                               .. name .. ".ly", src }, dir,
                                             { timeout = 60 })
            assert.equal(0, code, out .. err)
            log = log .. out .. err
            argv[#argv + 1] = name .. ".ly"
        end
        local code, out, err = tools.run(argv, dir, { timeout = 180 })
        assert.equal(0, code, out .. err)
        log = log .. out .. err
    end)

    lazy_teardown(function()
        if dir then
            sys.rmtree(dir)
        end
    end)

    it("converts and engraves without an error", function()
        if skipped(missing, "lilypond") then
            return
        end
        -- Warnings are LilyPond's limits, not broken input: a second
        -- <bend> (the release) conflicts with the first, and a vibrato on
        -- the last note leaves its wavy line open.
        assert.is_nil(log:lower():find("error", 1, true), log)
        assert.matches("Success: compilation successfully completed", log,
                       1, true)
    end)

    it("writes each single note's string number in the techniques sample",
       function()
        if skipped(missing, "lilypond") then
            return
        end
        local pdf = dir .. "/techniques.pdf"
        assert.equal(1, pages(pdf, dir))
        assert.same(sorted_field(docs.techniques, "string"),
                    note_numbers(pdf, dir))
    end)

    it("engraves the open chords on one page", function()
        if skipped(missing, "lilypond") then
            return
        end
        assert.equal(1, pages(dir .. "/chords.pdf", dir))
    end)
end)
