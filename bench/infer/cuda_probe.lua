-- Whether bench/infer.sh --device cuda can run its GPU part here.
-- usage: wtt run cuda_probe.lua
-- Prints "cuda ok name=<card> cc=<x.y> memory_gib=<n>" or
-- "cuda skip reason=<why>".
local core = require "wtt.core.model"

local compiled = false
for _, b in ipairs(core.backends()) do
    compiled = compiled or b == "cuda"
end
if not compiled then
    io.write("cuda skip reason=no-cuda-backend-in-this-build\n")
    return
end
local devices = core.devices("cuda") or {}
if #devices == 0 then
    io.write("cuda skip reason=no-device\n")
    return
end
local d = devices[1]
io.write(string.format("cuda ok name=%s cc=%s memory_gib=%.0f\n",
                       d.name:gsub("%s", "_"), tostring(d.cc),
                       d.memory / 2 ^ 30))
