--- Known passages with the fingering a guitarist would write, for the
-- fingering spec (spec/11-tab/10-finger_spec.lua) and bench/tab.sh.
--
-- Each passage: { name, options (tab.options input), events }. An event is
-- { time_s, duration_s, { {pitch, string, fret}, ... } } (a chord when
-- several); string 1 is the highest, frets count from the capo. `extra`
-- lists pitches played at once that the instrument cannot hold: they must
-- come back as unplayable, not as placed notes.

local _M = {}

local function ev(t, d, ...)
    return { t, d, { ... } }
end


local function n(pitch, string, fret)
    return { pitch, string, fret }
end


-- The open chords G C D Em Am, one strum a second, from `base` semitones up
-- (capo passages play the same shapes higher).
local function open_chords(base)
    local b = base
    return {
        ev(0, 0.9, n(43 + b, 6, 3), n(47 + b, 5, 2), n(50 + b, 4, 0),
           n(55 + b, 3, 0), n(59 + b, 2, 0), n(67 + b, 1, 3)),
        ev(1, 0.9, n(48 + b, 5, 3), n(52 + b, 4, 2), n(55 + b, 3, 0),
           n(60 + b, 2, 1), n(64 + b, 1, 0)),
        ev(2, 0.9, n(50 + b, 4, 0), n(57 + b, 3, 2), n(62 + b, 2, 3),
           n(66 + b, 1, 2)),
        ev(3, 0.9, n(40 + b, 6, 0), n(47 + b, 5, 2), n(52 + b, 4, 2),
           n(55 + b, 3, 0), n(59 + b, 2, 0), n(64 + b, 1, 0)),
        ev(4, 0.9, n(45 + b, 5, 0), n(52 + b, 4, 2), n(57 + b, 3, 2),
           n(60 + b, 2, 1), n(64 + b, 1, 0)),
    }
end


-- A single-note line: { {pitch, string, fret}, ... } every `step` seconds.
local function line(step, list)
    local out = {}
    for i, x in ipairs(list) do
        out[i] = ev((i - 1) * step, step * 0.9, x)
    end
    return out
end


_M.list = {
    { name = "E minor pentatonic, open position", options = {},
      events = line(0.25, {
          n(40, 6, 0), n(43, 6, 3), n(45, 5, 0), n(47, 5, 2), n(50, 4, 0),
          n(52, 4, 2), n(55, 3, 0), n(57, 3, 2), n(59, 2, 0), n(62, 2, 3),
          n(64, 1, 0), n(67, 1, 3), n(64, 1, 0), n(62, 2, 3), n(59, 2, 0),
          n(57, 3, 2), n(55, 3, 0), n(52, 4, 2), n(50, 4, 0), n(47, 5, 2),
          n(45, 5, 0), n(43, 6, 3), n(40, 6, 0) }) },
    { name = "open chords G C D Em Am", options = {},
      events = open_chords(0) },
    { name = "barre F and barre Bm", options = {},
      events = {
          ev(0, 0.9, n(41, 6, 1), n(48, 5, 3), n(53, 4, 3), n(57, 3, 2),
             n(60, 2, 1), n(65, 1, 1)),
          ev(1, 0.9, n(47, 5, 2), n(54, 4, 4), n(59, 3, 4), n(62, 2, 3),
             n(66, 1, 2)),
          ev(2, 0.9, n(41, 6, 1), n(48, 5, 3), n(53, 4, 3), n(57, 3, 2),
             n(60, 2, 1), n(65, 1, 1)),
          ev(3, 0.9, n(47, 5, 2), n(54, 4, 4), n(59, 3, 4), n(62, 2, 3),
             n(66, 1, 2)),
      } },
    { name = "drop D riff on the low strings", options = { tuning = "drop_d" },
      events = {
          ev(0.0, 0.2, n(38, 6, 0)), ev(0.25, 0.2, n(38, 6, 0)),
          ev(0.5, 0.2, n(41, 6, 3)), ev(0.75, 0.2, n(43, 6, 5)),
          ev(1.0, 0.4, n(38, 6, 0), n(45, 5, 0), n(50, 4, 0)),
          ev(1.5, 0.4, n(41, 6, 3), n(48, 5, 3), n(53, 4, 3)),
          ev(2.0, 0.4, n(43, 6, 5), n(50, 5, 5), n(55, 4, 5)),
          ev(2.5, 0.4, n(41, 6, 3), n(48, 5, 3), n(53, 4, 3)),
          ev(3.0, 0.9, n(38, 6, 0), n(45, 5, 0), n(50, 4, 0)),
      } },
    { name = "walking bass line on 4-string bass",
      options = { instrument = "bass" },
      events = line(0.5, {
          n(31, 4, 3), n(35, 3, 2), n(38, 2, 0), n(40, 2, 2),
          n(36, 3, 3), n(40, 2, 2), n(43, 1, 0), n(45, 1, 2),
          n(38, 2, 0), n(42, 2, 4), n(45, 1, 2), n(42, 2, 4),
          -- a chromatic approach stays on its string
          n(43, 2, 5), n(38, 2, 0), n(35, 3, 2), n(31, 4, 3) }) },
    { name = "melody above the 12th fret", options = {},
      events = line(0.25, {
          n(76, 1, 12), n(79, 1, 15), n(78, 1, 14), n(76, 1, 12),
          n(74, 2, 15), n(73, 2, 14), n(71, 2, 12), n(73, 2, 14),
          n(74, 2, 15), n(76, 1, 12), n(78, 1, 14), n(79, 1, 15),
          n(81, 1, 17), n(79, 1, 15), n(78, 1, 14), n(76, 2, 17) }) },
    { name = "open chords with capo 2", options = { capo = 2 },
      events = open_chords(2) },
    { name = "a chord with more notes than strings", options = {},
      events = {
          ev(0, 0.9, n(40, 6, 0), n(47, 5, 2), n(52, 4, 2), n(56, 3, 1),
             n(59, 2, 0), n(64, 1, 0)),
          ev(1, 0.9, n(40, 6, 0), n(47, 5, 2), n(52, 4, 2), n(56, 3, 1),
             n(59, 2, 0), n(64, 1, 0)),
      },
      extra = { { 1.0, 68 } } },
}


--- The passage's notes as transcription-like events (and the expected
-- fingering per note, in the same order).
function _M.notes(p)
    local notes, expect = {}, {}
    local reduced = {}
    for _, x in ipairs(p.extra or {}) do
        reduced[x[1]] = true
    end
    for _, e in ipairs(p.events) do
        for i, x in ipairs(e[3]) do
            -- A strum: strings sound a few ms apart, low to high.
            notes[#notes + 1] = { start_s = e[1] + (i - 1) * 0.004,
                                  end_s = e[1] + e[2], pitch = x[1],
                                  amplitude = 0.7 }
            -- A chord that loses a note may be fingered anew: no
            -- expectation there beyond the rules.
            expect[#notes] = not reduced[e[1]]
                             and { string = x[2], fret = x[3] } or nil
        end
    end
    for _, x in ipairs(p.extra or {}) do
        notes[#notes + 1] = { start_s = x[1] + 0.001, end_s = x[1] + 0.9,
                              pitch = x[2], amplitude = 0.7 }
        expect[#notes] = false
    end
    return notes, expect
end


return _M
