-- Floating-point work of one Basic Pitch window, from its convolutions'
-- shapes (for bench/infer.sh: achieved FLOP/s = windows x this / time).
--
-- A convolution does 2 x (outputs) x (taps per output) FLOPs: one multiply
-- and one add per filter tap, outputs = OH x OW x O, taps = KH x KW x C.
-- The elementwise ops, reductions and copies add under 0.1% and are left
-- out. The layers are those the engine runs per window (the 32 Conv2D /
-- _FusedConv2D nodes of models/basic-pitch, their shapes as the planner
-- sizes them for one window; docs/engine.md, "Loading and planning").
local _M = {}

-- { count, OH, OW, O, KH, KW, C }
_M.BASIC_PITCH = {
    -- constant-Q front end: 8 halvings (1x256 low-pass, stride 2) ...
    { 1, 1, 21922, 1, 1, 256, 1 },
    { 1, 1, 10961, 1, 1, 256, 1 },
    { 1, 1, 5480, 1, 1, 256, 1 },
    { 1, 1, 2740, 1, 1, 256, 1 },
    { 1, 1, 1370, 1, 1, 256, 1 },
    { 1, 1, 685, 1, 1, 256, 1 },
    { 1, 1, 342, 1, 1, 256, 1 },
    { 1, 1, 171, 1, 1, 256, 1 },
    -- ... and per octave a real and an imaginary filter bank (36 bins)
    { 18, 1, 172, 36, 1, 256, 1 },
    -- the heads
    { 1, 172, 264, 8, 3, 39, 8 },       -- harmonic stack -> 8 channels
    { 1, 172, 264, 1, 5, 5, 8 },        -- contours
    { 1, 172, 88, 32, 7, 7, 1 },        -- contours -> notes
    { 1, 172, 88, 1, 7, 3, 32 },        -- notes
    { 1, 172, 88, 32, 5, 5, 8 },        -- harmonic stack -> onsets
    { 1, 172, 88, 1, 3, 3, 33 },        -- onsets
}


--- FLOPs of one item through `layers` (default Basic Pitch's).
function _M.per_window(layers)
    local total = 0
    for _, l in ipairs(layers or _M.BASIC_PITCH) do
        local count, oh, ow, o, kh, kw, c =
            l[1], l[2], l[3], l[4], l[5], l[6], l[7]
        total = total + count * 2 * oh * ow * o * kh * kw * c
    end
    return total
end


-- FP32 (non-tensor) peak and memory bandwidth from the vendors' data
-- sheets, by device name; nil for a card not listed.
local PEAKS = {
    { "H200", 67e12, 4.8e12 },
    { "H100 PCIe", 51e12, 2.0e12 },
    { "H100", 67e12, 3.35e12 },
    { "A100.*80GB", 19.5e12, 2.039e12 },
    { "A100", 19.5e12, 1.555e12 },
    { "L40S", 91.6e12, 0.864e12 },
}


--- flops_per_s, bytes_per_s of the card called `name`, or nil.
function _M.peaks(name)
    for _, p in ipairs(PEAKS) do
        if name and name:find(p[1]) then
            return p[2], p[3]
        end
    end
    return nil
end


return _M
