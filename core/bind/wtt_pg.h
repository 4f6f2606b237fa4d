/*
 * wtt_pg.h: the C half of wtt.pg (Lua module wtt.core.pg; lua/wtt/pg.lua
 * is the public API, docs/pg.md describes both).
 *
 * Lua API (errors follow house style 13: misuse raises, runtime failures
 * return nil, "<op> failed: <message>", sqlstate):
 *
 *     local core = require "wtt.core.pg"
 *     local c, err, state = core.connect("postgresql://u@host/db",
 *         { connect_timeout = 5, statement_timeout_ms = 2000,
 *           application_name = "wtt" })
 *     local rows, count = c:query("SELECT $1::int AS n", { 1 }, 1)
 *     rows, count = c:script("CREATE TABLE a (i int); CREATE TABLE b ()")
 *     c:check()        -- false when the server closed the idle session
 *     c:status()       -- "ok" | "lost" | "closed"
 *     c:reset()        -- new session, same parameters and settings
 *     c:tx_status(), c:backend_pid(), c:server_version(), c:close()
 *     core.null, core.bytea(s), core.sha256hex(s), core.libpq_version
 *
 * Parameters are always sent separately from the SQL text (PQexecParams);
 * there is no function that puts a value into SQL text.
 *
 * Thread-safety: a connection belongs to the lua_State that made it, and a
 * lua_State is never used by two threads (house style 22); libpq itself is
 * thread-safe across connections.
 */
#ifndef WTT_PG_H
#define WTT_PG_H

#include <lua.h>

/*
 * Opens the `wtt.core.pg` module: registers the "wtt.pg.conn",
 * "wtt.pg.result" and "wtt.pg.bytea" metatables, loads cjson.safe for
 * json/jsonb columns and pushes a new module table. Returns 1 (the table).
 * Raises when cjson.safe cannot be loaded. Everything it creates belongs to
 * the Lua state.
 */
int luaopen_wtt_pg(lua_State *L);

#endif
