-- One end-to-end client run for bench/queue.sh: upload a clip, generate,
-- wait until the status says completed, all in this process over one
-- keep-alive connection (a curl per status poll would itself load the
-- 2-core machine and slow the worker it is timing).
-- usage: wtt run e2e_client.lua URL CLIP.wav
-- Prints: upload_s=<a> generate_s=<b> completed_s=<c> total_s=<d> status=<s> id=<id>
local httpc = require "wtt.http_client"
local json = require "wtt.json"
local sys = require "wtt.sys"

local url, clip = arg[1], arg[2]
local client = httpc.new()

local t0 = sys.now()
local res = assert(client:request({
    url = url .. "/transcribe/upload/", method = "POST",
    multipart = { { name = "file", file = clip, filename = "clip.wav",
                    content_type = "audio/wav" } },
    timeout = 60,
}))
assert(res.status == 201, "upload: " .. res.status .. " " .. (res.body or ""))
local id = json.decode(res.body).audio_midi_id
local tu = sys.now()
res = assert(client:request({
    url = url .. "/transcribe/generate/", method = "POST",
    headers = { ["Content-Type"] = "application/json" },
    body = json.encode({ audio_midi_id = id, options = {} }), timeout = 30,
}))
assert(res.status == 202, "generate: " .. res.status .. " " .. (res.body or ""))
local tg = sys.now()
local status
repeat
    sys.sleep(0.005)
    res = assert(client:request({ url = url .. "/transcribe/status/" .. id
                                        .. "/", timeout = 10 }))
    status = json.decode(res.body).status
    assert(sys.now() - tg < 300, "not done after 300 s")
until status == "completed" or status == "failed"
local t1 = sys.now()
io.write(string.format(
    "upload_s=%.3f generate_s=%.3f completed_s=%.3f total_s=%.3f status=%s id=%s\n",
    tu - t0, tg - tu, t1 - tg, t1 - t0, status, id))
