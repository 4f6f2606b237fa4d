/*
 * wtt_midi_input.c: midi.encode and midi.write, the writer's Lua side.
 *
 * Writing happens in two phases so that a Lua error can never leak C memory:
 * the notes are first copied out of their Lua tables into userdata arrays
 * (this may raise on misuse), then pure C code (wtt_midi_writer.c) builds
 * the file in malloc'd buffers that are freed before control returns to Lua.
 */
#include "wtt_midi_private.h"
#include "wtt_luax.h"
#include "wtt_util.h"

#include <lauxlib.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BINS_PER_SEMITONE   3         /* Basic Pitch contour bins */
#define MAX_DIVISION        0x7FFF


/* ------------------------------------------------------------------------
 * Writer: Lua input
 * ------------------------------------------------------------------------ */


static const char *const encode_opt_names[] = {
    "tempo", "division", "program", "multiple_pitch_bends", "bend_range",
    "bend_unit", NULL
};


/* Reads the options table at `idx` (may be none). Raises on misuse. */
static void
read_opts(lua_State *L, int idx, wopts_t *o)
{
    lua_Number v;
    int        i, found;

    o->tempo = DEFAULT_TEMPO;
    o->division = DEFAULT_DIVISION;
    o->program = DEFAULT_PROGRAM;
    o->multi = 0;
    o->bend_range = DEFAULT_BEND_RANGE;
    o->bend_per_semitone = BINS_PER_SEMITONE;
    if (lua_isnoneornil(L, idx)) {
        return;
    }
    luaL_checktype(L, idx, LUA_TTABLE);

    lua_pushnil(L);                                           /* nil */
    while (lua_next(L, idx) != 0) {                           /* k v */
        if (lua_type(L, -2) != LUA_TSTRING) {
            luaL_argerror(L, idx, "option names must be strings");
        }
        found = 0;
        for (i = 0; encode_opt_names[i] != NULL; i++) {
            if (strcmp(encode_opt_names[i], lua_tostring(L, -2)) == 0) {
                found = 1;
            }
        }
        if (!found) {
            luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'",
                                                  lua_tostring(L, -2)));
        }
        lua_pop(L, 1);                                        /* k */
    }

    lua_getfield(L, idx, "tempo");                            /* v */
    if (!lua_isnil(L, -1)) {
        v = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || !(v >= 4 && v <= 1000)) {
            luaL_argerror(L, idx, "'tempo' must be a number in 4-1000 BPM");
        }
        o->tempo = v;
    }
    lua_pop(L, 1);

    lua_getfield(L, idx, "division");                         /* v */
    if (!lua_isnil(L, -1)) {
        v = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || v != floor(v) || v < 24
            || v > MAX_DIVISION)
        {
            luaL_argerror(L, idx, "'division' must be an integer in "
                          "24-32767");
        }
        o->division = (int) v;
    }
    lua_pop(L, 1);

    lua_getfield(L, idx, "program");                          /* v */
    if (lua_type(L, -1) == LUA_TSTRING) {
        lua_getfield(L, lua_upvalueindex(1), lua_tostring(L, -1)); /* v p */
        if (lua_isnil(L, -1)) {
            luaL_argerror(L, idx, lua_pushfstring(L, "unknown program '%s'",
                                                  lua_tostring(L, -2)));
        }
        o->program = (int) lua_tointeger(L, -1);
        lua_pop(L, 1);                                        /* v */
    } else if (!lua_isnil(L, -1)) {
        v = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || v != floor(v) || v < 0
            || v > 127)
        {
            luaL_argerror(L, idx, "'program' must be 0-127 or a name in "
                          "midi.PROGRAMS");
        }
        o->program = (int) v;
    }
    lua_pop(L, 1);

    lua_getfield(L, idx, "multiple_pitch_bends");             /* v */
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TBOOLEAN) {
        luaL_argerror(L, idx, "'multiple_pitch_bends' must be a boolean");
    }
    o->multi = lua_toboolean(L, -1);
    lua_pop(L, 1);

    lua_getfield(L, idx, "bend_range");                       /* v */
    if (!lua_isnil(L, -1)) {
        v = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || !(v >= 1 && v <= 24)) {
            luaL_argerror(L, idx, "'bend_range' must be 1-24 semitones");
        }
        o->bend_range = v;
    }
    lua_pop(L, 1);

    lua_getfield(L, idx, "bend_unit");                        /* v */
    if (!lua_isnil(L, -1)) {
        const char *s = lua_type(L, -1) == LUA_TSTRING
                        ? lua_tostring(L, -1) : "";
        if (strcmp(s, "bins") == 0) {
            o->bend_per_semitone = BINS_PER_SEMITONE;
        } else if (strcmp(s, "semitones") == 0) {
            o->bend_per_semitone = 1;
        } else {
            luaL_argerror(L, idx, "'bend_unit' must be \"bins\" or "
                          "\"semitones\"");
        }
    }
    lua_pop(L, 1);                                            /* */
}


/*
 * Reads number field `name` of the note table at `t` into *v. Returns 1 when
 * present, 0 when absent. Raises when it is not a number (misuse).
 */
static int
note_num(lua_State *L, int t, size_t i, const char *name, double *v)
{
    lua_getfield(L, t, name);                                 /* v */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    if (lua_type(L, -1) != LUA_TNUMBER) {
        luaL_error(L, "bad note %d: '%s' must be a number", (int) i + 1,
                   name);
    }
    *v = lua_tonumber(L, -1);
    lua_pop(L, 1);                                            /* */
    return 1;
}


/*
 * Copies the notes list at `idx` into userdata arrays pushed on the stack
 * (notes, then bend values and times). Raises on misuse (wrong types,
 * missing fields). Returns 0, or -1 with a reason in `err` for values out of
 * range. Stack: [] -> [notes bv bt].
 */
static int
read_notes(lua_State *L, int idx, input_t *in, char *err, size_t errlen)
{
    size_t    n, i, j, nb, total = 0, off = 0;
    int       t;
    double    v, *bv, *bt;
    enote_t  *e;

    luaL_checktype(L, idx, LUA_TTABLE);
    n = lua_objlen(L, idx);
    if (n > 10000000) {
        luaL_argerror(L, idx, "too many notes");
    }

    /* Pass 1: types and the number of bend values. */
    for (i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (int) i + 1);                     /* note */
        if (lua_type(L, -1) != LUA_TTABLE) {
            luaL_error(L, "bad note %d: table expected, got %s", (int) i + 1,
                       luaL_typename(L, -1));
        }
        lua_getfield(L, -1, "bends");                         /* note b */
        if (!lua_isnil(L, -1)) {
            if (lua_type(L, -1) != LUA_TTABLE) {
                luaL_error(L, "bad note %d: 'bends' must be a table",
                           (int) i + 1);
            }
            total += lua_objlen(L, -1);
            if (total > 100000000) {
                luaL_error(L, "bad note %d: too many bends", (int) i + 1);
            }
        }
        lua_pop(L, 2);                                        /* */
    }

    e = lua_newuserdata(L, (n ? n : 1) * sizeof(*e));         /* notes */
    bv = lua_newuserdata(L, (total ? total : 1) * sizeof(double));
    bt = lua_newuserdata(L, (total ? total : 1) * sizeof(double));
    memset(e, 0, (n ? n : 1) * sizeof(*e));                   /* notes bv bt */
    in->notes = e;
    in->n = n;
    in->bv = bv;
    in->bt = bt;

    for (i = 0; i < n; i++, e++) {
        lua_rawgeti(L, idx, (int) i + 1);                     /* .. note */
        t = lua_gettop(L);
        e->idx = i;
        if (!note_num(L, t, i, "start_s", &e->start)
            || !note_num(L, t, i, "end_s", &e->end))
        {
            luaL_error(L, "bad note %d: 'start_s' and 'end_s' are required",
                       (int) i + 1);
        }
        if (!note_num(L, t, i, "pitch", &v)) {
            luaL_error(L, "bad note %d: 'pitch' is required", (int) i + 1);
        }
        if (!isfinite(e->start) || !isfinite(e->end) || e->start < 0
            || e->end < e->start)
        {
            snprintf(err, errlen, "note %zu: times must be finite with "
                     "0 <= start_s <= end_s", i + 1);
            lua_pop(L, 1);
            return -1;
        }
        if (!(v >= 0 && v <= 127) || v != floor(v)) {
            snprintf(err, errlen, "note %zu: pitch must be an integer in "
                     "0-127", i + 1);
            lua_pop(L, 1);
            return -1;
        }
        e->pitch = (int) v;

        if (note_num(L, t, i, "velocity", &v)) {
            if (!(v >= 1 && v <= 127) || v != floor(v)) {
                snprintf(err, errlen, "note %zu: velocity must be an "
                         "integer in 1-127", i + 1);
                lua_pop(L, 1);
                return -1;
            }
            e->vel = (int) v;
        } else if (note_num(L, t, i, "amplitude", &v)) {
            if (!(v >= 0 && v <= 1)) {
                snprintf(err, errlen, "note %zu: amplitude must be in 0-1",
                         i + 1);
                lua_pop(L, 1);
                return -1;
            }
            /* int(np.round(127 * amplitude)): round half to even; a
             * velocity of 0 would be a note-off, so the floor is 1. */
            e->vel = (int) rint(127.0 * v);
            if (e->vel < 1) {
                e->vel = 1;
            }
        } else {
            luaL_error(L, "bad note %d: 'velocity' or 'amplitude' is "
                       "required", (int) i + 1);
        }

        lua_getfield(L, t, "bends");                          /* .. note b */
        nb = lua_isnil(L, -1) ? 0 : lua_objlen(L, -1);
        e->bend_off = off;
        e->nbends = nb;
        for (j = 0; j < nb; j++) {
            lua_rawgeti(L, -1, (int) j + 1);                  /* .. b v */
            if (lua_type(L, -1) != LUA_TNUMBER) {
                luaL_error(L, "bad note %d: bends must be numbers",
                           (int) i + 1);
            }
            bv[off + j] = lua_tonumber(L, -1);
            lua_pop(L, 1);                                    /* .. b */
            if (!isfinite(bv[off + j])) {
                snprintf(err, errlen, "note %zu: bend values must be finite",
                         i + 1);
                lua_pop(L, 2);
                return -1;
            }
        }
        lua_pop(L, 1);                                        /* .. note */

        lua_getfield(L, t, "bend_times");                     /* .. note bt */
        if (!lua_isnil(L, -1)) {
            if (lua_type(L, -1) != LUA_TTABLE || lua_objlen(L, -1) != nb) {
                luaL_error(L, "bad note %d: 'bend_times' must be a list as "
                           "long as 'bends'", (int) i + 1);
            }
            e->bend_times = 1;
            for (j = 0; j < nb; j++) {
                lua_rawgeti(L, -1, (int) j + 1);
                if (lua_type(L, -1) != LUA_TNUMBER) {
                    luaL_error(L, "bad note %d: bend times must be numbers",
                               (int) i + 1);
                }
                bt[off + j] = lua_tonumber(L, -1);
                lua_pop(L, 1);
                if (!isfinite(bt[off + j]) || bt[off + j] < 0) {
                    snprintf(err, errlen, "note %zu: bend times must be "
                             "finite and >= 0", i + 1);
                    lua_pop(L, 2);
                    return -1;
                }
            }
        }
        lua_pop(L, 2);                                        /* notes bv bt */
        off += nb;
    }
    return 0;
}


/*
 * Shared by encode and write: reads args 1 (notes) and 2 (opts), encodes.
 * Returns 0 with a malloc'd buffer, or -1 with a reason in `err`.
 */
static int
encode_args(lua_State *L, int notes_idx, int opts_idx, unsigned char **out,
    size_t *len, char *err, size_t errlen)
{
    wopts_t o;
    input_t in;

    read_opts(L, opts_idx, &o);
    if (read_notes(L, notes_idx, &in, err, errlen) != 0) {
        return -1;
    }
    return wtt__midi_encode(&in, &o, out, len, err, errlen);
}


/* midi.encode(notes [, opts]) -> bytes | nil, err */
static int
l_encode(lua_State *L)
{
    unsigned char *out;
    size_t         len;
    char           err[ERRLEN];

    if (encode_args(L, 1, 2, &out, &len, err, sizeof(err)) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "encode failed: %s", err);
        return 2;
    }
    lua_pushlstring(L, (const char *) out, len);              /* bytes */
    free(out);
    return 1;
}


/*
 * midi.write(path, notes [, opts]) -> true | nil, err. The file appears
 * whole or not at all (wtt_write_file_atomic): an existing file keeps its
 * permission bits; a new one gets 0644.
 */
static int
l_write(lua_State *L)
{
    const char    *path = luaL_checkstring(L, 1);
    unsigned char *out;
    size_t         len;
    char           err[ERRLEN];
    int            rc, e;

    if (encode_args(L, 2, 3, &out, &len, err, sizeof(err)) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "encode failed: %s", err);
        return 2;
    }
    rc = wtt_write_file_atomic(path, out, len);
    e = errno;
    free(out);
    if (rc != 0) {
        return wtt_lua_push_errno(L, "write", path, e);
    }
    lua_pushboolean(L, 1);
    return 1;
}



const luaL_Reg wtt__midi_write_funcs[] = {
    { "encode",   l_encode },
    { "write",    l_write },
    { NULL, NULL },
};
