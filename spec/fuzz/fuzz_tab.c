/*
 * fuzz_tab.c: the tab inputs, through the Lua code that takes them
 * (lua/wtt/tab.lua, lua/wtt/tab/, and the C they call: core/tab/ through
 * wtt.core.tab and wtt.core.tabout). What a user controls is the notes
 * file (`wtt tab NOTES`, and the notes a worker's result stores, which
 * GET /transcribe/tab/ renders: .notes.csv, .notes.json or MIDI, read by
 * wtt.tab.notes_in) and the options (instrument, tuning, capo, max_fret,
 * fold_octaves, tempo, time_signature, pickup, formats: a query string or
 * command-line flags, checked by tab.options). The target does what the
 * route and the command do with them: decode the notes, check the
 * options, build the document, and encode it in every format (one by
 * tab.encode as the route does, all by tab.encode_many as the command
 * does).
 *
 * Input: byte 0 picks the notes kind (modulo 3: csv, json, mid) and the
 * format for tab.encode (byte 0 / 3, modulo 5); then the options as a
 * query string (key=value&..., no percent-decoding) up to a newline; then
 * the notes file.
 *
 * Every step may refuse with nil and a message (a 422 in the route); a
 * raised Lua error, a refusal without a message, or an encoder that fails
 * on a document build accepted (a 500 in the route) is a finding. One Lua
 * state (wtt_vm_new, as `wtt run` makes it) serves the whole run,
 * collected after each input.
 */
#include "wtt_build_facts.h"
#include "wtt_log.h"
#include "wtt_modules.h"
#include "wtt_vm.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char driver[] =
    "local notes_in = require 'wtt.tab.notes_in'\n"
    "local tab = require 'wtt.tab'\n"
    "local KINDS = { 'csv', 'json', 'mid' }\n"
    "local function refused(what, v, err)\n"
    "    if v == nil and type(err) ~= 'string' then\n"
    "        error(what .. ' refused without a message')\n"
    "    end\n"
    "    return v == nil\n"
    "end\n"
    "return function(sel, query, bytes)\n"
    "    local kind = KINDS[sel % 3 + 1]\n"
    "    local fmt = tab.FORMATS[math.floor(sel / 3) % #tab.FORMATS + 1]\n"
    "    local notes, err = notes_in.decode(bytes, kind, 'fuzz.' .. kind)\n"
    "    if refused('decode', notes, err) then return end\n"
    "    local raw = {}\n"
    "    for k, v in query:gmatch('([^&=]+)=([^&]*)') do raw[k] = v end\n"
    "    local opts, oerr = tab.options(raw)\n"
    "    if refused('options', opts, oerr) then return end\n"
    "    opts.title = 'fuzz'\n"
    "    local doc, berr = tab.build(notes, opts)\n"
    "    if refused('build', doc, berr) then return end\n"
    "    local out, eerr = tab.encode(doc, fmt)\n"
    "    if not out then error('encode ' .. fmt .. ': ' .. tostring(eerr)) end\n"
    "    local all, merr = tab.encode_many(doc, opts.formats)\n"
    "    if not all then error('encode_many: ' .. tostring(merr)) end\n"
    "end\n";

static lua_State *L;
static int        run_ref;

static void
close_state(void)
{
    wtt_vm_close(L);
}

static void
setup(void)
{
    const char *err = NULL;

    setenv("WTT_LOG_LEVEL", "error", 0);
    /* Notes end within WTT_MAX_AUDIO_S (4 h by default): capped to 10
     * minutes, so an input at the bound renders in well under libFuzzer's
     * timeout under ASan (a 4-hour tab is about a second of work in a
     * release build, and what a long one costs is not the bug sought). */
    setenv("WTT_MAX_AUDIO_S", "600", 0);
    wtt_vm_set_modules(wtt_builtin_modules);
    wtt_vm_set_runtime_facts(wtt_runtime_facts);
    wtt_log_init();
    if (wtt_vm_set_paths(NULL, NULL, NULL, &err) != 0) {
        fprintf(stderr, "fuzz_tab: %s\n", err);
        abort();
    }
    L = wtt_vm_new();
    if (L == NULL) {
        abort();
    }
    if (luaL_loadbuffer(L, driver, sizeof(driver) - 1, "=fuzz_tab") != 0
        || wtt_vm_pcall(L, 0, 1) != 0)
    {
        fprintf(stderr, "fuzz_tab: %s\n", lua_tostring(L, -1));
        abort();
    }
    run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    atexit(close_state);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl;
    size_t         qlen;

    if (L == NULL) {
        setup();
    }
    if (size < 1) {
        return 0;
    }
    nl = memchr(data + 1, '\n', size - 1);
    qlen = nl != NULL ? (size_t) (nl - data - 1) : size - 1;
    lua_rawgeti(L, LUA_REGISTRYINDEX, run_ref);
    lua_pushinteger(L, data[0]);
    lua_pushlstring(L, (const char *) data + 1, qlen);
    if (nl != NULL) {
        lua_pushlstring(L, (const char *) nl + 1,
                        (size_t) (data + size - nl - 1));
    } else {
        lua_pushliteral(L, "");
    }
    if (wtt_vm_pcall(L, 3, 0) != 0) {
        fprintf(stderr, "fuzz_tab: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}
